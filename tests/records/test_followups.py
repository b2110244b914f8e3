"""records/followups/ on both databases: every queue rule with hand-computed times.

NOW is Wed 25 Nov 2026 15:00 UTC; the store keeps the defaults unless a test sets
`Store.follow_ups` (30 days' delay, 9 months' window, retry after 2 days, 3 attempts, 15 min
grace).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ivr.policies import FollowUpPolicy, promise_state
from records import followups
from records.followups import policy_for
from records.models import CallbackTask, FollowUp, RepairOrder, Store, ThreadEntry
from records.queries import Scope
from tests.records.helpers import NOW, make_customer, make_ro, make_store, make_user

ALL = Scope(store_ids=None)


def _world(session: Session, **store_kw: Any) -> dict[str, Any]:
    store = make_store(**store_kw)
    other = make_store("S2", did="+15550300200")
    session.add_all([store, other])
    session.flush()
    ann = make_user(store, "ann")
    bob = make_user(store, "bob")
    mary = make_user(store, "mary", role="manager")
    jo = make_customer(store, "Jo", "+15550201001", advisor=bob)
    session.add_all([ann, bob, mary, jo])
    session.flush()
    ro = make_ro(jo, "1001", ["In Shop"], advisor=ann)
    session.add(ro)
    session.flush()
    return {"store": store, "other": other, "ann": ann, "bob": bob, "mary": mary, "jo": jo,
            "ro": ro}  # fmt: skip


def test_policy_defaults_and_bad_values() -> None:
    assert FollowUpPolicy().model_dump() == {
        "declined_delay_days": 30,
        "defector_months": 9,
        "no_answer_retry_days": 2,
        "max_attempts": 3,
        "promise_grace_minutes": 15,
    }
    assert policy_for(Store(follow_ups={"declined_delay_days": 7})).declined_delay_days == 7
    assert policy_for(Store(follow_ups={"max_attempts": 0})).max_attempts == 3  # bad: defaults
    with pytest.raises(ValueError, match="typo"):
        FollowUpPolicy.model_validate({"typo": 1})


def test_declined_item_makes_one_follow_up_due_after_the_delay_owned_by_the_ros_advisor(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        w = _world(session, follow_ups={"declined_delay_days": 10})
        decided = NOW - timedelta(days=3)
        item, changes = followups.add_line_item(
            session,
            ro=w["ro"],
            description="Front brake pads at 3 mm",
            estimate_cents=28950,
            status="declined",
            decided_at=decided,
            now=NOW,
        )
        session.commit()
        [fu] = changes.created
        assert fu.kind == "declined_service" and fu.dedupe_key == f"declined:{item.id}"
        assert fu.owner_id == w["ann"].id  # the RO's advisor, not the customer's (bob)
        assert fu.due_at == datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # 22 Nov + 10 days
        assert fu.customer_id == w["jo"].id and fu.line_item_id == item.id

        # Declined again (a webhook delivered twice): still one follow-up.
        again = followups.set_line_item_status(session, item=item, status="declined", now=NOW)
        again2 = followups.sync_line_item(session, item=item, now=NOW)
        session.commit()
        assert not again.created and not again2.created
        assert session.scalar(select(FollowUp.id).where(FollowUp.kind == "declined_service"))
        assert len(session.scalars(select(FollowUp)).all()) == 1


def test_recommended_item_makes_no_follow_up_until_declined(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        w = _world(session)
        item, changes = followups.add_line_item(
            session, ro=w["ro"], description="Wiper blades", now=NOW
        )
        assert not changes.created and item.decided_at is None
        changes = followups.set_line_item_status(session, item=item, status="declined", now=NOW)
        session.commit()
        assert item.decided_at == NOW
        assert [fu.due_at for fu in changes.created] == [NOW + timedelta(days=30)]


def test_approving_the_item_closes_its_follow_up_as_booked_on_the_thread(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        w = _world(session)
        item, changes = followups.add_line_item(
            session, ro=w["ro"], description="Coolant flush", status="declined", now=NOW
        )
        later = NOW + timedelta(days=12)
        closing = followups.set_line_item_status(session, item=item, status="approved", now=later)
        session.commit()
        fu = changes.created[0]
        assert closing.closed == [fu]
        assert (fu.outcome, fu.done_at, fu.done_by_id) == ("booked", later, None)
        [entry] = closing.entries
        assert entry.kind == "follow_up" and entry.customer_id == w["jo"].id
        assert entry.data["follow_up_id"] == fu.id and entry.data["outcome"] == "booked"
        assert "Coolant flush approved" in entry.body
        # Approving again closes nothing more.
        assert not followups.set_line_item_status(session, item=item, status="done").entries


def test_promise_waits_for_its_event_then_is_due_at_the_events_time(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        w = _world(session)
        ro = w["ro"]
        part = followups.create_promise(
            session,
            ro=ro,
            text="call when the part arrives",
            created_by_id=w["bob"].id,
            trigger="part_arrived",
            now=NOW,
        )
        ready = followups.create_promise(
            session,
            ro=ro,
            text="call when it is ready",
            created_by_id=None,
            trigger="status:ready for pickup",
            now=NOW,
        )
        session.commit()
        assert part.owner_id == w["bob"].id  # whoever promised
        assert ready.owner_id == w["ann"].id  # a flow's promise: the RO's advisor
        assert ready.trigger == "status:Ready for Pickup"  # the store's spelling
        assert part.due_at is None and not followups.is_overdue(part, NOW + timedelta(days=99))
        assert promise_state(part, now=NOW, grace=timedelta(0)) == "waiting"

        other_ro = make_ro(w["jo"], "1002", ["In Shop"])
        session.add(other_ro)
        session.flush()
        assert followups.fire_trigger(session, ro=other_ro, event="part_arrived", at=NOW) == []
        arrived = NOW + timedelta(hours=2)
        assert followups.fire_trigger(session, ro=ro, event="part_arrived", at=arrived) == [part]
        assert (part.triggered_at, part.due_at) == (arrived, arrived)
        assert ready.due_at is None
        # Fired twice: nothing is waiting any more.
        assert followups.fire_trigger(session, ro=ro, event="part_arrived", at=NOW) == []
        fired = followups.fire_trigger(session, ro=ro, event="status:Ready for Pickup", at=arrived)
        assert fired == [ready]


def test_promise_input_is_checked(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        w = _world(session)
        for kw, message in (
            ({}, "either due_at or trigger"),
            ({"due_at": NOW, "trigger": "part_arrived"}, "either due_at or trigger"),
            ({"trigger": "Part Arrived!"}, "not an event name"),
            ({"trigger": "status:Teleported"}, "unknown status 'Teleported'"),
        ):
            with pytest.raises(ValueError, match=message):
                followups.create_promise(
                    session, ro=w["ro"], text="x", created_by_id=None, now=NOW, **kw
                )


def test_no_answer_retries_after_the_delay_and_closes_at_max_attempts(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        w = _world(session, follow_ups={"no_answer_retry_days": 1.5, "max_attempts": 2})
        fu = followups.create_promise(
            session, ro=w["ro"], text="call by 3 pm", created_by_id=w["ann"].id, due_at=NOW,
            now=NOW - timedelta(hours=4),
        )  # fmt: skip
        first = followups.record_outcome(
            session, follow_up=fu, outcome="no_answer", user_id=w["ann"].id, now=NOW
        )
        assert not first.closed and fu.done_at is None and fu.outcome is None
        assert fu.attempts == 1 and fu.due_at == NOW + timedelta(hours=36)
        assert first.entry.kind == "follow_up" and first.entry.author_id == w["ann"].id
        assert "attempt 1 of 2" in first.entry.body and "2026-11-27" in first.entry.body
        second_at = NOW + timedelta(days=2)
        second = followups.record_outcome(
            session, follow_up=fu, outcome="no_answer", user_id=w["ann"].id, now=second_at
        )
        session.commit()
        assert second.closed and (fu.outcome, fu.done_at, fu.attempts) == (
            "no_answer",
            second_at,
            2,
        )
        with pytest.raises(followups.AlreadyClosed):
            followups.record_outcome(session, follow_up=fu, outcome="booked", user_id=None)
        entries = session.scalars(
            select(ThreadEntry).where(ThreadEntry.kind == "follow_up").order_by(ThreadEntry.at)
        ).all()
        assert [e.data["closed"] for e in entries] == [False, True]


@pytest.mark.parametrize("outcome", ["booked", "not_interested", "done"])
def test_closing_outcomes(sessions: sessionmaker[Session], outcome: str) -> None:
    with sessions() as session:
        w = _world(session)
        _, changes = followups.add_line_item(
            session, ro=w["ro"], description="Tires", status="declined", now=NOW
        )
        fu = changes.created[0]
        result = followups.record_outcome(
            session, follow_up=fu, outcome=outcome, user_id=w["ann"].id, note="spoke to Jo", now=NOW
        )
        session.commit()
        assert result.closed and (fu.outcome, fu.done_at, fu.done_by_id, fu.attempts) == (
            outcome,
            NOW,
            w["ann"].id,
            1,
        )
        assert result.entry.body.endswith(outcome.replace("_", " ") + ". spoke to Jo")


def test_overdue_first_for_the_owner_and_managers_see_the_stores_overdue(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        w = _world(session)
        ro, ann, bob = w["ro"], w["ann"], w["bob"]

        def promise(text: str, owner: Any, **kw: Any) -> FollowUp:
            return followups.create_promise(
                session, ro=ro, text=text, created_by_id=owner.id, now=NOW, **kw
            )

        later = promise("later", ann, due_at=NOW + timedelta(hours=3))
        waiting = promise("waiting", ann, trigger="part_arrived")
        promise("old", ann, due_at=NOW - timedelta(days=2))
        recent = promise("recent", ann, due_at=NOW - timedelta(minutes=5))
        promise("bob's", bob, due_at=NOW - timedelta(days=1))
        done = promise("done", ann, due_at=NOW - timedelta(days=3))
        followups.record_outcome(session, follow_up=done, outcome="done", user_id=ann.id, now=NOW)
        # Another store's overdue promise, invisible to this store's manager.
        outsider = make_customer(w["other"], "Zed", "+15550201002")
        session.add(outsider)
        session.flush()
        far_ro = make_ro(outsider, "9001", ["In Shop"])
        session.add(far_ro)
        session.flush()
        followups.create_promise(
            session, ro=far_ro, text="far", created_by_id=None, due_at=NOW - timedelta(days=9)
        )
        session.commit()

        mine = followups.list_follow_ups(session, scope=ALL, now=NOW, owner_id=ann.id)
        assert [f.text for f in mine] == ["old", "recent", "later", "waiting"]
        store_scope = Scope(store_ids=frozenset({w["store"].id}))
        flagged = followups.list_follow_ups(session, scope=store_scope, now=NOW, overdue=True)
        assert [f.text for f in flagged] == ["old", "bob's", "recent"]
        not_overdue = followups.list_follow_ups(
            session, scope=store_scope, now=NOW, overdue=False, state="all"
        )
        assert [f.text for f in not_overdue] == ["done", "later", "waiting"]
        assert followups.is_overdue(recent, NOW) and not followups.is_overdue(later, NOW)
        assert not followups.is_overdue(waiting, NOW) and not followups.is_overdue(done, NOW)


def test_work_list_puts_callbacks_and_follow_ups_in_one_order(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        w = _world(session)
        ann = w["ann"]
        session.add_all(
            [
                CallbackTask(store_id=w["store"].id, customer_id=w["jo"].id, phone="+15550201001",
                             owner_id=ann.id, reason="missed call", due_at=NOW - timedelta(days=1)),
                CallbackTask(store_id=w["store"].id, phone="+15550201009", owner_id=ann.id,
                             reason="voicemail", due_at=NOW + timedelta(hours=1)),
            ]
        )  # fmt: skip
        followups.add_line_item(
            session, ro=w["ro"], description="Brake pads", status="declined",
            decided_at=NOW - timedelta(days=32), now=NOW,
        )  # fmt: skip
        followups.create_promise(
            session, ro=w["ro"], text="part", created_by_id=ann.id, trigger="part_arrived"
        )
        session.commit()
        items = followups.work_list(session, scope=ALL, now=NOW, owner_id=ann.id)
        assert [(i.kind, i.reason, i.overdue) for i in items] == [
            ("declined_service", "Brake pads", True),  # due 23 Nov
            ("callback", "missed call", True),  # due 24 Nov
            ("callback", "voicemail", False),
            ("promise", "part", False),  # waiting for part_arrived
        ]
        assert items[0].ro_number == "1001" and items[0].customer is not None
        assert items[3].trigger == "part_arrived" and items[3].due_at is None
        overdue = followups.work_list(session, scope=ALL, now=NOW, owner_id=None, overdue_only=True)
        assert [i.reason for i in overdue] == ["Brake pads", "missed call"]


def test_promise_kept_late_broken() -> None:
    due = NOW
    grace = timedelta(minutes=15)

    def state(done_at: datetime | None, now: datetime = NOW + timedelta(days=1)) -> str:
        fu = FollowUp(due_at=due, done_at=done_at)
        return promise_state(fu, now=now, grace=grace)

    assert state(NOW - timedelta(hours=1)) == "kept"
    assert state(NOW + timedelta(minutes=15)) == "kept"  # inside the grace
    assert state(NOW + timedelta(minutes=16)) == "late"
    assert state(None) == "broken"
    assert state(None, now=NOW + timedelta(minutes=10)) == "pending"
    assert promise_state(FollowUp(due_at=None), now=NOW, grace=grace) == "waiting"


def test_months_before() -> None:
    assert followups.months_before(NOW, 9) == datetime(2026, 2, 25, 15, 0, tzinfo=UTC)
    assert followups.months_before(datetime(2026, 12, 31, tzinfo=UTC), 10) == datetime(
        2026, 2, 28, tzinfo=UTC
    )
    assert followups.months_before(datetime(2026, 1, 15, tzinfo=UTC), 13) == datetime(
        2024, 12, 15, tzinfo=UTC
    )


def test_silent_defectors_window_and_follow_ups(sessions: sessionmaker[Session]) -> None:
    """Window 9 months: cutoff 25 Feb 2026 15:00."""
    with sessions() as session:
        w = _world(session)
        store, ann = w["store"], w["ann"]

        def customer(name: str, *visits: tuple[datetime, datetime | None], **kw: Any) -> Any:
            c = make_customer(store, name, advisor=ann, **kw)
            session.add(c)
            session.flush()
            for n, (opened, closed) in enumerate(visits):
                session.add(
                    RepairOrder(store_id=store.id, number=f"{name}{n}", customer_id=c.id,
                                status="Closed" if closed else "In Shop", opened_at=opened,
                                closed_at=closed)
                )  # fmt: skip
            session.flush()
            return c

        day = timedelta(days=1)
        lapsed = customer(
            "Lapsed", (datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 6, 2, tzinfo=UTC))
        )  # noqa: E501
        just = customer(
            "Just", (datetime(2026, 2, 20, tzinfo=UTC), datetime(2026, 2, 25, 14, 59, tzinfo=UTC))
        )  # noqa: E501
        customer(
            "Inside", (datetime(2026, 2, 24, tzinfo=UTC), datetime(2026, 2, 25, 15, 1, tzinfo=UTC))
        )  # noqa: E501
        customer("Returned", (datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC)),
                 (NOW - 10 * day, NOW - 9 * day))  # fmt: skip
        customer("OldOpen", (datetime(2025, 1, 1, tzinfo=UTC), None))  # open RO: not a defector
        customer("Dnc", (datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC)),
                 do_not_call=True)  # fmt: skip
        customer("Never")  # no visit at all: not a defector
        session.commit()

        found = followups.silent_defectors(session, store=store, now=NOW)
        assert [(d.customer.first_name, d.last_visit_at) for d in found] == [
            ("Just", datetime(2026, 2, 25, 14, 59, tzinfo=UTC)),
            ("Lapsed", datetime(2025, 6, 2, tzinfo=UTC)),
        ]
        wider = followups.silent_defectors(session, store=store, now=NOW, months=12)
        assert [d.customer.first_name for d in wider] == ["Lapsed"]
        store.follow_ups = {"defector_months": 3}
        session.flush()
        names = [d.customer.first_name for d in followups.silent_defectors(session, store=store,
                                                                              now=NOW)]  # fmt: skip
        assert names == ["Inside", "Just", "Lapsed"]
        store.follow_ups = None

        made = followups.create_defector_follow_ups(
            session, store=store, now=NOW, created_by_id=w["mary"].id
        )
        session.commit()
        assert sorted((f.customer_id, f.owner_id, f.due_at, f.kind) for f in made) == sorted(
            [(lapsed.id, ann.id, NOW, "defector"), (just.id, ann.id, NOW, "defector")]
        )
        again = followups.create_defector_follow_ups(
            session, store=store, now=NOW, created_by_id=None
        )
        assert again == []  # once per lapse


def test_declined_item_on_an_ro_without_advisor_goes_to_the_customers_advisor(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        w = _world(session)
        ro = make_ro(w["jo"], "1002", ["Picked Up"])  # no advisor on this RO
        session.add(ro)
        session.flush()
        _, changes = followups.add_line_item(
            session, ro=ro, description="Battery", status="declined", now=NOW
        )
        session.commit()
        assert [fu.owner_id for fu in changes.created] == [w["bob"].id]
        assert followups.details(session, changes.created) == {
            changes.created[0].id: ("1002", "Battery")
        }
