"""Masked click-to-call with real SIP: the API queues it, a `driveline sip` worker places it.

One `driveline sip --fake-tts` process per test (its trunk points at that test's customer
phone), a migrated SQLite file, Redis, and two sipp UASes: the advisor's phone (rung first, by
its SIP URI) and the customer's (reached "through the trunk" by number). `POST /calls` goes
through the real API app; the call writer then turns the worker's events into the record.

The customer's phone logs every message it receives (`-trace_msg`): its INVITE must name only
the store's number, never the advisor's number, SIP user or port, in any header or SDP line.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.auth import issue_token
from api.webhook_auth import signed_headers
from events import outbound
from events.bus import STREAM, EventBus
from ivr.config import Settings
from ivr.phone import FICTIONAL
from records import integrations
from records.call_writer import CallWriterConsumer
from records.db import make_engine, session_factory
from records.models import (
    Call,
    CallbackTask,
    Customer,
    PhoneNumber,
    Recording,
    RepairOrder,
    Store,
    StoreNumber,
    ThreadEntry,
    User,
    Vehicle,
)
from tests.e2e.harness import (
    REPO,
    RtpPeer,
    RunningUas,
    Sipp,
    free_udp_port,
    loud_packets,
    require_tools,
    wav_info,
)

DID = "+15550300100"
CUSTOMER_PHONE = "+15550201234"
ADVISOR_PHONE = "+15550109001"
ADVISOR_USER = "adv7781"  # the user part of the advisor's SIP URI


@dataclass
class World:
    db_url: str
    engine: Engine
    sessions: sessionmaker[Session]
    store_id: int = 0
    advisor_id: int = 0
    customer_id: int = 0
    ro_id: int = 0
    token: str = ""
    made: list[Any] = field(default_factory=list)


@pytest.fixture
def world(tmp_path: Path, sqlite_template: Path) -> Iterator[World]:
    path = tmp_path / "driveline.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    sessions = session_factory(engine)
    w = World(url, engine, sessions)
    with sessions() as session:
        store = Store(
            dms_id="S1",
            name="Masked Motors",
            timezone="UTC",
            hours={day: [["00:00", "23:59"]] for day in ("mon", "tue", "wed", "thu", "fri",
                                                         "sat", "sun")},
            recording_consent=False,
            numbers=[StoreNumber(e164=DID)],
            outbound={"advisor_ring_s": 3, "customer_ring_s": 3, "allow": [FICTIONAL]},
        )  # fmt: skip
        session.add(store)
        session.flush()
        advisor = User(username="ann", name="Ann Lee", role="advisor", phone=ADVISOR_PHONE,
                       stores=[store])  # fmt: skip
        customer = Customer(
            store_id=store.id,
            first_name="Jo",
            last_name="Smith",
            advisor=advisor,
            phones=[PhoneNumber(store_id=store.id, e164=CUSTOMER_PHONE)],
            vehicles=[Vehicle(store_id=store.id, year=2019, make="Chevy", model="Silverado")],
        )
        session.add_all([advisor, customer])
        session.flush()
        ro = RepairOrder(store_id=store.id, number="42", customer_id=customer.id,
                         vehicle_id=customer.vehicles[0].id, advisor_id=advisor.id,
                         status="Tech Working")  # fmt: skip
        session.add(ro)
        session.flush()
        w.store_id, w.advisor_id, w.customer_id, w.ro_id = (
            store.id, advisor.id, customer.id, ro.id)  # fmt: skip
        w.token = issue_token(session, advisor, "test")
        session.commit()
    yield w
    engine.dispose()


class SipWorkerProcess:
    """`driveline sip --fake-tts` with its trunk pointing at `trunk_port`."""

    def __init__(
        self,
        workdir: Path,
        db_url: str,
        redis_url: str,
        trunk_port: int,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_udp_port()
        self.recordings = workdir / "recordings"
        env = {
            **os.environ,
            "DRIVELINE_DATABASE_URL": db_url,
            "DRIVELINE_REDIS_URL": redis_url,
            "DRIVELINE_RECORDINGS_DIR": str(self.recordings),
            "DRIVELINE_PROMPTS_DIR": str(workdir / "prompts"),
            "DRIVELINE_FLOWS_DIR": str(REPO / "flows"),
            "DRIVELINE_TRUNK_URI": f"sip:{{number}}@127.0.0.1:{trunk_port}",
            "DRIVELINE_TRUNK_REALM": "trunk.test",  # the realm trunk_digest.xml challenges with
            "DRIVELINE_DIAL_ALLOW": json.dumps([FICTIONAL]),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.log = (workdir / "worker.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "driveline", "sip", "--fake-tts",
             "--bind", f"127.0.0.1:{self.port}"],
            cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=self.log, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._ready = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()
        if not self._ready.wait(20):
            self.close()
            raise AssertionError(f"worker not ready: {self.lines} {self.log_text()[-2000:]}")

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            if "sip worker ready on" in line:
                self._ready.set()

    def log_text(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()


@dataclass
class Rig:
    world: World
    sipp: Sipp
    redis_url: str
    tmp: Path
    peers: list[RtpPeer] = field(default_factory=list)
    uases: list[RunningUas] = field(default_factory=list)
    worker: SipWorkerProcess | None = None
    group: str = ""

    def phone(self, scenario: str, hold_ms: int = 0, timeout: float = 25.0) -> RunningUas:
        peer = RtpPeer()
        self.peers.append(peer)
        uas = self.sipp.start_uas(scenario, rtp_sink=peer.port, hold_ms=hold_ms, timeout=timeout)
        self.uases.append(uas)
        return uas

    def start_worker(
        self, customer: RunningUas | None = None, env: dict[str, str] | None = None
    ) -> SipWorkerProcess:
        trunk_port = customer.port if customer else free_udp_port()  # nobody answers there
        self.worker = SipWorkerProcess(self.tmp, self.world.db_url, self.redis_url, trunk_port, env)
        return self.worker

    def set_advisor_contact(self, advisor: RunningUas) -> str:
        uri = f"sip:{ADVISOR_USER}@127.0.0.1:{advisor.port}"
        with self.world.sessions.begin() as session:
            session.get(User, self.world.advisor_id).sip_contact = uri  # type: ignore[union-attr]
        return uri

    def place(self, **body: Any) -> dict[str, Any]:
        settings = Settings(database_url=self.world.db_url, redis_url=self.redis_url)
        bus = EventBus(self.redis_url)
        try:
            app = create_app(settings, engine=self.world.engine, bus=bus)
            with TestClient(app) as client:
                response = client.post(
                    "/api/v1/calls",
                    json=body or {"customer_id": self.world.customer_id,
                                  "repair_order_id": self.world.ro_id},
                    headers={"Authorization": f"Bearer {self.world.token}"},
                )  # fmt: skip
        finally:
            bus.close()
        assert response.status_code == 202, response.text
        return dict(response.json())

    def record(self, call_id: int, timeout: float = 30.0) -> Call:
        """Run the call writer until the call has its disposition; the row with legs."""
        consumer = CallWriterConsumer(
            self.world.engine, self.redis_url, consumer_name="t", group=self.group,
            dead_letter_stream=f"{self.group}:dead", claim_every_s=3600,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                consumer.poll_once(block_ms=200)
                with self.world.sessions() as session:
                    call = session.get(Call, call_id)
                    if call is not None and call.disposition is not None:
                        call.legs  # noqa: B018 - load them before the session closes
                        return call
        finally:
            consumer.close()
        raise AssertionError(f"no record for call {call_id}: {self.worker_log()[-3000:]}")

    def worker_log(self) -> str:
        return self.worker.log_text() if self.worker else ""

    def outbound_states(self, call_uuid: str) -> list[str]:
        client = redis.Redis.from_url(self.redis_url)
        try:
            out = []
            for _, fields in client.xrange(STREAM):
                event = json.loads(fields[b"event"])
                data = event["data"]
                if event["type"] == "call.outbound" and data.get("call_uuid") == call_uuid:
                    out.append(data["state"])
            return out
        finally:
            client.close()


@pytest.fixture
def rig(world: World, redis_url: str, tmp_path: Path) -> Iterator[Rig]:
    require_tools()
    client = redis.Redis.from_url(redis_url)
    group = f"test-writer-{uuid.uuid4().hex[:8]}"
    client.xgroup_create(STREAM, group, id="$", mkstream=True)  # only this test's events
    # Only this test's jobs: a test run earlier in this process may have queued a call that
    # no worker took (the pages' Call button), and this worker would place it.
    client.delete(outbound.QUEUE, outbound.DELAYED)
    client.close()
    r = Rig(world, Sipp(tmp_path, "127.0.0.1:9"), redis_url, tmp_path, group=group)
    try:
        yield r
    finally:
        if r.worker is not None:
            r.worker.close()
        for uas in r.uases:
            uas.stop()
        for peer in r.peers:
            peer.close()


def received_invite(messages: str) -> str:
    """The INVITE a sipp UAS logged as received (header lines and SDP)."""
    for block in messages.split("-" * 47 + " ")[1:]:
        if "message received" not in block.split("\n", 1)[0] + block[:200]:
            continue
        body = block.split("\n\n", 1)[1] if "\n\n" in block else block
        if body.lstrip().startswith("INVITE "):
            return body
    raise AssertionError(f"no INVITE received:\n{messages[:3000]}")


def test_masked_call_rings_the_advisor_then_the_customer_showing_only_the_store(
    rig: Rig,
) -> None:
    advisor = rig.phone("advisor_answer.xml", hold_ms=300)  # answers, waits for our BYE
    customer = rig.phone("advisor_hangup.xml", hold_ms=3000)  # answers, talks 3 s, hangs up
    advisor_uri = rig.set_advisor_contact(advisor)
    rig.start_worker(customer)
    placed = rig.place()

    heard_by_customer = customer.wait()
    assert heard_by_customer.returncode == 0, heard_by_customer.describe()
    far = advisor.wait()
    assert far.returncode == 0, far.describe() + rig.worker_log()[-3000:]
    assert "\nBYE sip:" in far.messages  # the customer hung up: the advisor's leg ended too
    assert f"From: sip:{DID}@" in received_invite(far.messages)  # the store calls the advisor

    invite = received_invite(heard_by_customer.messages)
    headers, _, sdp = invite.partition("\n\n")
    from_line = next(line for line in headers.splitlines() if line.lower().startswith("from:"))
    pai = [line for line in headers.splitlines() if line.lower().startswith("p-asserted-")]
    assert DID in from_line, from_line
    assert pai and DID in pai[0], headers
    assert CUSTOMER_PHONE in headers.splitlines()[0]  # the Request-URI, through the trunk
    for secret in (ADVISOR_USER, ADVISOR_PHONE, ADVISOR_PHONE[2:], f":{advisor.port}",
                   advisor_uri, "Ann", "Lee"):  # fmt: skip
        assert secret not in invite, f"{secret!r} leaked into the customer's INVITE:\n{invite}"
    assert "o=" in sdp and ADVISOR_USER not in sdp

    call = rig.record(placed["id"])
    assert call.direction == "outbound" and call.disposition == "transferred"
    assert call.from_number == DID and call.to_number == CUSTOMER_PHONE
    assert call.advisor_id == rig.world.advisor_id and call.answered_at is not None
    roles = {leg.role: leg for leg in call.legs}
    assert set(roles) == {"caller", "advisor"}
    assert roles["caller"].party == CUSTOMER_PHONE and roles["caller"].answered_at is not None
    assert roles["advisor"].user_id == rig.world.advisor_id
    assert call.flow_path[-1] == "outbound.connected"
    with rig.world.sessions() as session:
        recordings = session.scalars(select(Recording).where(Recording.call_id == call.id)).all()
        entry = session.scalars(select(ThreadEntry).where(ThreadEntry.call_id == call.id)).one()
    assert {r.path.rsplit("-", 1)[-1] for r in recordings} == {"caller.wav", "advisor.wav"}
    for recording in recordings:
        seconds, peak, digest = wav_info(rig.worker.recordings / recording.path)  # type: ignore[union-attr]
        assert digest == recording.sha256 and seconds > 1.0
        assert peak > 2000, f"{recording.path} is silence"
    assert entry.customer_id == rig.world.customer_id
    assert entry.body.startswith(f"Outbound call by Ann Lee to {CUSTOMER_PHONE}")
    states = rig.outbound_states(placed["call_uuid"])
    assert states[:4] == ["queued", "calling_advisor", "whispering", "calling_customer"]
    assert "connected" in states and states[-1] == "ended"
    # both directions of the bridge carried speech
    advisor_peer, customer_peer = rig.peers
    assert len(loud_packets(customer_peer.drain())) >= 25  # the advisor's speech, and whisper-free
    assert len(loud_packets(advisor_peer.drain())) >= 25


def _trunk_credentials(password: str) -> dict[str, str]:
    return {"DRIVELINE_TRUNK_USERNAME": "trunkuser", "DRIVELINE_TRUNK_PASSWORD": password}


def test_a_trunk_asking_for_digest_credentials_gets_them(rig: Rig) -> None:
    advisor = rig.phone("advisor_answer.xml", hold_ms=300)
    trunk = rig.phone("trunk_digest.xml", hold_ms=1500)  # 401 first; 200 only to a good digest
    rig.set_advisor_contact(advisor)
    rig.start_worker(trunk, env=_trunk_credentials("trunk-s3cret"))
    placed = rig.place()

    heard = trunk.wait()
    assert heard.returncode == 0, heard.describe() + rig.worker_log()[-3000:]
    assert 'Authorization: Digest username="trunkuser"' in heard.messages
    assert "trunk-s3cret" not in heard.messages  # a digest, never the password itself
    call = rig.record(placed["id"])
    assert call.disposition == "transferred" and call.answered_at is not None


def test_credentials_are_not_offered_to_another_realm(rig: Rig) -> None:
    """A challenge naming a realm other than the trunk's (someone else's server on the path)
    gets no digest at all: the credentials are for the trunk's realm alone."""
    advisor = rig.phone("advisor_answer.xml", hold_ms=300)
    trunk = rig.phone("trunk_digest.xml", hold_ms=1500, timeout=8)  # challenges: trunk.test
    rig.set_advisor_contact(advisor)
    env = {**_trunk_credentials("trunk-s3cret"), "DRIVELINE_TRUNK_REALM": "pbx.example"}
    rig.start_worker(trunk, env=env)
    placed = rig.place()

    heard = trunk.wait()
    assert heard.returncode != 0  # it waited in vain for an INVITE with credentials
    assert "Authorization:" not in heard.messages, heard.messages[-2000:]
    assert advisor.wait().returncode == 0
    call = rig.record(placed["id"])
    assert call.disposition == "failed"


def test_a_wrong_trunk_password_ends_the_call_cleanly(rig: Rig) -> None:
    advisor = rig.phone("advisor_answer.xml", hold_ms=300)
    trunk = rig.phone("trunk_digest.xml", hold_ms=1500)
    rig.set_advisor_contact(advisor)
    rig.start_worker(trunk, env=_trunk_credentials("not-the-password"))
    placed = rig.place()

    assert trunk.wait().returncode != 0  # the trunk refused the digest with 403
    far = advisor.wait()
    assert far.returncode == 0, far.describe()  # the advisor heard so and got our BYE
    call = rig.record(placed["id"])
    assert (call.disposition, call.flow_path[-1]) == ("failed", "outbound.customer_failed")
    assert {leg.role for leg in call.legs if leg.answered_at} == {"advisor"}
    states = rig.outbound_states(placed["call_uuid"])
    assert "connected" not in states and states[-1] == "failed"


def test_a_worker_killed_during_a_masked_call_closes_it_when_it_starts_again(rig: Rig) -> None:
    advisor = rig.phone("advisor_answer.xml", hold_ms=300, timeout=40)
    customer = rig.phone("advisor_hangup.xml", hold_ms=30000, timeout=40)  # talks for 30 s
    rig.set_advisor_contact(advisor)
    worker = rig.start_worker(customer)
    placed = rig.place()
    deadline = time.monotonic() + 20
    while "connected" not in rig.outbound_states(placed["call_uuid"]):
        assert time.monotonic() < deadline, rig.worker_log()[-3000:]
        time.sleep(0.1)
    time.sleep(1.5)  # a second or so of both legs on disk

    os.kill(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait(timeout=5)
    worker.log.close()
    rig.worker = SipWorkerProcess(
        rig.tmp, rig.world.db_url, rig.redis_url, customer.port, port=worker.port
    )
    assert any("closed 1 call(s) left open" in line for line in rig.worker.lines)

    call = rig.record(placed["id"])
    assert (call.direction, call.disposition) == ("outbound", "failed")
    assert call.answered_at is not None  # the customer had answered
    legs = {leg.role: leg for leg in call.legs}
    assert set(legs) == {"caller", "advisor"}
    assert legs["caller"].party == CUSTOMER_PHONE
    assert legs["advisor"].user_id == rig.world.advisor_id
    with rig.world.sessions() as session:
        recordings = session.scalars(select(Recording).where(Recording.call_id == call.id)).all()
    assert {r.path.rsplit("-", 1)[-1] for r in recordings} == {"caller.wav", "advisor.wav"}
    for recording in recordings:  # repaired: complete headers, the checksum of the file
        seconds, _peak, digest = wav_info(rig.worker.recordings / recording.path)
        assert digest == recording.sha256 and seconds >= 1.0
    assert rig.outbound_states(placed["call_uuid"])[-1] == "failed"
    client = redis.Redis.from_url(rig.redis_url)
    try:  # the dead worker's job is no longer pending on the queue
        pending = client.xpending_range(outbound.QUEUE, outbound.GROUP, "-", "+", 100)
        jobs = [client.xrange(outbound.QUEUE, p["message_id"], p["message_id"]) for p in pending]
    finally:
        client.close()
    assert not [j for j in jobs if j and placed["call_uuid"].encode() in j[0][1][b"job"]]


def test_advisor_not_answering_dials_nobody(rig: Rig) -> None:
    advisor = rig.phone("advisor_ring.xml")  # rings until cancelled
    customer = rig.phone("advisor_answer.xml", timeout=8)  # must never be rung
    rig.set_advisor_contact(advisor)
    rig.start_worker(customer)
    placed = rig.place()
    assert advisor.wait().returncode == 0  # got the CANCEL after the 3 s ring
    call = rig.record(placed["id"])
    assert call.disposition == "missed"
    assert call.flow_path == ["outbound.advisor", "outbound.advisor_no_answer"]
    silent = customer.wait()
    assert "INVITE" not in silent.messages, "the customer was dialled"
    with rig.world.sessions() as session:
        entry = session.scalars(select(ThreadEntry).where(ThreadEntry.call_id == call.id)).one()
    assert entry.body == (
        f"Attempted call by Ann Lee to {CUSTOMER_PHONE}: the advisor did not answer"
    )
    assert "advisor_no_answer" in rig.outbound_states(placed["call_uuid"])


def test_customer_busy_is_told_to_the_advisor_and_ends_cleanly(rig: Rig) -> None:
    advisor = rig.phone("advisor_answer.xml", hold_ms=200)
    customer = rig.phone("advisor_busy.xml")  # 486 Busy Here
    rig.set_advisor_contact(advisor)
    rig.start_worker(customer)
    placed = rig.place()
    refused = customer.wait()
    assert refused.returncode == 0
    (busy_at,) = refused.message_times("SIP/2.0 486")
    far = advisor.wait()
    assert far.returncode == 0, far.describe()  # the advisor got our BYE after the prompt
    call = rig.record(placed["id"])
    assert call.disposition == "missed"
    assert call.flow_path[-1] == "outbound.customer_busy"
    with rig.world.sessions() as session:
        entry = session.scalars(select(ThreadEntry).where(ThreadEntry.call_id == call.id)).one()
        tasks = session.scalars(select(CallbackTask)).all()
    assert entry.body == f"Attempted call by Ann Lee to {CUSTOMER_PHONE}: busy"
    assert tasks == []  # we called them: nobody owes a call back
    assert "customer_busy" in rig.outbound_states(placed["call_uuid"])
    # after the 486 the advisor hears the busy prompt (a FakeTTS tone of about 3 s)
    after_busy = [p for p in rig.peers[0].drain() if p.at > busy_at + 0.2]
    assert len(loud_packets(after_busy)) >= 50


def test_a_refused_destination_sends_no_sip_at_all(rig: Rig) -> None:
    """The toll-fraud guard answers before the queue: nothing reaches the worker."""
    advisor = rig.phone("advisor_answer.xml", timeout=6)
    customer = rig.phone("advisor_answer.xml", timeout=6)
    rig.set_advisor_contact(advisor)
    rig.start_worker(customer)
    settings = Settings(database_url=rig.world.db_url, redis_url=rig.redis_url)
    bus = EventBus(rig.redis_url)
    try:
        with TestClient(create_app(settings, engine=rig.world.engine, bus=bus)) as client:
            response = client.post(
                "/api/v1/calls",
                json={"phone": "+442079460958"},
                headers={"Authorization": f"Bearer {rig.world.token}"},
            )
    finally:
        bus.close()
    assert response.status_code == 403
    assert "not an allowed destination" in response.text
    for uas in (advisor, customer):
        assert "INVITE" not in uas.wait().messages


def _events(redis_url: str, event_type: str) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(redis_url)
    try:
        out = []
        for _, fields in client.xrange(STREAM):
            event = json.loads(fields[b"event"])
            if event["type"] == event_type:
                out.append(event["data"])
        return out
    finally:
        client.close()


def test_a_customer_calling_back_reaches_the_advisor_who_called(rig: Rig) -> None:
    """Sticky callback: ann called this customer 10 minutes ago (their assigned advisor is
    ann too, so the test makes someone else assigned); their call to the store rings ann."""
    w = rig.world
    with w.sessions.begin() as session:
        other = User(username="zed", name="Zed Other", role="advisor", phone="+15550109999")
        store = session.get(Store, w.store_id)
        assert store is not None
        other.stores.append(store)
        session.add(other)
        session.flush()
        session.get(Customer, w.customer_id).advisor_id = other.id  # type: ignore[union-attr]
        session.add(
            Call(call_uuid=f"earlier-{uuid.uuid4().hex}", store_id=w.store_id,
                 advisor_id=w.advisor_id, direction="outbound", from_number=DID,
                 to_number=CUSTOMER_PHONE, disposition="transferred", flow_path=[],
                 started_at=datetime.now(UTC) - timedelta(minutes=10))
        )  # fmt: skip
    advisor = rig.phone("advisor_answer.xml", hold_ms=200)
    rig.set_advisor_contact(advisor)
    worker = rig.start_worker()
    caller = Sipp(rig.tmp, f"127.0.0.1:{worker.port}")
    result = caller.run("hold.xml", service=DID, call_id="sticky", caller=CUSTOMER_PHONE,
                        hold_ms=8000, timeout=20)  # fmt: skip
    assert result.returncode == 0, result.describe()
    far = advisor.wait()
    assert far.returncode == 0, far.describe() + rig.worker_log()[-3000:]
    assert "INVITE sip:adv7781@" in far.messages  # ann's phone rang, not zed's
    (ringing,) = [e for e in _events(rig.redis_url, "call.ringing")
                  if e.get("caller") == CUSTOMER_PHONE]  # fmt: skip
    assert ringing["last_contacted"]["name"] == "Ann Lee"  # the screen-pop names her
    assert ringing["advisor"]["name"] == "Zed Other"
    deadline = time.monotonic() + 5  # published when the bridged call ends: just now
    while True:
        transferred = [e for e in _events(rig.redis_url, "call.transferred")
                       if e["call_uuid"] == ringing["call_uuid"]]  # fmt: skip
        if transferred or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [(t["result"], t["target"]["user_id"]) for t in transferred] == [
        ("answered", w.advisor_id)
    ]


def _status_change(rig: Rig, status: str) -> None:
    """The DMS's status webhook, signed by a new integration of the store."""
    settings = Settings(database_url=rig.world.db_url, redis_url=rig.redis_url)
    with rig.world.sessions.begin() as session:
        store = session.get(Store, rig.world.store_id)
        assert store is not None
        made, secret = integrations.create(session, store=store, name=f"DMS {uuid.uuid4().hex}")
        key_id = made.key_id
    body = json.dumps({"status": status}).encode()
    bus = EventBus(rig.redis_url)
    try:
        with TestClient(create_app(settings, engine=rig.world.engine, bus=bus)) as client:
            response = client.post(
                "/api/v1/repair-orders/42/status",
                content=body,
                headers=signed_headers(key_id, secret, body),
            )
    finally:
        bus.close()
    assert response.status_code == 200, response.text


def _opt_in(rig: Rig, ring_s: float = 3) -> None:
    with rig.world.sessions.begin() as session:
        store = session.get(Store, rig.world.store_id)
        assert store is not None
        store.outbound = {"pickup_calls": True, "customer_ring_s": ring_s, "pickup_retry_s": 1,
                          "allow": [FICTIONAL]}  # fmt: skip


def _pickup_call(rig: Rig) -> Call:
    with rig.world.sessions() as session:
        call = session.scalars(select(Call).where(Call.direction == "outbound")).one()
    return rig.record(call.id, timeout=40)


def test_ready_for_pickup_calls_the_customer_with_the_pickup_flow(rig: Rig) -> None:
    _opt_in(rig, ring_s=15)  # answered at once; a slow loaded box must not make it a retry
    customer = rig.phone("advisor_hangup.xml", hold_ms=9000)  # answers, listens 9 s
    rig.start_worker(customer)
    _status_change(rig, "Ready for Pickup")
    heard = customer.wait()
    assert heard.returncode == 0, heard.describe() + rig.worker_log()[-3000:]
    invite = received_invite(heard.messages)
    assert DID in invite.split("\n", 3)[1] + invite  # From: the store's number
    call = _pickup_call(rig)
    assert call.disposition == "handled_by_ivr" and call.advisor_id is None
    assert call.flow_path[0] == "outbound.customer_attempt_1"
    assert any(step.startswith("pickup_confirm.") for step in call.flow_path)
    with rig.world.sessions() as session:
        entry = session.scalars(select(ThreadEntry).where(ThreadEntry.call_id == call.id)).one()
    assert entry.body.startswith(f"Automated call to {CUSTOMER_PHONE}")
    assert len(loud_packets(rig.peers[0].drain())) >= 100  # the ready line and the question


def test_a_held_pickup_call_is_not_made_once_the_car_is_picked_up(rig: Rig) -> None:
    _opt_in(rig)
    customer = rig.phone("advisor_hangup.xml", hold_ms=1000, timeout=8)
    _status_change(rig, "Ready for Pickup")  # queued (as if held for the opening) ...
    _status_change(rig, "Picked Up")  # ... and the car is gone before a worker takes it
    rig.start_worker(customer)
    call = _pickup_call(rig)
    assert (call.disposition, call.flow_path) == ("failed", ["outbound.ro_moved_on"])
    assert customer.wait().returncode != 0  # its phone never rang
    assert "\nINVITE sip:" not in customer.wait().messages


def test_an_unanswered_pickup_call_is_tried_once_more(rig: Rig) -> None:
    _opt_in(rig)
    peer = RtpPeer()
    rig.peers.append(peer)
    customer_again = rig.sipp.start_uas("advisor_ring.xml", rtp_sink=peer.port, calls=2,
                                        timeout=30)  # fmt: skip
    rig.uases.append(customer_again)
    rig.start_worker(customer_again)
    _status_change(rig, "Ready for Pickup")
    rang = customer_again.wait()
    assert rang.returncode == 0, rang.describe() + rig.worker_log()[-3000:]
    assert rang.messages.count("\nINVITE sip:") == 2  # the first try and the one retry
    call = _pickup_call(rig)
    assert call.disposition == "missed"
    assert call.flow_path == ["outbound.customer_attempt_2", "outbound.customer_no_answer"]
    with rig.world.sessions() as session:
        entry = session.scalars(select(ThreadEntry).where(ThreadEntry.call_id == call.id)).one()
    assert entry.body == f"Attempted automated call to {CUSTOMER_PHONE}: no answer"


class _SlotsOnly:
    """Just enough of a SipEndpoint for the runner's hand-off: a number of free slots."""

    def __init__(self, free: int) -> None:
        self.free = free

    async def free_slots(self) -> int:
        return self.free


@pytest.mark.parametrize(("free", "taken"), [(0, []), (1, ["pickup"]), (2, ["click", "pickup"])])
def test_a_worker_takes_only_the_calls_it_has_slots_for(
    redis_url: str, tmp_path: Path, free: int, taken: list[str]
) -> None:
    """A full worker takes nothing; one free slot takes the pickup call (1 leg) and leaves the
    click-to-call (2 legs) in the queue for a freer worker; two free slots take both."""
    import asyncio

    import redis.asyncio as aioredis

    from events.bus import AsyncEventBus
    from ivr.speech import FakeTTS
    from sip.outbound import OutboundRunner

    sync = redis.Redis.from_url(redis_url)
    sync.delete(outbound.QUEUE)
    later = datetime.now(UTC) + timedelta(minutes=1)
    common = dict(call_id=1, store_id=1, destination=CUSTOMER_PHONE, caller_id=DID,
                  expires_at=later)  # fmt: skip
    outbound.enqueue(sync, outbound.OutboundJob(kind="click_to_call", call_uuid="click", **common))
    outbound.enqueue(sync, outbound.OutboundJob(kind="pickup", call_uuid="pickup", **common))

    async def scenario() -> list[str]:
        bus = AsyncEventBus(redis_url)
        runner = OutboundRunner(
            _SlotsOnly(free),  # type: ignore[arg-type]
            bus, redis_url, tts=FakeTTS(tmp_path), recordings_dir=tmp_path, poll_ms=50,
        )  # fmt: skip
        placed: list[str] = []

        async def place(job: outbound.OutboundJob, queue_entry: str | None = None) -> str:
            placed.append(job.call_uuid)
            runner.pending_slots -= job.slots  # what `place` gives back when a call ends
            return "connected"

        runner.place = place  # type: ignore[method-assign]
        await runner.start()
        await asyncio.sleep(1.0)
        await runner.stop()
        await bus.close()
        other = aioredis.Redis.from_url(redis_url)  # a freer worker reading after it
        left = await outbound.take_job(other, "other-worker", 100)
        await other.aclose()
        return sorted(placed) + [left[1].call_uuid if left else "nothing left"]

    try:
        result = asyncio.run(scenario())
    finally:
        sync.delete(outbound.QUEUE)
        sync.close()
    assert result[:-1] == sorted(taken)
    assert result[-1] == ("nothing left" if "click" in taken else "click")


def test_a_queued_job_to_a_premium_number_is_refused_by_the_worker(rig: Rig) -> None:
    """Whatever put the job on the queue (a bug, a job forged in Redis), the worker dials only
    what its own dial rule allows: no advisor is rung, nothing reaches the trunk."""
    import socket

    trunk, advisor = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
    for sock in (trunk, advisor):
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.5)
    try:
        rig.worker = SipWorkerProcess(
            rig.tmp, rig.world.db_url, rig.redis_url, trunk.getsockname()[1]
        )
        call_uuid = f"premium-{uuid.uuid4().hex[:8]}"
        sync = redis.Redis.from_url(rig.redis_url)
        outbound.enqueue(sync, outbound.OutboundJob(
            kind="click_to_call", call_uuid=call_uuid, call_id=1,
            store_id=rig.world.store_id, destination="+19005550123", caller_id=DID,
            advisor_contact=f"sip:{ADVISOR_USER}@127.0.0.1:{advisor.getsockname()[1]}",
            expires_at=datetime.now(UTC) + timedelta(minutes=1),
        ))  # fmt: skip
        sync.close()
        deadline = time.monotonic() + 20
        while "failed" not in rig.outbound_states(call_uuid):
            assert time.monotonic() < deadline, rig.worker_log()[-3000:]
            time.sleep(0.2)
        assert "not an allowed destination" in rig.worker_log()
        for sock in (advisor, trunk):
            with pytest.raises(TimeoutError):
                data = sock.recv(4096)
                pytest.fail(f"the worker dialled {call_uuid}: {data[:200]!r}")
    finally:
        trunk.close()
        advisor.close()
