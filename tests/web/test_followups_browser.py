"""Working a declined-service follow-up in a real browser (Debian's headless Chromium via
playwright): alice opens Follow-ups, clicks Call (the masked click-to-call is accepted: 202,
and the job carries the follow-up's RO), records "booked" and lands on the thread with it.

The site is the demo store on a temporary SQLite file (records/demo.py seeds the follow-ups),
served by its own uvicorn; Redis is the test database. Screenshots at 1280 px and 375 px land
in test-artifacts/screenshots/ like the other browser tests'.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from sqlalchemy import select

from api.web.sessions import hash_password
from events import outbound
from ivr.config import Settings
from records.db import make_engine, session_factory, transaction, upgrade
from records.demo import seed_demo
from records.models import FollowUp, RepairOrder, User
from tests.web.browser import PASSWORD, open_page, serve, shoot

BRAKES = "Front brake pads at 3 mm"  # a demo declined item of alice's, overdue


@dataclass
class Site:
    url: str
    redis_url: str
    follow_up_id: int
    customer_id: int
    repair_order_id: int
    ro_number: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("followups-web")
    db_url = f"sqlite:///{root / 'driveline.db'}"
    engine = make_engine(db_url)
    upgrade(engine)
    seed_demo(engine)
    with transaction(session_factory(engine)) as session:
        session.scalars(
            select(User).where(User.username == "alice")
        ).one().password_hash = hash_password(PASSWORD)
        fu = session.scalars(select(FollowUp).where(FollowUp.text == BRAKES)).one()
        ro = session.get(RepairOrder, fu.repair_order_id)
        assert ro is not None
        found = (fu.id, fu.customer_id, ro.id, ro.number)
    engine.dispose()
    settings = Settings(database_url=db_url, redis_url=redis_url, recordings_dir=root / "rec")
    with serve(settings) as url:
        yield Site(url, redis_url, *found)


def _take_job(redis_url: str, call_uuid: str) -> dict[str, Any]:
    """Our job from the SIP workers' queue, removed so no worker ever rings alice's phone
    (only ours: other tests may share the queue)."""
    client = redis.Redis.from_url(redis_url)
    try:
        for entry_id, fields in client.xrange(outbound.QUEUE):
            job = json.loads(fields[b"job"])
            if job["call_uuid"] == call_uuid:
                client.xdel(outbound.QUEUE, entry_id)
                return dict(job)
    finally:
        client.close()
    raise AssertionError(f"no queued job for {call_uuid}")


def test_work_a_declined_service_follow_up(web_browser: Any, site: Site) -> None:
    page = open_page(web_browser, site.url, "alice")

    page.get_by_role("navigation").get_by_role("link", name="Follow-ups").click()
    page.wait_for_url(site.url + "/follow-ups")
    rows = page.locator("#my-work > li")
    first = rows.first
    assert "overdue" in (first.get_attribute("class") or "")  # overdue first
    item = page.locator(f"#follow-up-{site.follow_up_id}")
    assert BRAKES in item.inner_text() and f"RO {site.ro_number}" in item.inner_text()
    assert "Overdue" in item.inner_text()
    shoot(page, "follow-ups")

    with page.expect_response(f"**/follow-ups/{site.follow_up_id}/call") as answer:
        item.get_by_role("button", name="Call", exact=False).first.click()
    response = answer.value
    assert response.status == 202, response.text()
    job = _take_job(site.redis_url, response.json()["call_uuid"])
    assert job["repair_order_id"] == site.repair_order_id  # the whisper names the RO
    assert job["customer_id"] == site.customer_id
    item.locator(".call-result", has_text="Calling your phone first").wait_for()

    item.get_by_role("button", name="Booked").click()
    page.wait_for_url(f"**/customers/{site.customer_id}#entry-*")
    entry_id = page.url.rsplit("#", 1)[1]
    entry = page.locator(f"#{entry_id}")
    assert entry.inner_text().count(f"Declined service ({BRAKES}): booked") == 1
    assert "follow up" in entry.locator(".kind").inner_text().lower()
    shoot(page, "follow-up-booked")

    page.goto("/follow-ups")
    assert page.locator(f"#follow-up-{site.follow_up_id}").count() == 0  # closed: off the list
    page.context.close()
