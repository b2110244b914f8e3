"""Managers' reports on SQLite and PostgreSQL, against counts worked out by hand below.

The week is Mon 16 – Sun 22 Nov 2026 in America/New_York (UTC-5 then). Store "N" has advisors
ann and bob (and carol, who had no activity); store "S" has one call that must never show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from records import reports
from records.models import (
    Call,
    CallbackTask,
    Customer,
    RepairOrder,
    StatusEventRow,
    Store,
    ThreadEntry,
    User,
)
from records.queries import Scope

TZ = ZoneInfo("America/New_York")
MONDAY = date(2026, 11, 16)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """16 Nov 2026 is day 0 (Monday); negative days are the week before."""
    base = datetime(2026, 11, 16, hour, minute, tzinfo=TZ) + timedelta(days=day)
    return base.astimezone(UTC)


NOW = local(5, 12)  # Saturday noon


@dataclass
class Ids:
    store: int = 0
    other_store: int = 0
    users: dict[str, int] = field(default_factory=dict)
    customers: dict[str, int] = field(default_factory=dict)
    calls: dict[int, int] = field(default_factory=dict)  # number in the docstring -> id


def _call(n: int, store: Store, customer: Customer | None, at: datetime, **kw: object) -> Call:
    kw.setdefault("disposition", "handled_by_ivr")
    kw.setdefault("flow_path", ["main.greet", "main.menu"])
    return Call(
        call_uuid=f"rep-{n}",
        store_id=store.id,
        customer_id=customer.id if customer else None,
        direction="inbound",
        from_number="+15550200001",
        to_number="+15550300100",
        started_at=at,
        ended_at=at + timedelta(minutes=2),
        **kw,
    )


STATUS = ["main.greet", "main.menu", "status_check.find", "status_check.say_status"]


@pytest.fixture
def ids(sessions: sessionmaker[Session]) -> Ids:
    """The calls, numbered as in the expected counts:

    1  Mon 12:00 c1 status check; c1's RO changed Mon 09:00 (3 h)      ann, not avoidable
    2  Tue 14:00 c1 status check; last change Mon 09:00 (29 h)        ann, avoidable
    3  Tue 16:00 c1 status check; last change Tue 15:00 (1 h)         ann, not avoidable
    4  Wed 10:00 c2 status check, abandoned; RO unchanged since Mon 10:00 (48 h)  bob, avoidable
    5  Wed 11:00 c2 transferred, taken by ann                        ann (took it)
    6  Thu 09:00 unknown caller, missed                               unassigned
    7  Fri 09:00 c1 missed                                            ann
    8  Sun 15 Nov 23:30 (Monday 04:30 UTC!) c1 missed                 not this week
    9  Mon 23 Nov 00:30 c2 missed                                     not this week
    10 Mon 00:30 c2 missed                                            bob
    11 store S, Tue, missed                                           never
    """
    out = Ids()
    with sessions() as session, session.begin():
        store = Store(dms_id="N", name="North", timezone="America/New_York")
        other = Store(dms_id="S", name="South", timezone="America/New_York")
        session.add_all([store, other])
        session.flush()
        out.store, out.other_store = store.id, other.id
        users = {}
        for name in ("ann", "bob", "carol"):
            users[name] = User(username=name, name=name.title(), role="advisor", stores=[store])
        users["mary"] = User(username="mary", name="Mary", role="manager", stores=[store])
        users["sam"] = User(username="sam", name="Sam", role="advisor", stores=[other])
        session.add_all(users.values())
        session.flush()
        out.users = {k: u.id for k, u in users.items()}
        c1 = Customer(store_id=store.id, first_name="Cy", last_name="One", advisor=users["ann"])
        c2 = Customer(store_id=store.id, first_name="Di", last_name="Two", advisor=users["bob"])
        c3 = Customer(store_id=other.id, first_name="Ed", last_name="Three", advisor=users["sam"])
        session.add_all([c1, c2, c3])
        session.flush()
        out.customers = {"c1": c1.id, "c2": c2.id, "c3": c3.id}
        ro1 = RepairOrder(
            store_id=store.id, number="1", customer=c1, status="Tech Working", opened_at=local(0, 8)
        )
        ro1.events = [
            StatusEventRow(status="Waiting on Dispatch", at=local(0, 8)),
            StatusEventRow(status="In Shop", at=local(0, 9)),
            StatusEventRow(status="Tech Working", at=local(1, 15)),
        ]
        ro2 = RepairOrder(
            store_id=store.id,
            number="2",
            customer=c2,
            status="Waiting on Dispatch",
            opened_at=local(0, 10),
        )
        ro2.events = [StatusEventRow(status="Waiting on Dispatch", at=local(0, 10))]
        session.add_all([ro1, ro2])
        calls = {
            1: _call(1, store, c1, local(0, 12), flow_path=STATUS),
            2: _call(2, store, c1, local(1, 14), flow_path=STATUS),
            3: _call(3, store, c1, local(1, 16), flow_path=STATUS),
            4: _call(4, store, c2, local(2, 10), flow_path=STATUS, disposition="abandoned"),
            5: _call(
                5, store, c2, local(2, 11), disposition="transferred", advisor_id=users["ann"].id
            ),
            6: _call(6, store, None, local(3, 9), disposition="missed"),
            7: _call(7, store, c1, local(4, 9), disposition="missed"),
            8: _call(8, store, c1, local(-1, 23, 30), disposition="missed"),
            9: _call(9, store, c2, local(7, 0, 30), disposition="missed"),
            10: _call(10, store, c2, local(0, 0, 30), disposition="missed"),
            11: _call(11, other, c3, local(1, 10), disposition="missed"),
        }
        session.add_all(calls.values())
        session.flush()
        out.calls = {n: c.id for n, c in calls.items()}

        def task(owner: str, due: datetime, done: datetime | None, where: Store = store) -> None:
            session.add(
                CallbackTask(
                    store_id=where.id,
                    phone="+15550200001",
                    owner_id=users[owner].id,
                    due_at=due,
                    done_at=done,
                )
            )

        task("ann", local(1, 10), local(1, 9))  # done early: done 1
        task("ann", local(2, 10), local(2, 12))  # done late: done 1, overdue 1
        task("bob", local(3, 10), None)  # still open on Saturday: overdue 1
        task("bob", local(7, 10), None)  # due next week: nothing
        task("ann", local(-2, 10), local(0, 8))  # last week's, done this week: done 1
        task("sam", local(1, 10), None, other)  # other store: never

        def entry(customer: Customer, at: datetime, kind: str = "note", **kw: object) -> None:
            session.add(
                ThreadEntry(
                    store_id=customer.store_id, customer_id=customer.id, kind=kind, at=at, **kw
                )
            )

        entry(c1, local(0, 9, 1), "status_change", data={"to": "In Shop"})
        entry(c1, local(1, 15, 1), "status_change", data={"to": "Tech Working"})
        entry(c1, local(1, 17), body="Customer approved the brake job")
        entry(c2, local(2, 12), body="left a message")
        entry(c2, local(-3, 12), body="last week")
    return out


def test_weekly_dashboard_counts(sessions: sessionmaker[Session], ids: Ids) -> None:
    with sessions() as session:
        store = session.get(Store, ids.store)
        assert store is not None
        board = reports.weekly_dashboard(session, store=store, monday=MONDAY, now=NOW)
    assert board.since == local(0, 0) and board.until == local(7, 0)
    rows = {r.name: r.tally for r in board.advisors}
    assert list(rows) == ["Ann", "Bob", "Carol", "Unassigned"]
    assert rows["Ann"] == reports.Tally(
        calls=5, missed=1, abandoned=0, callbacks_done=3, callbacks_overdue=1, avoidable=1
    )
    assert rows["Bob"] == reports.Tally(
        calls=2, missed=1, abandoned=1, callbacks_done=0, callbacks_overdue=1, avoidable=1
    )
    assert rows["Carol"] == reports.Tally()
    assert rows["Unassigned"] == reports.Tally(calls=1, missed=1)
    assert board.total == reports.Tally(
        calls=8, missed=3, abandoned=1, callbacks_done=3, callbacks_overdue=2, avoidable=2
    )
    assert [t.calls for _, t in board.days] == [2, 2, 2, 1, 1, 0, 0]
    assert [t.avoidable for _, t in board.days] == [0, 1, 1, 0, 0, 0, 0]
    assert [d for d, _ in board.days][0] == MONDAY


def test_avoidable_depends_on_the_threshold(sessions: sessionmaker[Session], ids: Ids) -> None:
    with sessions() as session:
        store = session.get(Store, ids.store)
        assert store is not None
        board = reports.weekly_dashboard(
            session, store=store, monday=MONDAY, stale_hours=30, now=NOW
        )
        assert board.total.avoidable == 1  # call 4 (48 h); call 2 (29 h) no longer counts
        board = reports.weekly_dashboard(
            session, store=store, monday=MONDAY, stale_hours=2, now=NOW
        )
        assert board.total.avoidable == 3  # call 1 (3 h) joins


def test_call_log_filters_and_scope(sessions: sessionmaker[Session], ids: Ids) -> None:
    north = Scope(store_ids=frozenset({ids.store}))
    since, until = reports.week_bounds(MONDAY, "America/New_York")
    n = {v: k for k, v in ids.calls.items()}
    with sessions() as session:

        def numbers(**kw: object) -> list[int]:
            rows = reports.call_log(session, scope=north, limit=50, **kw)  # type: ignore[arg-type]
            return [n[r.call.id] for r in rows]

        assert numbers() == [9, 7, 6, 5, 4, 3, 2, 1, 10, 8]  # newest first, no store S
        assert numbers(since=since, until=until) == [7, 6, 5, 4, 3, 2, 1, 10]
        assert numbers(dispositions=["missed"], since=since, until=until) == [7, 6, 10]
        assert numbers(dispositions=["missed", "abandoned"]) == [9, 7, 6, 4, 10, 8]
        assert numbers(advisor_id=ids.users["ann"]) == [5]
        assert numbers(store_id=ids.other_store) == []
        row = reports.call_log(session, scope=north, dispositions=["transferred"], limit=5)[0]
        assert (row.customer_name, row.advisor_name) == ("Di Two", "Ann")
        everyone = reports.call_log(session, scope=Scope(store_ids=None), limit=50)
        assert len(everyone) == 11


def test_audit_picks_one_thread_per_advisor_and_saves(
    sessions: sessionmaker[Session], ids: Ids
) -> None:
    with sessions() as session:
        store = session.get(Store, ids.store)
        mary = session.get(User, ids.users["mary"])
        assert store is not None and mary is not None
        picks = {
            p.advisor.username: p for p in reports.audit_picks(session, store=store, monday=MONDAY)
        }
        assert set(picks) == {"ann", "bob", "carol"}
        assert picks["ann"].customer and picks["ann"].customer.id == ids.customers["c1"]
        assert picks["ann"].entries == 3 and picks["ann"].audit is None
        assert picks["bob"].customer and picks["bob"].customer.id == ids.customers["c2"]
        assert picks["bob"].entries == 1
        assert picks["carol"].customer is None

        c1 = picks["ann"].customer
        entry = reports.save_audit(
            session,
            customer=c1,
            author=mary,
            monday=MONDAY,
            advisor_id=ids.users["ann"],
            checks={"status_flow": True, "notes": True, "approvals": True, "bogus": True},
            comment="Chase the follow-up.",
        )
        assert entry.kind == "audit" and entry.data["score"] == 60
        assert entry.data["checklist"] == {
            "status_flow": True,
            "notes": True,
            "approvals": True,
            "handoffs": False,
            "follow_up": False,
        }
        assert "missing: @ handoffs, Closing follow-up message" in entry.body
        again = {
            p.advisor.username: p for p in reports.audit_picks(session, store=store, monday=MONDAY)
        }
        assert again["ann"].audit is not None and again["ann"].audit.id == entry.id
        assert again["ann"].entries == 3  # the audit itself is not activity
        next_week = reports.audit_picks(session, store=store, monday=MONDAY + timedelta(days=7))
        assert all(p.audit is None for p in next_week)


def _entry(kind: str, hour: int, body: str = "", **data: object) -> ThreadEntry:
    return ThreadEntry(kind=kind, at=local(0, hour), body=body, data=dict(data), id=hour)


def test_suggested_checklist() -> None:
    good = [
        _entry("status_change", 8, to="In Shop"),
        _entry("note", 9, "Approved by phone, @bob has the keys", mentions=["bob"]),
        _entry("status_change", 10, to="Tech Working"),
        _entry("status_change", 11, to="Ready for Pickup"),
        _entry("note", 12, "Texted: ready at 5"),
    ]
    assert reports.suggest_checklist(good) == {
        "status_flow": True,
        "notes": True,
        "approvals": True,
        "handoffs": True,
        "follow_up": True,
    }
    backwards = [
        _entry("status_change", 8, to="Tech Working"),
        _entry("status_change", 9, to="In Shop"),
        _entry("note", 7, "waiting on parts"),
    ]
    assert reports.suggest_checklist(backwards) == {
        "status_flow": False,
        "notes": True,
        "approvals": False,
        "handoffs": False,
        "follow_up": False,
    }
    assert reports.audit_score({"notes": True}) == 20


def test_week_bounds_follow_the_store_zone() -> None:
    assert reports.week_start(date(2026, 11, 22)) == MONDAY  # a Sunday
    since, until = reports.week_bounds(MONDAY, "America/New_York")
    assert since == datetime(2026, 11, 16, 5, tzinfo=UTC)
    assert until == datetime(2026, 11, 23, 5, tzinfo=UTC)
