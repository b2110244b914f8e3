from datetime import UTC, datetime

import pytest

from ivr.domain import StoreInfo, parse_hours

HOURS = {"mon": [["07:00", "18:00"]], "sat": [["08:00", "14:00"]]}


def store(tz: str = "America/New_York") -> StoreInfo:
    return StoreInfo(id=1, name="Demo", timezone=tz, hours=HOURS)


def test_open_hours_are_read_in_the_store_time_zone() -> None:
    # Monday 2026-11-23 12:30 UTC is 07:30 in New York: open. 11:30 UTC is 06:30: closed.
    assert store().is_open(datetime(2026, 11, 23, 12, 30, tzinfo=UTC))
    assert not store().is_open(datetime(2026, 11, 23, 11, 30, tzinfo=UTC))
    # The same instant is 04:30 in Los Angeles: closed there.
    assert not store("America/Los_Angeles").is_open(datetime(2026, 11, 23, 12, 30, tzinfo=UTC))


def test_closing_time_and_missing_days_are_closed() -> None:
    assert not store().is_open(datetime(2026, 11, 23, 23, 0, tzinfo=UTC))  # 18:00 NY
    assert not store().is_open(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))  # Tuesday
    assert store().is_open(datetime(2026, 11, 28, 15, 0, tzinfo=UTC))  # Saturday 10:00


@pytest.mark.parametrize(
    "hours, message",
    [
        ({"funday": [["07:00", "18:00"]]}, "unknown day"),
        ({"mon": [["18:00", "07:00"]]}, "before it opens"),
        ({"mon": [["7am", "18:00"]]}, "hours.mon"),
        ({"mon": [["07:00"]]}, "[open, close]"),
    ],
)
def test_bad_hours_name_the_day(hours: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_hours(hours)
