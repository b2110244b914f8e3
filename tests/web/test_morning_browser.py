"""The morning view in headless Chromium: a manager sees yesterday's missed call of the
service department, follows the count to the call log and on to the call on its thread.
Screenshots at 1280 and 375 px land in test-artifacts/screenshots/ like the other pages'."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from api.web.sessions import hash_password
from ivr.config import Settings
from records.db import make_engine, session_factory, transaction, upgrade
from records.demo import DEMO_DID, seed_demo
from records.models import Call, Customer, Department, Store, ThreadEntry, User, utcnow
from records.transcripts import call_entry_key
from tests.web.browser import PASSWORD, open_page, serve, shoot


@dataclass
class Site:
    url: str
    call_id: int
    customer_id: int
    department: str


def _seed(db_url: str) -> tuple[int, int, str]:
    """The demo store plus one missed call yesterday at noon (store time), service line."""
    engine = make_engine(db_url)
    upgrade(engine)
    seed_demo(engine)
    with transaction(session_factory(engine)) as session:
        maria = session.scalars(select(User).where(User.username == "maria")).one()
        maria.password_hash = hash_password(PASSWORD)
        store = session.scalars(select(Store).where(Store.dms_id == "DEMO")).one()
        customer = session.scalars(
            select(Customer).where(Customer.store_id == store.id).order_by(Customer.id)
        ).first()
        assert customer is not None
        zone = ZoneInfo(store.timezone)
        day = utcnow().astimezone(zone).date() - timedelta(days=1)
        noon = datetime.combine(day, datetime.min.time(), tzinfo=zone) + timedelta(hours=12)
        call = Call(
            call_uuid=f"morning-{uuid.uuid4().hex[:8]}",
            store_id=store.id,
            customer_id=customer.id,
            direction="inbound",
            from_number="+15550299998",
            to_number=DEMO_DID,
            started_at=noon,
            ended_at=noon + timedelta(seconds=25),
            disposition="missed",
            flow_path=[],
        )
        session.add(call)
        session.flush()
        session.add(
            ThreadEntry(
                store_id=store.id,
                customer_id=customer.id,
                kind="call",
                at=noon,
                body="Missed call from +15550299998",
                call_id=call.id,
                dedupe_key=call_entry_key(call.call_uuid),
                data={"direction": "inbound"},
            )
        )
        service = session.scalars(
            select(Department)
            .where(Department.store_id == store.id, Department.kind == "service")
            .order_by(Department.id)
        ).first()
        ids = (call.id, customer.id, service.name if service else "Service")
    engine.dispose()
    return ids


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("morning")
    db_url = f"sqlite:///{root / 'driveline.db'}"
    call_id, customer_id, department = _seed(db_url)
    settings = Settings(database_url=db_url, redis_url=redis_url, recordings_dir=root / "rec")
    with serve(settings) as url:
        yield Site(url, call_id, customer_id, department)


def test_manager_follows_yesterdays_missed_call_to_its_thread(web_browser: Any, site: Site) -> None:
    page = open_page(web_browser, site.url, "maria")
    page.get_by_role("link", name="Morning", exact=True).click()
    page.wait_for_url("**/morning")
    assert page.get_by_role("heading", name=site.department, exact=True).is_visible()
    missed = page.get_by_role("link", name=f"Missed: 1, {site.department}")
    assert missed.inner_text() == "1"
    shoot(page, "morning")

    missed.focus()
    page.keyboard.press("Enter")  # keyboard only
    page.wait_for_url("**/calls?*ids=*")
    rows = page.locator("table.calls tbody tr")
    assert rows.count() == 1 and "+15550299998" in rows.inner_text()
    rows.get_by_role("link").first.click()
    page.wait_for_url(f"**/customers/{site.customer_id}*")
    assert page.url.endswith(f"#call-{site.call_id}")
    assert page.locator(".entry", has_text="Missed call from +15550299998").is_visible()

    page.goto("/morning?from=2020-01-02&to=2020-01-01")
    assert "is before from" in page.inner_text("main")
    page.context.close()
