"""Opening hours as callers ask about them (ivr/hours.py): time zones, closures, short days,
the week read aloud, the day a caller names; and the flow checks of `department:` targets."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path

from ivr.domain import DepartmentInfo, StoreInfo, parse_closures
from ivr.hours import Hours, HoursView, day_asked
from tests.ivr.test_loader import GOOD, only

WEEK = {d: [["07:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")} | {
    "sat": [["08:00", "13:00"]]
}
CLOSURES = parse_closures(
    [
        {"date": "2026-11-26", "name": "Thanksgiving Day"},
        {"date": "2026-12-24", "name": "Christmas Eve", "hours": [["08:00", "12:00"]]},
    ]
)


def store(tz: str = "America/Chicago") -> StoreInfo:
    return StoreInfo(id=1, name="Demo", timezone=tz, hours=WEEK, closures=CLOSURES)


def test_open_at_is_in_the_store_time_zone() -> None:
    hours = Hours.of(store())
    monday_noon_utc = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)  # 6:30 AM in Chicago
    assert not hours.open_at(monday_noon_utc)
    assert hours.open_at(datetime(2026, 11, 23, 13, 30, tzinfo=UTC))  # 7:30 AM
    assert Hours.of(store("Asia/Tokyo")).open_at(monday_noon_utc) is False  # 9:30 PM Monday


def test_closures_replace_the_weekday() -> None:
    hours = Hours.of(store())
    thanksgiving = datetime(2026, 11, 26, 16, 0, tzinfo=UTC)  # Thursday 10 AM
    assert not hours.open_at(thanksgiving)
    assert hours.next_open(thanksgiving) == datetime(2026, 11, 27, 13, 0, tzinfo=UTC)
    eve = hours.spans_on(date(2026, 12, 24))
    assert eve == ((time(8), time(12)),) and hours.closure_on(date(2026, 12, 24)) is not None
    assert hours.closes_at(datetime(2026, 12, 24, 15, 0, tzinfo=UTC)) == datetime(
        2026, 12, 24, 12, 0, tzinfo=hours.tz
    )


def test_next_open_skips_the_weekend() -> None:
    saturday_evening = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)  # 4 PM Saturday in Chicago
    assert Hours.of(store()).next_open(saturday_evening) == datetime(
        2026, 11, 30, 13, 0, tzinfo=UTC
    )
    assert Hours(weekly={}, closures=(), tz=store().tz).next_open(saturday_evening) is None


def test_the_week_read_aloud() -> None:
    assert Hours.of(store()).describe_week() == (
        "Monday to Friday 7 AM to 6 PM, Saturday 8 AM to 1 PM, closed Sunday"
    )
    split = store().hours | {"wed": [["07:00", "12:00"], ["13:00", "17:30"]]}
    hours = Hours.of(StoreInfo(id=1, name="x", timezone="UTC", hours=split))
    assert hours.describe_week() == (
        "Monday and Tuesday 7 AM to 6 PM, Wednesday 7 AM to noon and 1 PM to 5:30 PM, "
        "Thursday and Friday 7 AM to 6 PM, Saturday 8 AM to 1 PM, closed Sunday"
    )
    assert Hours(weekly={}, closures=(), tz=store().tz).describe_week() == "closed"


def test_a_department_keeps_its_own_hours_and_the_store_closures() -> None:
    sales = DepartmentInfo(id=2, kind="sales", name="Sales", hours={"sun": [["11:00", "17:00"]]})
    hours = Hours.of(store(), sales)
    assert hours.describe_week() == "Sunday 11 AM to 5 PM, closed Monday to Saturday"
    assert hours.closures == CLOSURES
    service = DepartmentInfo(id=1, kind="service", name="Service", hours=None)
    assert Hours.of(store(), service).weekly == Hours.of(store()).weekly


def test_the_day_a_caller_asks_about() -> None:
    wednesday = date(2026, 11, 25)
    assert day_asked("are you open Saturday?", wednesday) == date(2026, 11, 28)
    assert day_asked("open on saturdays", wednesday) == date(2026, 11, 28)
    assert day_asked("are you open wednesday", wednesday) == wednesday
    assert day_asked("open tomorrow", wednesday) == date(2026, 11, 26)
    assert day_asked("are you open", wednesday) == wednesday
    assert day_asked(None, wednesday) == wednesday
    view = HoursView(Hours.of(store()), datetime(2026, 11, 25, 16, 0, tzinfo=UTC))
    thursday = view.day("are you open tomorrow")
    assert (thursday.label, thursday.open, thursday.closure) == (
        "tomorrow",
        False,
        "Thanksgiving Day",
    )
    assert view.reopens(thursday) == "Friday at 7 AM"
    assert view.open_now and view.closes_at == "6 PM"
    assert [d.label for d in view.closures_ahead] == ["tomorrow"]


def test_bad_closures_are_refused() -> None:
    for bad, message in (
        ([{"name": "x"}], "closures[0]: needs a date (YYYY-MM-DD)"),
        ([{"date": "12/25"}], "closures[0].date: '12/25' is not YYYY-MM-DD"),
        (
            [{"date": "2026-12-24", "hours": [["12:00", "08:00"]]}],
            "closures[0].hours: closes 08:00 before it opens 12:00",
        ),
    ):
        try:
            parse_closures(bad)
        except ValueError as exc:
            assert str(exc) == message
        else:
            raise AssertionError(f"accepted {bad}")


def test_transfer_to_an_unknown_department_names_file_line_and_field(tmp_path: Path) -> None:
    text = GOOD.replace("    hangup: Goodbye.", "    transfer: {to: 'department:valet'}")
    line, field, message = only(tmp_path, text)
    assert (line, field) == (14, "steps.bye.transfer.to")
    assert message.startswith("unknown department 'valet': use department:KIND with service")


def test_a_callback_due_over_a_holiday_falls_due_after_the_next_real_opening() -> None:
    """A voicemail left the evening before Thanksgiving is due two hours after Friday's
    opening, not on the holiday (the voicemail step and the call writer both use this)."""
    from ivr.flow.steps.voicemail import due_time

    wednesday_evening = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)  # Wed 7 PM in Chicago
    friday_nine = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # Fri 9 AM: 7 AM opening + 2 h
    assert Hours.of(store()).due_after(wednesday_evening, 7200) == friday_nine
    assert due_time(store(), wednesday_evening, 7200, business_hours=True) == friday_nine
    monday_noon = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)  # open: counts from now
    assert due_time(store(), monday_noon, 3600, business_hours=True) == datetime(
        2026, 11, 23, 19, 0, tzinfo=UTC
    )
    assert due_time(store(), wednesday_evening, 60, business_hours=False) == datetime(
        2026, 11, 26, 1, 1, tzinfo=UTC
    )
