"""What "older than the store's retention period" means, in the store's own zone, and what a
call still in progress is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ivr.policies import (
    CALL_MAX_HOURS,
    call_in_progress,
    check_retention_days,
    retention_cutoff,
)


def test_the_cutoff_is_local_midnight_days_before_today() -> None:
    # 01:30 UTC on Dec 4 is still Dec 3 in Chicago (UTC-6): 30 days before Dec 3 is Nov 3.
    now = datetime(2026, 12, 4, 1, 30, tzinfo=UTC)
    assert retention_cutoff(now, 30, "America/Chicago") == datetime(2026, 11, 3, 6, tzinfo=UTC)
    assert retention_cutoff(now, 30, "Europe/Berlin") == datetime(2026, 11, 3, 23, tzinfo=UTC)
    assert retention_cutoff(now, None, "America/Chicago") is None


def test_every_run_of_one_local_day_has_the_same_cutoff_and_keeps_full_days() -> None:
    morning = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)  # 00:00 Chicago
    night = datetime(2026, 12, 4, 5, 59, tzinfo=UTC)  # 23:59 Chicago
    cutoffs = {retention_cutoff(t, 7, "America/Chicago") for t in (morning, night)}
    assert len(cutoffs) == 1
    (cutoff,) = cutoffs
    assert cutoff is not None and night - cutoff >= timedelta(days=7)
    assert morning - cutoff == timedelta(days=7)


def test_the_cutoff_crosses_a_dst_change_on_local_midnight() -> None:
    # Nov 1 2026 is the US fall-back day: 7 local days before Nov 5 is Oct 29, still CDT.
    now = datetime(2026, 11, 5, 18, tzinfo=UTC)
    assert retention_cutoff(now, 7, "America/Chicago") == datetime(2026, 10, 29, 5, tzinfo=UTC)


def test_retention_days_are_checked() -> None:
    assert check_retention_days(None) is None
    assert check_retention_days(90) == 90
    for bad in (0, -1, 3651):
        with pytest.raises(ValueError, match="retention days"):
            check_retention_days(bad)


def test_a_call_is_in_progress_until_it_ends_or_is_too_old_to_be_live() -> None:
    now = datetime(2026, 12, 4, 12, tzinfo=UTC)
    assert call_in_progress(started_at=now - timedelta(minutes=5), ended_at=None, now=now)
    assert not call_in_progress(started_at=now - timedelta(minutes=5), ended_at=now, now=now)
    stale = now - timedelta(hours=CALL_MAX_HOURS, seconds=1)
    assert not call_in_progress(started_at=stale, ended_at=None, now=now)
