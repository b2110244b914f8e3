"""The database unreachable: calls are still answered, and their rows are written when it returns.

A real `driveline sip` worker and `driveline call-writer` reach PostgreSQL through a TCP proxy
(tests/e2e/proxy.py) that the test cuts off: open connections break and new ones hang, as for a
database host that went away. While it is cut (30 s, `OUTAGE_S`), a known customer calls: the
worker gives up on the lookup after its timeout, answers as the store it last saw for the
number and runs the `records_down` flow (greeting, "we can't look up your vehicle", a
voicemail); the call writer keeps every event pending. Once the proxy
forwards again the call, its recordings and a callback task for the customer's advisor appear
within seconds, and no event is lost (nothing pending, nothing dead-lettered).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, text

from events.bus import STREAM, Event
from records.call_writer import DEAD_LETTER_STREAM, GROUP
from records.db import make_engine, upgrade
from records.demo import seed_demo
from tests.conftest import PG_BASE
from tests.e2e.harness import REPO, RtpPeer, Sipp, free_udp_port, require_tools
from tests.e2e.proxy import TcpProxy
from tests.e2e.stack import DEMO_CALLER, DEMO_DID, Proc
from tests.needs import require

# A Redis database of its own: the worker and writer use the product's stream and group names,
# which the other end-to-end tests (database 15) share.
LOOKUP_TIMEOUT_S = 1.0  # DRIVELINE_SIP_RECORDS_TIMEOUT_S below (the connect timeout: 2 s)
OUTAGE_S = 30.0  # how long the database stays away


def _wait(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.1)
    return found


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, Engine]]:
    """A migrated, demo-seeded schema of its own; (its name, an engine that reaches it directly)."""
    schema = f"dl_down_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_BASE)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - any connection error means "not reachable"
        admin.dispose()
        require(False, f"PostgreSQL is not reachable: {exc}")
    direct = make_engine(f"{PG_BASE}?options=-csearch_path%3D{schema}")
    try:
        upgrade(direct)
        seed_demo(direct)
        yield schema, direct
    finally:
        direct.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def events_db(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()  # this test process's own database: a fresh stream and group
    yield client
    client.flushdb()
    client.close()


def _events(client: redis.Redis, call_uuid: str | None = None) -> list[Event]:
    found = [Event.decode(fields[b"event"]) for _, fields in client.xrange(STREAM)]
    return [e for e in found if call_uuid is None or e.data.get("call_uuid") == call_uuid]


def _rows(direct: Engine, call_uuid: str) -> dict[str, Any]:
    with direct.connect() as conn:
        call = conn.execute(
            text("SELECT id, disposition, customer_id FROM calls WHERE call_uuid = :u"),
            {"u": call_uuid},
        ).first()
        if call is None:
            return {}
        recordings = conn.execute(
            text("SELECT kind, duration_s FROM recordings WHERE call_id = :c ORDER BY kind"),
            {"c": call.id},
        ).all()
        tasks = conn.execute(
            text("SELECT owner_id, customer_id, phone FROM callback_tasks WHERE call_id = :c"),
            {"c": call.id},
        ).all()
        advisor = conn.execute(
            text(
                "SELECT c.advisor_id FROM customers c JOIN phone_numbers p "
                "ON p.customer_id = c.id WHERE p.e164 = :n"
            ),
            {"n": DEMO_CALLER},
        ).scalar()
    return {"call": call, "recordings": recordings, "tasks": tasks, "advisor": advisor}


def test_a_call_during_a_database_outage_is_answered_and_written_when_it_returns(
    tmp_path: Path, pg_schema: tuple[str, Engine], events_db: redis.Redis, redis_url: str
) -> None:
    require_tools()
    schema, direct = pg_schema
    proxy = TcpProxy(("127.0.0.1", int(PG_BASE.rsplit(":", 1)[1].split("/")[0])))
    database = PG_BASE.rsplit("/", 1)[1]
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DRIVELINE_DATABASE_URL": (
            f"postgresql://postgres@{proxy.url_host}/{database}?options=-csearch_path%3D{schema}"
        ),
        "DRIVELINE_REDIS_URL": redis_url,
        "DRIVELINE_RECORDINGS_DIR": str(tmp_path / "recordings"),
        "DRIVELINE_PROMPTS_DIR": str(tmp_path / "prompts"),
        "DRIVELINE_FLOWS_DIR": str(REPO / "flows"),
        "DRIVELINE_SIP_WORKER_ID": "dbdown",
        "DRIVELINE_OUTBOUND_CALLS": "false",
        "DRIVELINE_SIP_RECORDS_TIMEOUT_S": str(LOOKUP_TIMEOUT_S),
    }
    port = free_udp_port()
    writer = Proc.driveline(["call-writer"], env, tmp_path)
    worker = Proc.driveline(["sip", "--fake-tts", "--bind", f"127.0.0.1:{port}"], env, tmp_path)
    peer = RtpPeer()  # the caller: speaks all through the call, so the message is not silence
    (tmp_path / "sipp").mkdir()
    try:
        worker.wait_for("sip worker ready on", timeout=40)
        writer.wait_for("call writer call-writer reading", timeout=20)

        proxy.cut()
        cut_at = time.monotonic()
        sipp = Sipp(tmp_path / "sipp", f"127.0.0.1:{port}")
        # consent (3 s of fake speech), greeting, apology, the message prompt and its tone
        # (about 11 s), then 4 s of message before the caller hangs up
        result = sipp.run(
            "hold.xml", service=DEMO_DID, call_id="dbdown", caller=DEMO_CALLER,
            hold_ms=18000, rtp_sink=peer.port, timeout=30,
        )  # fmt: skip
        answers = result.message_times("SIP/2.0 200 OK")  # to the INVITE, then to the BYE
        assert result.count("SuccessfulCall") == 1 and answers, f"not answered: {result.messages}"
        ring_s = answers[0] - result.message_times("INVITE")[0]
        assert ring_s < LOOKUP_TIMEOUT_S + 0.7, f"rang {ring_s:.1f} s before the answer"

        ringing = _wait(
            lambda: [e for e in _events(events_db) if e.type == "call.ringing"], 5, "call.ringing"
        )[0]
        call_uuid = ringing.data["call_uuid"]
        assert ringing.data["lookup_failed"] and ringing.data["unknown_caller"]
        ended = _wait(
            lambda: [e for e in _events(events_db, call_uuid) if e.type == "call.ended"],
            10,
            "call.ended",
        )[0]
        steps = [
            (e.data["flow"], e.data["step"])
            for e in _events(events_db, call_uuid)
            if e.type == "call.step"
        ]
        said = " ".join(
            e.data["said"] or "" for e in _events(events_db, call_uuid) if e.type == "call.step"
        )
        assert ("records_down", "greet") in steps and ("records_down", "message") in steps, steps
        assert "can't look up your vehicle right now" in said
        assert ended.data["disposition"] == "voicemail" and ended.data["lookup_failed"]
        kinds = sorted(r["kind"] for r in ended.data["recordings"])
        assert kinds == ["leg", "voicemail"], json.dumps(ended.data["recordings"])

        # Still down: nothing written, every event of the call pending in the writer's group.
        assert _rows(direct, call_uuid) == {}
        pending = events_db.xpending(STREAM, GROUP)["pending"]
        assert pending >= 1

        # The figure: the database away for 30 s, the writer retrying all along.
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - cut_at)))
        assert _rows(direct, call_uuid) == {}
        down_s = time.monotonic() - cut_at
        proxy.restore()
        restored_at = time.monotonic()
        rows = _wait(
            lambda: (r := _rows(direct, call_uuid)) and r["tasks"] and r, 10, "the call's rows"
        )
        written_s = time.monotonic() - restored_at
        call, recordings, [task] = rows["call"], rows["recordings"], rows["tasks"]
        assert call.disposition == "voicemail"
        assert call.customer_id is not None  # matched by caller ID once the database answered
        assert [r.kind for r in recordings] == ["leg", "voicemail"]
        assert all(r.duration_s > 1 for r in recordings)
        assert (task.customer_id, task.owner_id, task.phone) == (
            call.customer_id,
            rows["advisor"],
            DEMO_CALLER,
        )
        _wait(lambda: events_db.xpending(STREAM, GROUP)["pending"] == 0, 5, "nothing pending")
        assert events_db.xlen(DEAD_LETTER_STREAM) == 0  # no event set aside: none lost
        assert proxy.held >= 1  # the worker did try the database during the call
        print(
            f"\ndatabase cut for {down_s:.1f} s: the call rang {ring_s:.2f} s, was answered and "
            f"left a {recordings[-1].duration_s:.1f} s message; its rows were written "
            f"{written_s:.1f} s after the database returned"
        )
    finally:
        peer.close()
        for proc in (worker, writer):
            proc.close()
        proxy.close()
        if os.environ.get("DRIVELINE_TEST_SHOW_LOGS"):
            print("\n".join(worker.lines + writer.lines))
