"""Filters that make times and numbers sound right on the phone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from ivr.flow.templates import render

NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=NY)  # Wednesday


@pytest.mark.parametrize(
    ("value", "spoken"),
    [
        (datetime(2026, 11, 25, 17, 30, tzinfo=NY), "today at 5:30 PM"),
        (datetime(2026, 11, 26, 9, 0, tzinfo=NY), "tomorrow at 9 AM"),
        (datetime(2026, 11, 26, 14, 0, tzinfo=UTC), "tomorrow at 9 AM"),  # shown in store time
        (datetime(2026, 11, 26, 14, 0), "tomorrow at 9 AM"),  # naive = UTC, as stored
        (datetime(2026, 11, 27, 12, 0, tzinfo=NY), "Friday at 12 PM"),
        (datetime(2026, 12, 7, 0, 15, tzinfo=NY), "Monday, December 7 at 12:15 AM"),
        (None, ""),
    ],
)
def test_spoken_datetime(value: datetime | None, spoken: str) -> None:
    assert render("{{ t|spoken_datetime }}", {"t": value, "now": NOW}) == spoken


def test_other_filters() -> None:
    context = {"now": NOW, "t": datetime(2026, 11, 25, 17, 30, tzinfo=NY)}
    assert render("{{ t|spoken_date }} / {{ t|spoken_time }}", context) == "today / 5:30 PM"
    assert render("{{ '4711'|digits }}", {}) == "4 7 1 1"
    assert render("{{ '+15552010001'|spoken_phone }}", {}) == "5 5 5, 2 0 1, 0 0 0 1"
    assert render("{{ (now|plus_days(1)).date().isoformat() }}", context) == "2026-11-26"


def test_templates_are_sandboxed() -> None:
    from jinja2.exceptions import SecurityError

    with pytest.raises(SecurityError):
        render("{{ ''.__class__.__mro__ }}", {})
