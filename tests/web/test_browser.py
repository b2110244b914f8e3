"""The pages in a real browser (Debian's headless Chromium via playwright; no download).

One uvicorn serves a temporary SQLite database seeded with the demo store plus a recorded,
transcribed call; Redis is the test database. Screenshots of every page at 1280 px and 375 px
land in test-artifacts/screenshots/.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from playwright import sync_api
from sqlalchemy import select

from api.web.sessions import hash_password
from events import outbound
from events.bus import EventBus
from events.calls import CallRinging, publish_call_event
from ivr.config import Settings
from records.db import make_engine, session_factory, transaction, upgrade
from records.demo import DEMO_DID, seed_demo
from records.models import (
    Call,
    Customer,
    PhoneNumber,
    Recording,
    Store,
    ThreadEntry,
    User,
    utcnow,
)
from records.screen_pop import screen_pop_context
from records.transcripts import SegmentRow, call_entry_key, save_transcript
from sip.cli import READY as SIP_READY
from tests.e2e.harness import REPO, SIPP_MEDIA, Sipp, free_udp_port, require_tools
from tests.needs import require
from tests.web.browser import PASSWORD, open_page, serve, shoot

CALLER = "+15550200003"  # demo customer 3: RO 500003, Tech Working
LINES = [
    ("IVR", 0.0, "Thanks for calling Demo Chevrolet service."),
    ("Caller", 3.0, "Hi, is my Equinox ready? The brakes were squealing."),
    ("Advisor", 6.5, "The tech is working on the brakes now, ready by five."),
]


@dataclass
class Site:
    url: str
    db_url: str
    redis_url: str
    store_id: int
    customer_id: int
    call_id: int
    other_customer_id: int
    worker: SipWorker | None  # a real SIP worker on this database, for the sipp test


class SipWorker:
    """`driveline sip` on a free port, started with the site so its prompt synthesis (about
    20 s here) overlaps the other browser tests; only the sipp test waits for it."""

    def __init__(self, db_url: str, redis_url: str, workdir: Path) -> None:
        self.port = free_udp_port()
        self.lines: list[str] = []
        self.ready = threading.Event()
        env = {
            **os.environ,
            "DRIVELINE_DATABASE_URL": db_url,
            "DRIVELINE_REDIS_URL": redis_url,
            "DRIVELINE_SIP_BIND": f"127.0.0.1:{self.port}",
            # The prompt cache is shared by design (keyed by text and voice): one that outlives
            # the run makes the next start take seconds instead of synthesizing everything.
            "DRIVELINE_PROMPTS_DIR": str(Path(tempfile.gettempdir()) / "driveline-test-prompts"),
            "DRIVELINE_RECORDINGS_DIR": str(workdir / "recordings"),
            "DRIVELINE_FLOWS_DIR": str(REPO / "flows"),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "driveline", "sip"],
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            if SIP_READY in line:
                self.ready.set()

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.2):
            assert self.proc.poll() is None, "worker exited:\n" + "\n".join(self.lines[-30:])
            assert time.monotonic() < deadline, "worker not ready:\n" + "\n".join(self.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _sip_tools() -> bool:
    try:
        import pjsua2  # noqa: F401
    except ImportError:
        return False
    return shutil.which("sipp") is not None and (SIPP_MEDIA / "g711a.pcap").exists()


def _tone(path: Path, seconds: float = 10.0) -> None:
    """An 8 kHz mono WAV like the worker records (a quiet 440 Hz tone, decodable anywhere)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = b"".join(
        struct.pack("<h", int(3000 * math.sin(2 * math.pi * 440 * n / 8000)))
        for n in range(int(8000 * seconds))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(frames)


def _seed(db_url: str, rec_dir: Path) -> dict[str, int]:
    engine = make_engine(db_url)
    upgrade(engine)
    seed_demo(engine)
    sessions = session_factory(engine)
    hashed = hash_password(PASSWORD)
    now = utcnow()
    with transaction(sessions) as session:
        for user in session.scalars(select(User).where(User.username.in_(["alice", "maria"]))):
            user.password_hash = hashed
        store = session.scalars(select(Store).where(Store.dms_id == "DEMO")).one()
        customer = session.scalars(
            select(Customer)
            .join(PhoneNumber, PhoneNumber.customer_id == Customer.id)
            .where(PhoneNumber.e164 == CALLER)
        ).one()
        call_uuid = f"web-{uuid.uuid4().hex[:8]}"
        call = Call(
            call_uuid=call_uuid,
            store_id=store.id,
            customer_id=customer.id,
            advisor_id=customer.advisor_id,
            direction="inbound",
            from_number=CALLER,
            to_number=DEMO_DID,
            started_at=now - timedelta(hours=1),
            answered_at=now - timedelta(hours=1),
            ended_at=now - timedelta(hours=1) + timedelta(seconds=10),
            disposition="transferred",
            flow_path=["main.greet", "main.menu", "status_check.say_status", "main.advisor"],
        )
        missed = Call(
            call_uuid=f"web-missed-{uuid.uuid4().hex[:8]}",
            store_id=store.id,
            direction="inbound",
            from_number="+15550299999",
            to_number=DEMO_DID,
            started_at=now - timedelta(minutes=30),
            ended_at=now - timedelta(minutes=29),
            disposition="missed",
            flow_path=[],
        )
        session.add_all([call, missed])
        session.flush()
        relative = f"{now:%Y/%m/%d}/{call_uuid}-caller.wav"
        _tone(rec_dir / relative)
        session.add(Recording(call_id=call.id, path=relative, sha256="0" * 64, duration_s=10.0))
        session.add(
            ThreadEntry(
                store_id=store.id,
                customer_id=customer.id,
                kind="call",
                at=call.started_at,
                body=f"Call transferred from {CALLER}, 0:10",
                call_id=call.id,
                dedupe_key=call_entry_key(call_uuid),
                data={"direction": "inbound"},
            )
        )
        session.flush()
        save_transcript(
            session,
            call_uuid=call_uuid,
            segments=[SegmentRow(s, t, t + 3, text, 0.9) for s, t, text in LINES],
            text=" ".join(text for _, _, text in LINES),
            model="test",
        )
        other = Store(dms_id="OTHER", name="Other Motors")
        session.add(other)
        session.flush()
        stranger = Customer(store_id=other.id, first_name="Olga", last_name="Outside")
        session.add(stranger)
        session.flush()
        ids = {
            "store": store.id,
            "customer": customer.id,
            "call": call.id,
            "other_customer": stranger.id,
        }
    engine.dispose()
    return ids


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("web")
    db_url = f"sqlite:///{root / 'driveline.db'}"
    ids = _seed(db_url, root / "recordings")
    worker = SipWorker(db_url, redis_url, root) if _sip_tools() else None
    settings = Settings(
        database_url=db_url, redis_url=redis_url, recordings_dir=root / "recordings"
    )
    try:
        with serve(settings) as url:
            yield Site(
                url=url,
                db_url=db_url,
                redis_url=redis_url,
                store_id=ids["store"],
                customer_id=ids["customer"],
                call_id=ids["call"],
                other_customer_id=ids["other_customer"],
                worker=worker,
            )
    finally:
        if worker is not None:
            worker.stop()


def test_login_wrong_password_then_right(web_browser: Any, site: Site) -> None:
    page = open_page(web_browser, site.url, None)
    page.goto("/")
    assert "/login" in page.url
    shoot(page, "login")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("not-her-password")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text() == "Wrong username or password."
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")  # keyboard only
    page.wait_for_url(site.url + "/")
    assert "Alice Moreno" in page.inner_text("header")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login")
    page.goto("/")
    assert "/login" in page.url  # the session is gone
    page.context.close()


def test_the_pages_policy_blocks_an_injected_inline_script(web_browser: Any, site: Site) -> None:
    """What the CSP is for: a script that got into a page (say, through an unescaped value)
    does not run, and the watch `shoot` relies on sees it blocked."""
    page = open_page(web_browser, site.url, "alice")
    page.evaluate(
        """() => { const s = document.createElement("script");
                   s.textContent = "window.injected = 1"; document.body.appendChild(s); }"""
    )
    page.wait_for_function("(window.__csp || []).length > 0")
    assert page.evaluate("window.injected") is None
    assert page.evaluate("window.__csp")[0].startswith("script-src")
    page.context.close()


def test_screen_pop_appears_when_a_call_rings(web_browser: Any, site: Site) -> None:
    page = open_page(web_browser, site.url, "alice")
    page.wait_for_selector("#live-status[data-live='1']")
    bus = EventBus(site.redis_url)
    try:
        db = make_engine(site.db_url)
        with session_factory(db)() as session:
            context = screen_pop_context(session, site.store_id, CALLER)
        db.dispose()
        ringing = CallRinging(
            **context,
            call_uuid=f"pop-{uuid.uuid4().hex[:8]}",
            store_id=site.store_id,
            at=utcnow(),
            did=DEMO_DID,
            caller=CALLER,
            caller_raw=CALLER,
        )
        card = page.locator(".pop").first
        for _ in range(20):  # the subscription may go live a moment after the page's onopen
            publish_call_event(bus, ringing)
            try:
                card.wait_for(timeout=500)
                break
            except sync_api.TimeoutError:
                continue
        text = card.inner_text()
        name = context["customer"]["name"]
        assert name in text and "RO 500003" in text and "Tech Working" in text
        assert context["advisor"]["name"] in text
        unknown = CallRinging(
            call_uuid=f"pop-{uuid.uuid4().hex[:8]}",
            store_id=site.store_id,
            at=utcnow(),
            did=DEMO_DID,
            caller="+15550299999",
        )
        publish_call_event(bus, unknown)
        page.wait_for_selector(".pop >> text=Unknown caller")
        assert page.get_by_role("link", name="Find or link the customer").count() == 1
    finally:
        bus.close()
    shoot(page, "home")
    page.context.close()


def test_play_and_seek_by_clicking_a_transcript_line(web_browser: Any, site: Site) -> None:
    page = open_page(web_browser, site.url, "maria")
    statuses: list[int] = []
    page.on(
        "response",
        lambda r: statuses.append(r.status) if "/api/v1/recordings/" in r.url else None,
    )
    page.goto(f"/customers/{site.customer_id}")
    line = page.locator(".transcript .line", has_text="is my Equinox ready")
    assert "Caller" in line.inner_text() and "0:03" in line.inner_text()
    line.click()
    page.wait_for_function("document.querySelector('.call-media audio').currentTime >= 3")
    assert page.evaluate("document.querySelector('.call-media audio').currentTime") < 9
    assert 206 in statuses  # the player streamed with range requests
    page.locator(".transcript .line", has_text="tech is working").focus()
    page.keyboard.press("Enter")  # keyboard seeks too
    page.wait_for_function("document.querySelector('.call-media audio').currentTime >= 6.5")
    shoot(page, "thread")
    page.context.close()


def test_the_thread_announces_what_lands_while_it_is_open(web_browser: Any, site: Site) -> None:
    page = open_page(web_browser, site.url, "maria")
    page.goto(f"/customers/{site.customer_id}")
    page.wait_for_selector("[data-live-thread][data-live='1']")
    news = page.locator(".thread-news")
    assert news.is_hidden()
    db = make_engine(site.db_url)
    try:  # a note written elsewhere (another advisor, the API) while the page is open
        with transaction(session_factory(db)) as session:
            entry = ThreadEntry(store_id=site.store_id, customer_id=site.customer_id,
                                kind="note", body="Parts came early: ready by noon")  # fmt: skip
            session.add(entry)
            session.flush()
            update = {"customer_id": site.customer_id, "entry_id": entry.id, "kind": "note"}
    finally:
        db.dispose()
    assert page.locator(".entries", has_text="Parts came early").count() == 0
    bus = EventBus(site.redis_url)
    try:
        for _ in range(20):  # the subscription may go live a moment after the page's onopen
            bus.publish(site.store_id, "thread.updated", update)
            try:
                news.wait_for(state="visible", timeout=500)
                break
            except sync_api.TimeoutError:
                continue
    finally:
        bus.close()
    news.get_by_role("link").click()
    page.wait_for_selector(".entries >> text=Parts came early: ready by noon")
    assert page.locator(".thread-news").is_hidden()
    page.context.close()


def test_search_finds_the_transcript_and_opens_it_at_the_second(
    web_browser: Any, site: Site
) -> None:
    page = open_page(web_browser, site.url, "maria")
    page.goto("/search")
    page.get_by_label("Words said on a call").fill("brake")
    page.keyboard.press("Enter")
    hits = page.locator(".hit")
    hits.first.wait_for()
    assert hits.count() == 2  # the caller's and the advisor's line
    assert page.locator(".hit mark").first.inner_text().lower().startswith("brake")
    shoot(page, "search")
    page.locator(".hit a").first.click()
    page.wait_for_url(f"**/customers/{site.customer_id}?t=*#call-{site.call_id}")
    page.wait_for_function("document.querySelector('.call-media audio').currentTime >= 3")
    assert page.locator(".transcript .line.current").count() == 1
    page.context.close()


def test_save_an_audit_and_see_the_manager_pages(web_browser: Any, site: Site) -> None:
    page = open_page(web_browser, site.url, "maria")
    page.goto("/audit")
    form = page.locator("form.audit-form").first
    form.wait_for()
    form.get_by_label("Notes on the thread").check()
    form.get_by_label("Comment").fill("Nice notes; close the loop with a text.")
    form.get_by_role("button", name="Save audit").click()
    page.wait_for_selector("text=Audit saved on the thread.")
    assert page.locator(".audit .done").first.inner_text().startswith("Audited: Weekly audit")
    shoot(page, "audit")

    page.goto("/dashboard")
    assert page.locator("svg[role=img] rect").count() == 21  # 7 days x 3 series
    totals = page.locator("table.board tfoot").inner_text()
    assert totals.split()[1:3] == ["2", "1"]  # 2 calls this week, 1 missed
    shoot(page, "dashboard")

    page.goto("/calls")
    page.get_by_label("missed").check()
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/calls?*disposition=missed*")
    assert page.locator("table.calls tbody tr").count() == 1
    assert "+15550299999" in page.locator("table.calls tbody").inner_text()
    shoot(page, "calls")

    page.goto("/flows")
    assert "flows are valid" in page.inner_text("main")
    shoot(page, "flows")
    page.context.close()


def test_advisor_cannot_open_another_stores_thread(web_browser: Any, site: Site) -> None:
    page = open_page(web_browser, site.url, "alice")
    response = page.goto(f"/customers/{site.other_customer_id}")
    assert response is not None and response.status == 404
    assert "Olga" not in page.content()
    page.goto(f"/customers/{site.customer_id}")
    page.get_by_label("Add a note (use @username to hand off)").fill("@maria customer approved")
    page.get_by_role("button", name="Add note").click()
    page.wait_for_selector(".entry >> text=@maria customer approved")
    queue = redis.Redis.from_url(site.redis_url)
    queued = queue.xlen(outbound.QUEUE)  # other tests in this process may have left jobs
    page.get_by_role("button", name="Call Linda").click()  # masked click-to-call
    page.wait_for_selector(".call-result >> text=Calling your phone first")
    assert queue.xlen(outbound.QUEUE) == queued + 1  # handed to the SIP workers
    queue.delete(outbound.QUEUE)  # so the test's own worker never rings alice's demo phone
    queue.close()
    page.goto("/customers?q=500003")
    assert page.locator("table tbody tr").count() == 1
    shoot(page, "customers")
    page.context.close()


def test_a_real_sipp_call_pops_the_card(web_browser: Any, site: Site, tmp_path: Path) -> None:
    """Last, so the SIP worker had the other tests' time to synthesize its prompts: sipp calls
    the worker as demo customer 3, and the card appears on alice's page while it rings."""
    require_tools()  # skips here, fails under CI
    require(site.worker is not None, "the site started no SIP worker")
    assert site.worker is not None
    site.worker.wait_ready()
    page = open_page(web_browser, site.url, "alice")
    page.wait_for_selector("#live-status[data-live='1']")
    page.wait_for_timeout(300)  # the page's Redis subscription goes live just after onopen
    (tmp_path / "sipp").mkdir()
    sipp = Sipp(tmp_path / "sipp", f"127.0.0.1:{site.worker.port}")
    running = sipp.start("hold.xml", service=DEMO_DID, call_id="web", caller=CALLER, hold_ms=3000)
    try:
        card = page.locator(".pop", has_text="RO 500003")
        card.wait_for(timeout=15_000)
        assert "Tech Working" in card.inner_text() and CALLER in card.inner_text()
        page.wait_for_selector(".pop.ended", timeout=20_000)  # call.ended updates the card
    finally:
        result = running.wait()
    assert result.returncode == 0, result.describe()
    page.context.close()


def test_screen_pop_names_the_department_and_the_whole_relationship(
    web_browser: Any, site: Site
) -> None:
    """A service customer calls the sales line: the card says "Calling Sales" and lists the car
    they bought from Sam; a transfer to service then pops "Transferred from Sales to Service"."""
    from events.calls import DepartmentRef
    from records.demo import DEMO_SALES_DID

    caller = "+15550200005"  # demo customer 5: bought their car here, open RO in service
    page = open_page(web_browser, site.url, "alice")
    page.wait_for_selector("#live-status[data-live='1']")
    bus = EventBus(site.redis_url)
    try:
        db = make_engine(site.db_url)
        with session_factory(db)() as session:
            context = screen_pop_context(session, site.store_id, caller)
        db.dispose()
        ringing = CallRinging(
            **context,
            call_uuid=f"sales-{uuid.uuid4().hex[:8]}",
            store_id=site.store_id,
            at=utcnow(),
            did=DEMO_SALES_DID,
            caller=caller,
            department=DepartmentRef(id=1, kind="sales", name="Sales"),
        )
        card = page.locator(".pop", has_text="Calling Sales").first
        for _ in range(20):  # the subscription may go live a moment after the page's onopen
            publish_call_event(bus, ringing)
            try:
                card.wait_for(timeout=500)
                break
            except sync_api.TimeoutError:
                continue
        text = card.inner_text()
        assert context["customer"]["name"] in text
        assert "from Sam Rivera" in card.locator(".pop-relationship .purchase").inner_text()
        assert "open RO" in card.locator(".pop-relationship .visits").inner_text()
        bus.publish(
            site.store_id,
            "call.handoff",
            {
                "department": "service",
                "department_name": "Service",
                "from_department": "sales",
                "from_department_name": "Sales",
                "caller": caller,
                "customer": {"id": context["customer"]["id"], "name": context["customer"]["name"]},
            },
        )
        handoff = page.locator(".pop", has_text="Transferred from Sales to Service").first
        handoff.wait_for(timeout=5000)
        assert context["customer"]["name"] in handoff.inner_text()
    finally:
        bus.close()
    page.context.close()
