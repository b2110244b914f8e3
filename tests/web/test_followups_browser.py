"""Working a declined-service follow-up in a real browser (Debian's headless Chromium via
playwright): alice opens Follow-ups, clicks Call (the masked click-to-call is accepted: 202,
and the job carries the follow-up's RO), records "booked" and lands on the thread with it.

The site is the demo store on a temporary SQLite file (records/demo.py seeds the follow-ups),
served by its own uvicorn; Redis is the test database. Screenshots at 1280 px and 375 px land
in test-artifacts/screenshots/ like the other browser tests'.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import uvicorn
from sqlalchemy import select

from api.app import create_app
from api.web.sessions import hash_password
from ivr.config import Settings
from records import outbound
from records.db import make_engine, session_factory, transaction, upgrade
from records.demo import seed_demo
from records.models import FollowUp, RepairOrder, User

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "demo-password"
BRAKES = "Front brake pads at 3 mm"  # a demo declined item of alice's, overdue

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")


@dataclass
class Site:
    url: str
    redis_url: str
    follow_up_id: int
    customer_id: int
    repair_order_id: int
    ro_number: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield Site(f"http://127.0.0.1:{port}", redis_url, *found)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def web_browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


def _shoot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(SHOTS / f"{name}-1280.png"), full_page=True)
    page.set_viewport_size({"width": 375, "height": 812})
    page.screenshot(path=str(SHOTS / f"{name}-375.png"), full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{name} scrolls sideways at 375 px by {overflow} px"
    page.set_viewport_size({"width": 1280, "height": 900})


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
    context = web_browser.new_context(viewport={"width": 1280, "height": 900}, base_url=site.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto("/login")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(site.url + "/")

    page.get_by_role("navigation").get_by_role("link", name="Follow-ups").click()
    page.wait_for_url(site.url + "/follow-ups")
    rows = page.locator("#my-work > li")
    first = rows.first
    assert "overdue" in (first.get_attribute("class") or "")  # overdue first
    item = page.locator(f"#follow-up-{site.follow_up_id}")
    assert BRAKES in item.inner_text() and f"RO {site.ro_number}" in item.inner_text()
    assert "Overdue" in item.inner_text()
    _shoot(page, "follow-ups")

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
    _shoot(page, "follow-up-booked")

    page.goto("/follow-ups")
    assert page.locator(f"#follow-up-{site.follow_up_id}").count() == 0  # closed: off the list
    context.close()
