"""`driveline import` line_item rows: upsert by line code, declined → follow-up (once), approved
closes it, bad rows reported as `row N: field: reason`. Both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from records.importer import import_rows
from records.models import FollowUp, RoLineItem, ThreadEntry

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
BASE: list[dict[str, Any]] = [
    {"type": "store", "store": "EX1", "name": "Example", "timezone": "America/Chicago"},
    {"type": "advisor", "id": "A1", "store": "EX1", "username": "srivera", "name": "Sam Rivera"},
    {"type": "customer", "store": "EX1", "id": "C1", "first_name": "Ann", "advisor": "A1"},
    {"type": "repair_order", "store": "EX1", "number": "70123", "customer": "C1",
     "advisor": "A1", "status": "Tech Working", "opened_at": "2026-11-20 08:00"},
]  # fmt: skip
LINE = {"type": "line_item", "store": "EX1", "repair_order": "70123", "id": "OP-7"}


def _rows(*extra: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    return list(enumerate([*BASE, *extra], start=1))


def test_declined_line_imports_once_with_its_follow_up(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    row = {**LINE, "description": "Front brake pads", "estimate": "$1,249.5",
           "status": "Declined", "decided_at": "2026-11-20 10:00"}  # fmt: skip
    report = import_rows(engine, _rows(row), now=NOW)
    assert report.ok, report.errors
    assert dict(report.counts["line_item"]) == {"created": 1}
    again = import_rows(engine, _rows(row), now=NOW + timedelta(hours=1))
    assert again.counts["line_item"]["unchanged"] == 1
    with sessions() as session:
        [item] = session.scalars(select(RoLineItem)).all()
        assert (item.estimate_cents, item.status) == (124950, "declined")
        assert item.decided_at == datetime(2026, 11, 20, 16, 0, tzinfo=UTC)  # 10:00 Chicago
        [fu] = session.scalars(select(FollowUp)).all()
        assert fu.due_at == datetime(2026, 12, 20, 16, 0, tzinfo=UTC)  # + 30 days
        assert fu.owner is not None and fu.owner.username == "srivera"
        assert fu.text == "Front brake pads"

    approved = import_rows(engine, _rows({**LINE, "status": "approved"}), now=NOW)
    assert approved.counts["line_item"]["updated"] == 1
    with sessions() as session:
        fu = session.scalars(select(FollowUp)).one()
        assert (fu.outcome, fu.done_at) == ("booked", NOW)
        entry = session.scalars(select(ThreadEntry).where(ThreadEntry.kind == "follow_up")).one()
        assert entry.data["follow_up_id"] == fu.id


def test_bad_line_rows_are_reported(engine: Engine) -> None:
    report = import_rows(
        engine,
        _rows(
            {**LINE, "status": "declined"},  # new line without a description
            {**LINE, "id": "OP-8", "description": "x", "status": "maybe"},
            {**LINE, "id": "OP-9", "description": "x", "estimate": "lots"},
            {**LINE, "id": "OP-10", "repair_order": "99999", "description": "x"},
            {**LINE, "id": "OP-11", "description": "Wipers"},  # fine: recommended
        ),
        now=NOW,
    )
    assert report.errors == [
        "row 5: description: required",
        "row 6: status: unknown line status 'maybe' (use recommended, approved, declined, done)",
        "row 7: estimate: not an amount in dollars: 'lots' (e.g. 249.95)",
        "row 8: repair_order: no repair order '99999' at store 'EX1'",
    ]
    assert dict(report.counts["line_item"]) == {"failed": 4, "created": 1}
