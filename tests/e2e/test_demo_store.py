"""The README's promise, end to end: `driveline serve --demo` answers a real call.

One `serve --demo` process (call writer, SIP worker child with piper speech, API) on free
loopback ports; an SSE client with the advisor's token; sipp calling as a demo customer who
presses 1. The screen-pop reaches the SSE client before the call is answered, the caller hears
their own status, and the call ends up in the record with its flow path and recording.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.e2e.harness import REPO, Sipp, free_tcp_port, free_udp_port, require_tools

STATUS_CALL = REPO / "deploy" / "sipp" / "status_call.xml"
DID = "+15550100100"
CALLER = "+15550200003"  # demo customer 3: one open RO, Tech Working


class DemoServer:
    def __init__(self, workdir: Path, redis_url: str) -> None:
        # This test process's own Redis database, emptied: the server's call writer must not
        # replay the events earlier tests published on the stream.
        redis.Redis.from_url(redis_url).flushdb()
        self.http_port = free_tcp_port()
        self.sip_port = free_udp_port()
        self.lines: list[str] = []
        self.env = {
            **os.environ,
            "DRIVELINE_DATABASE_URL": f"sqlite:///{workdir / 'driveline.db'}",
            "DRIVELINE_REDIS_URL": redis_url,
            "DRIVELINE_HTTP_BIND": f"127.0.0.1:{self.http_port}",
            "DRIVELINE_SIP_BIND": f"127.0.0.1:{self.sip_port}",
            "DRIVELINE_RECORDINGS_DIR": str(workdir / "recordings"),
            "DRIVELINE_PROMPTS_DIR": str(workdir / "prompts"),
            "DRIVELINE_FLOWS_DIR": str(REPO / "flows"),
        }
        self.recordings = workdir / "recordings"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "driveline", "serve", "--demo"],
            env=self.env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._ready = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            if "Uvicorn running" in line or "Application startup complete" in line:
                self._ready.set()

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.2):
            assert self.proc.poll() is None, "serve exited:\n" + "\n".join(self.lines[-40:])
            assert time.monotonic() < deadline, "serve did not start:\n" + "\n".join(self.lines)

    def token(self, username: str) -> str:
        for line in self.lines:
            found = re.match(rf"token for {username}: (dl_\S+)", line)
            if found:
                return found.group(1)
        raise AssertionError(f"no token for {username} in:\n" + "\n".join(self.lines))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[DemoServer]:
    require_tools()
    server = DemoServer(tmp_path_factory.mktemp("serve"), redis_url)
    try:
        server.wait_ready()
        yield server
    finally:
        code = server.stop()
        assert code == 0, "serve did not stop cleanly:\n" + "\n".join(server.lines[-40:])


class SseClient:
    """Collects the frames of `/api/v1/events` in a thread."""

    def __init__(self, url: str) -> None:
        self.events: list[tuple[str, dict[str, object], float]] = []
        self.connected = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self._thread.start()

    def _run(self, url: str) -> None:
        try:
            self._read(url)
        except httpx.HTTPError:
            pass  # the server went away (end of test); what was read is kept

    def _read(self, url: str) -> None:
        with httpx.stream("GET", url, timeout=httpx.Timeout(5, read=None)) as response:
            assert response.status_code == 200
            kind = None
            for line in response.iter_lines():
                if self._stop:
                    return
                if line.startswith(": connected"):
                    self.connected.set()
                elif line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: ") and kind:
                    self.events.append((kind, json.loads(line[6:]), time.monotonic()))

    def first(self, kind: str, timeout: float, **data: object) -> dict[str, object]:
        """The first `kind` event whose data has these values (other calls may be about)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for got, event, _ in self.events:
                fields = event.get("data")
                if got == kind and isinstance(fields, dict) and data.items() <= fields.items():
                    return event
            time.sleep(0.05)
        raise AssertionError(f"no {kind} event; got {[k for k, _, _ in self.events]}")

    def close(self) -> None:
        self._stop = True


def recorded_calls(
    api: str, headers: dict[str, str], timeout: float = 15, **params: object
) -> list[dict[str, object]]:
    """The calls the call writer has recorded with these filters, waiting up to `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        calls = httpx.get(f"{api}/calls", params=params, headers=headers).json()["items"]
        if calls or time.monotonic() > deadline:
            return list(calls)
        time.sleep(0.2)


def test_a_customer_calls_the_demo_store_and_hears_their_status(
    demo_server: DemoServer, tmp_path: Path
) -> None:
    api = f"http://127.0.0.1:{demo_server.http_port}/api/v1"
    token = demo_server.token("alice")
    headers = {"Authorization": f"Bearer {token}"}
    customer = httpx.get(f"{api}/customers", params={"phone": CALLER}, headers=headers).json()
    customer_id = customer["items"][0]["id"]

    sse = SseClient(f"{api}/events?token={token}")
    assert sse.connected.wait(10), "the SSE stream did not connect"

    (tmp_path / "sipp").mkdir()
    sipp = Sipp(tmp_path / "sipp", f"127.0.0.1:{demo_server.sip_port}")
    result = sipp.run(str(STATUS_CALL), service=DID, call_id="demo", caller=CALLER, timeout=70.0)
    assert result.returncode == 0, result.describe()
    assert result.count("SuccessfulCall") == 1

    # Screen-pop: the advisor's stream saw who was calling, with their open RO.
    ringing = sse.first("call.ringing", timeout=5, caller=CALLER)
    data = ringing["data"]
    assert isinstance(data, dict)
    assert data["caller"] == CALLER and data["unknown_caller"] is False
    assert data["customer"]["id"] == customer_id  # type: ignore[index]
    assert data["repair_orders"][0]["status"] == "Tech Working"  # type: ignore[index]

    # The caller heard their status: the flow's lines went out as call.step events.
    call_uuid = data["call_uuid"]
    ended = sse.first("call.ended", timeout=10, call_uuid=call_uuid)["data"]
    said = [
        e["data"].get("said")  # type: ignore[union-attr]
        for k, e, _ in sse.events
        if k == "call.step" and e["data"].get("call_uuid") == call_uuid  # type: ignore[union-attr]
    ]
    assert any(s and "A technician is working on your" in s for s in said), said
    assert isinstance(ended, dict)
    assert ended["disposition"] == "handled_by_ivr"
    assert "status_check.say_status" in ended["flow_path"]  # type: ignore[operator]
    sse.close()

    # The call writer put it on the record: the call, its recording, the thread entry.
    calls = recorded_calls(api, headers, customer_id=customer_id)
    assert calls, "the call never reached the record"
    call = httpx.get(f"{api}/calls/{calls[0]['id']}", headers=headers).json()
    assert call["disposition"] == "handled_by_ivr"
    (recording,) = call["recordings"]
    wav = demo_server.recordings / recording["path"]
    assert hashlib.sha256(wav.read_bytes()).hexdigest() == recording["sha256"]
    assert recording["duration_s"] > 5
    thread = httpx.get(f"{api}/customers/{customer_id}/thread", headers=headers).json()
    assert thread["items"][0]["kind"] == "call"


def test_a_caller_who_hangs_up_during_the_greeting_gets_a_callback_owner(
    demo_server: DemoServer, tmp_path: Path
) -> None:
    """Abandoned calls are the ones a store loses: each must leave a task with an owner."""
    api = f"http://127.0.0.1:{demo_server.http_port}/api/v1"
    admin = {"Authorization": f"Bearer {demo_server.token('admin')}"}
    caller = "+15550200001"
    customer = httpx.get(f"{api}/customers", params={"phone": caller}, headers=admin).json()
    customer_id = customer["items"][0]["id"]
    advisor_id = customer["items"][0]["advisor"]["id"]

    (tmp_path / "sipp").mkdir()
    sipp = Sipp(tmp_path / "sipp", f"127.0.0.1:{demo_server.sip_port}")
    result = sipp.run("hold.xml", service=DID, call_id="gone", caller=caller, hold_ms=800)
    assert result.returncode == 0, result.describe()
    assert result.count("GenericCounter3") == 1  # it was answered, then the caller left

    calls = recorded_calls(api, admin, customer_id=customer_id, disposition="abandoned")
    every = httpx.get(f"{api}/calls", params={"customer_id": customer_id}, headers=admin)
    log = "\n".join(demo_server.lines[-30:])
    assert calls, f"the abandoned call never reached the record: {every.json()}\n{log}"
    tasks = httpx.get(f"{api}/callbacks", params={"state": "open"}, headers=admin).json()
    mine = [t for t in tasks["items"] if t["customer_id"] == customer_id]
    assert mine and mine[0]["owner"]["id"] == advisor_id, tasks


def test_advisor_busy_leads_to_a_voicemail_on_the_thread_and_a_callback(
    demo_server: DemoServer, tmp_path: Path
) -> None:
    """Press 0: the assigned advisor's phone (a sipp UAS) is busy, the caller leaves a message,
    and the advisor gets the voicemail on the customer's thread and a callback task."""
    api = f"http://127.0.0.1:{demo_server.http_port}/api/v1"
    admin = {"Authorization": f"Bearer {demo_server.token('admin')}"}
    caller = "+15550200002"
    found = httpx.get(f"{api}/customers", params={"phone": caller}, headers=admin).json()
    customer_id = found["items"][0]["id"]
    advisor_id = found["items"][0]["advisor"]["id"]

    (tmp_path / "sipp").mkdir()
    sipp = Sipp(tmp_path / "sipp", f"127.0.0.1:{demo_server.sip_port}")
    phone = sipp.start_uas("advisor_busy.xml", calls=2, timeout=60)
    try:
        db = sqlite3.connect(demo_server.env["DRIVELINE_DATABASE_URL"].removeprefix("sqlite:///"))
        with db:  # only the assigned advisor has a phone, and it is busy
            db.execute("UPDATE users SET sip_contact = NULL, phone = NULL")
            db.execute("UPDATE users SET sip_contact = ? WHERE id = ?", (phone.uri, advisor_id))
        db.close()
        result = sipp.run(
            "voicemail_call.xml", service=DID, call_id="vm", caller=caller, timeout=60
        )
    finally:
        phone.stop()
    log = "\n".join(line for line in demo_server.lines[-60:] if "sip.channel" in line)
    assert result.returncode == 0, f"{result.describe()}\n{log}"

    calls = recorded_calls(api, admin, customer_id=customer_id, disposition="voicemail")
    every = httpx.get(f"{api}/calls", params={"customer_id": customer_id}, headers=admin)
    log = "\n".join(line for line in demo_server.lines if "sip.channel" not in line)
    assert calls, f"no voicemail call on the record: {every.json()}\n{log[-3000:]}"
    call = httpx.get(f"{api}/calls/{calls[0]['id']}", headers=admin).json()
    kinds = {r["kind"] for r in call["recordings"]}
    assert kinds == {"leg", "voicemail"}, call["recordings"]
    voicemail = next(r for r in call["recordings"] if r["kind"] == "voicemail")
    assert voicemail["duration_s"] > 2  # the caller's words, not just the tone

    thread = httpx.get(f"{api}/customers/{customer_id}/thread", headers=admin).json()
    assert "voicemail" in {e["kind"] for e in thread["items"]}
    tasks = httpx.get(f"{api}/callbacks", params={"state": "open"}, headers=admin).json()
    owed = [t for t in tasks["items"] if t["customer_id"] == customer_id]
    assert len(owed) == 1 and owed[0]["owner"]["id"] == advisor_id, owed


def test_a_service_customer_calling_the_sales_line_is_recognised(
    demo_server: DemoServer, tmp_path: Path
) -> None:
    """Departments on one record: demo customer 5 (a service customer with an open RO, who
    bought their car here) calls the sales number. The screen-pop names the sales department
    and carries the whole relationship; the sales flow greets them by name; the call record
    says which department was called."""
    api = f"http://127.0.0.1:{demo_server.http_port}/api/v1"
    token = demo_server.token("alice")  # a service advisor: the pop reaches service too
    headers = {"Authorization": f"Bearer {token}"}
    caller, sales_did = "+15550200005", "+15550100200"
    found = httpx.get(f"{api}/customers", params={"phone": caller}, headers=headers).json()
    customer_id = found["items"][0]["id"]

    sse = SseClient(f"{api}/events?token={token}")
    assert sse.connected.wait(10), "the SSE stream did not connect"
    (tmp_path / "sipp").mkdir()
    sipp = Sipp(tmp_path / "sipp", f"127.0.0.1:{demo_server.sip_port}")
    result = sipp.run("hold.xml", service=sales_did, call_id="sales", caller=caller, hold_ms=4000)
    assert result.returncode == 0, result.describe()

    data = sse.first("call.ringing", timeout=5, caller=caller, did=sales_did)["data"]
    assert isinstance(data, dict)
    assert data["customer"]["id"] == customer_id  # type: ignore[index]
    assert data["department"]["kind"] == "sales" and data["department"]["name"] == "Sales"  # type: ignore[index]
    rel = data["relationship"]
    assert isinstance(rel, dict)
    assert [p["salesperson"] for p in rel["purchases"]] == ["Sam Rivera"]
    assert rel["open_repair_orders"] >= 1 and data["repair_orders"]  # a service customer
    said = [
        e["data"].get("said")  # type: ignore[union-attr]
        for k, e, _ in sse.events
        if k == "call.step" and e["data"].get("call_uuid") == data["call_uuid"]  # type: ignore[union-attr]
    ]
    assert "Thanks for calling Demo Chevrolet sales." in said, said
    sse.close()

    calls = recorded_calls(api, headers, customer_id=customer_id)
    assert calls, "the call never reached the record"
    db = sqlite3.connect(demo_server.env["DRIVELINE_DATABASE_URL"].removeprefix("sqlite:///"))
    with db:
        row = db.execute(
            "SELECT d.kind FROM calls c JOIN departments d ON d.id = c.department_id "
            "WHERE c.call_uuid = ?",
            (data["call_uuid"],),
        ).fetchone()
    db.close()
    assert row == ("sales",)
