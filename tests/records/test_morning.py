"""The morning view's figures on a seeded week (tests/records/morning_seed.py), SQLite and
PostgreSQL. Every expected list below was worked out by hand from the seed, not by the code."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from records.models import Store
from records.morning import FIGURES, RangeError, check_range, morning_report, yesterday
from tests.records.morning_seed import NOW, seed_week

MONDAY, SUNDAY = date(2026, 11, 16), date(2026, 11, 22)

# Per department: the named rows behind each figure (empty figures left out).
# Calls: c9 (Sunday 23:30 before) and c10 (Monday 00:30 after) are outside the local week,
# c8 is outbound, c30 is another store's. Department None counts as service.
# Avoidable (stale > 4 h): c2 (C1's RO unchanged since Mon 08:00, call Tue 10:00) and c23
# (same RO, Fri 09:00); c1 is 1 h after the change, c6 is 2 h after C2's change.
# Callbacks: k6 (no call) is sales through its owner; k4's call (sales) wins over its owner;
# k8 is outside the week; k9 was created in the week but done Monday after (timed, late).
# Minutes to callback: k1 30, k2 180, k9 5755 (Thu 12:05 → Mon 08:00), k5 20.
# Promises (grace 15 min): p1 done 10 min after due (kept), p2 20 min (late), p3 open past due
# (broken), p4 due Sun 23:50 so its grace runs past the week's end (not counted), p5 done
# late on the Monday after (late: ivr.policies.promise_state reads a done promise by
# when it was done), p6 has no due time, p7 done exactly at due + 15 min (kept).
# Declined: d3 was due before the week but done in it; d2's no answer keeps it open; d5 is
# another store's; d6 is a defector.
EXPECTED_WEEK: dict[str, dict[str, list[str]]] = {
    "service": {
        "calls_in": ["c1", "c2", "c3", "c4", "c5", "c6", "c7", "c11"],
        "answered": ["c1", "c2", "c6"],
        "missed": ["c3", "c7"],
        "abandoned": ["c4"],
        "voicemails": ["c5"],
        "failed": ["c11"],
        "avoidable": ["c2"],
        "callbacks_created": ["k1", "k2", "k3", "k7", "k9"],
        "callbacks_done": ["k1", "k2"],
        "callbacks_overdue": ["k2", "k7", "k9"],
        "callbacks_timed": ["k1", "k2", "k9"],
        "promises_kept": ["p1"],
        "promises_late": ["p2"],
        "promises_broken": ["p3"],
        "declined_due": ["d1", "d2", "d4"],
        "declined_done": ["d1", "d3", "d4"],
        "declined_booked": ["d1", "d4"],
    },
    "sales": {
        "calls_in": ["c20", "c21", "c22", "c23"],
        "answered": ["c20", "c23"],
        "missed": ["c21", "c22"],
        "avoidable": ["c23"],
        "callbacks_created": ["k4", "k5"],
        "callbacks_done": ["k5", "k6"],
        "callbacks_overdue": ["k4", "k6"],
        "callbacks_timed": ["k5"],
        "promises_kept": ["p7"],
        "promises_late": ["p5"],
    },
}
EXPECTED_TOTAL_COUNTS = {
    "calls_in": 12,
    "answered": 5,
    "missed": 4,
    "abandoned": 1,
    "voicemails": 1,
    "failed": 1,
    "avoidable": 2,
    "callbacks_created": 7,
    "callbacks_done": 4,
    "callbacks_overdue": 5,
    "callbacks_timed": 4,
    "promises_kept": 2,
    "promises_late": 2,
    "promises_broken": 1,
    "declined_due": 3,
    "declined_done": 3,
    "declined_booked": 2,
}
# Medians of the minutes above: service (30, 180, 5755) → 180; sales (20); all → (30+180)/2.
EXPECTED_MEDIANS = {"service": 180.0, "sales": 20.0, "total": 105.0}


@pytest.fixture
def week(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions.begin() as session:
        store = Store(dms_id="M-1", name="Morning Motors")
        other = Store(dms_id="M-2", name="Other Motors")
        session.add_all([store, other])
        session.flush()
        ids = seed_week(session, store=store, other=other)
        ids["store"] = store.id
    return ids


def _named(ids: dict[str, int], figures: dict[str, list[int]]) -> dict[str, list[str]]:
    """Row ids back to the seed's names (ids repeat across tables: read them by kind)."""
    prefixes = {"call": ("c",), "callback": ("k",), "follow_up": ("p", "d")}
    kinds = {name: of for name, of, _ in FIGURES}
    out: dict[str, list[str]] = {}
    for figure, row_ids in figures.items():
        by_id = {
            v: n
            for n, v in ids.items()
            if n.startswith(prefixes[kinds[figure]]) and n[1:].isdigit()
        }
        if row_ids:
            out[figure] = sorted((by_id[i] for i in row_ids), key=lambda n: (n[0], int(n[1:])))
    return out


def test_a_week_per_department_with_the_rows_behind_each_figure(
    sessions: sessionmaker[Session], week: dict[str, int]
) -> None:
    with sessions() as session:
        store = session.get(Store, week["store"])
        assert store is not None
        report = morning_report(session, store=store, first=MONDAY, last=SUNDAY, now=NOW)
    assert [(d.kind, d.department_id) for d in report.departments] == [
        ("service", week["service"]),
        ("sales", week["sales"]),
    ]
    for dept in report.departments:
        assert _named(week, dept.ids) == EXPECTED_WEEK[dept.kind], dept.kind
        assert dept.median_callback_minutes == EXPECTED_MEDIANS[dept.kind]
    assert {f: report.total.count(f) for f, _, _ in FIGURES} == EXPECTED_TOTAL_COUNTS
    assert report.total.median_callback_minutes == EXPECTED_MEDIANS["total"]

    body = report.to_json()
    assert body["from"] == "2026-11-16" and body["to"] == "2026-11-22"
    assert body["since"] == "2026-11-16T06:00:00+00:00"  # Chicago midnight
    service = body["departments"][0]["figures"]
    assert service["missed"] == {
        "count": 2,
        "ids": sorted([week["c3"], week["c7"]]),
        "of": "call",
    }


def test_yesterday_is_the_stores_local_day(
    sessions: sessionmaker[Session], week: dict[str, int]
) -> None:
    """At 07:00 Monday in Chicago, yesterday is Sunday 22: c7 (23:30) and k3 (23:35); p4,
    due 23:50, is still within its grace at midnight, so it is not broken yet."""
    with sessions() as session:
        store = session.get(Store, week["store"])
        assert store is not None
        day = yesterday(store, NOW)
        assert day == SUNDAY
        report = morning_report(session, store=store, first=day, last=day, now=NOW)
    service, sales = report.departments
    assert _named(week, service.ids) == {
        "calls_in": ["c7"],
        "missed": ["c7"],
        "callbacks_created": ["k3"],
    }
    assert _named(week, sales.ids) == {}
    assert service.median_callback_minutes is None


def test_the_stores_grace_and_the_stale_hours_move_figures(
    sessions: sessionmaker[Session], week: dict[str, int]
) -> None:
    """Grace 30 min makes p2 (20 min after due) kept; 48 h stale keeps only c23 (97 h)."""
    with sessions.begin() as session:
        store = session.get(Store, week["store"])
        assert store is not None
        store.follow_ups = {"promise_grace_minutes": 30}
    with sessions() as session:
        store = session.get(Store, week["store"])
        assert store is not None
        report = morning_report(
            session, store=store, first=MONDAY, last=SUNDAY, now=NOW, stale_hours=48
        )
    service = _named(week, report.departments[0].ids)
    assert service["promises_kept"] == ["p1", "p2"] and "promises_late" not in service
    assert _named(week, report.total.ids)["avoidable"] == ["c23"]


def test_a_store_without_departments_gets_one_service_row(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        store = Store(dms_id="M-3", name="Plain Motors", timezone="America/Chicago")
        session.add(store)
    with sessions() as session:
        store = session.scalars(select(Store).where(Store.dms_id == "M-3")).one()
        report = morning_report(session, store=store, first=MONDAY, last=MONDAY, now=NOW)
    assert [(d.department_id, d.kind, d.name) for d in report.departments] == [
        (None, "service", "Service")
    ]
    assert report.total.count("calls_in") == 0


@pytest.mark.parametrize(
    ("first", "last", "reason"),
    [
        (date(2026, 11, 22), date(2026, 11, 16), "is before from"),
        (date(2026, 1, 1), date(2026, 12, 31), "at most 92"),
        (date(9999, 12, 30), date(9999, 12, 31), "days lie between"),  # the bounds overflow
    ],
)
def test_bad_ranges_are_refused(first: date, last: date, reason: str) -> None:
    with pytest.raises(RangeError, match=reason):
        check_range(first, last)
