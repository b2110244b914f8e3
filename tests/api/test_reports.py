"""GET /api/v1/reports/morning on the seeded week (tests/records/morning_seed.py), both
databases: the counts and ids are the hand-computed ones of tests/records/test_morning.py."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from records.models import Call, Store, utcnow
from tests.api.conftest import Api
from tests.records.morning_seed import seed_week
from tests.records.test_morning import EXPECTED_MEDIANS, EXPECTED_TOTAL_COUNTS

WEEK = "from=2026-11-16&to=2026-11-22"


@pytest.fixture
def week(api: Api, sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions.begin() as session:
        store = session.get(Store, api.world.stores["A"])
        other = session.get(Store, api.world.stores["B"])
        assert store is not None and other is not None
        return seed_week(session, store=store, other=other)


def _get(api: Api, user: str, query: str) -> Any:
    return api.as_(user).get(f"/reports/morning?{query}")


def test_a_week_with_counts_and_ids(api: Api, week: dict[str, int]) -> None:
    response = _get(api, "mary", f"store_id={api.world.stores['A']}&{WEEK}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["from"] == "2026-11-16" and body["to"] == "2026-11-22"
    assert body["store"]["timezone"] == "America/Chicago"
    total = body["total"]["figures"]
    assert {name: f["count"] for name, f in total.items()} == EXPECTED_TOTAL_COUNTS
    service, sales = body["departments"]
    assert (service["kind"], sales["kind"]) == ("service", "sales")
    assert service["figures"]["missed"]["ids"] == sorted([week["c3"], week["c7"]])
    assert service["figures"]["missed"]["of"] == "call"
    assert sales["figures"]["callbacks_overdue"]["ids"] == sorted([week["k4"], week["k6"]])
    assert sales["figures"]["promises_late"]["ids"] == [week["p5"]]
    assert service["figures"]["declined_booked"]["ids"] == sorted([week["d1"], week["d4"]])
    assert service["median_callback_minutes"] == EXPECTED_MEDIANS["service"]
    assert body["total"]["median_callback_minutes"] == EXPECTED_MEDIANS["total"]


def test_default_is_yesterday_in_the_stores_zone(
    api: Api, week: dict[str, int], sessions: sessionmaker[Session]
) -> None:
    zone = ZoneInfo("America/Chicago")
    day = utcnow().astimezone(zone).date() - timedelta(days=1)
    with sessions.begin() as session:
        call = Call(
            call_uuid="morning-yesterday",
            store_id=api.world.stores["A"],
            direction="inbound",
            from_number="+15550400001",
            to_number="+15550300100",
            started_at=datetime.combine(day, datetime.min.time(), tzinfo=zone)
            + timedelta(hours=12),
            disposition="missed",
        )
        session.add(call)
        session.flush()
        call_id = call.id
    body = _get(api, "mary", "").json()  # mary's one store is A
    assert body["from"] == body["to"] == day.isoformat()
    assert body["departments"][0]["figures"]["missed"]["ids"] == [call_id]
    assert body["total"]["figures"]["calls_in"]["count"] == 1


@pytest.mark.parametrize(
    ("query", "code", "reason"),
    [
        ("from=2026-13-01", 422, "date"),
        ("from=2026-11-22&to=2026-11-16", 422, "is before from"),
        ("from=2026-01-01&to=2026-12-31", 422, "365 days; at most 92"),
        ("from=9999-12-31", 422, "days lie between 1970-01-01 and 9999-01-01"),  # was a 500
        ("from=0001-01-01&to=0001-01-02", 422, "days lie between"),
        ("stale_hours=0", 422, "greater than 0"),
        ("store_id=0", 422, "greater than or equal to 1"),
    ],
)
def test_bad_dates_and_ranges_are_4xx_with_a_reason(
    api: Api, query: str, code: int, reason: str
) -> None:
    response = _get(api, "mary", query)
    assert response.status_code == code, response.text
    assert reason in response.text


def test_advisors_may_not_read_it(api: Api) -> None:
    response = _get(api, "ann", "")
    assert response.status_code == 403
    assert response.json() == {"detail": "managers and admins only"}
