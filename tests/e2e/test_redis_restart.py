"""Redis restarted while a call is up (issue 14, faults): the call goes on, none of its events
is lost or written twice (the worker holds them and sends them, in order, once Redis is back),
the worker's journal keeps the call until its `call.ended` is really on Redis, and the call
writer and the next call's screen-pop carry on without restarting anything.

A real `driveline sip` and `driveline call-writer` on a private `redis-server` that is shut
down right after the call is answered and started again (with its data, as a Redis with
persistence restarts) once the call has ended: every event after the answer, `call.ended`
included, happened while Redis was away.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.e2e.harness import REPO, Sipp, free_udp_port
from tests.e2e.stack import DEMO_CALLER, DEMO_DID, Proc, demo_env
from tests.redis_server import RedisServer

FLOWS = REPO / "tests" / "e2e" / "flows"  # greet, press 1, answer, hang up: ~5 s, any hour


def _wait(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return found


def _events(server: RedisServer) -> list[dict[str, Any]]:
    return [json.loads(f[b"event"]) for _id, f in server.client().xrange("driveline:events")]


def _of_call(events: list[dict[str, Any]], call_uuid: str) -> list[dict[str, Any]]:
    """The worker's events of one call (the call writer's `thread.updated` left out)."""
    return [
        e
        for e in events
        if e["type"].startswith("call.") and e["data"].get("call_uuid") == call_uuid
    ]


def _shape(events: list[dict[str, Any]]) -> list[tuple[str, Any, Any, Any]]:
    """What a call's events say, without its ids and times: comparable across calls."""
    return [(e["type"], e["data"].get("step"), e["data"].get("said"), e["data"].get("digits"))
            for e in events]  # fmt: skip


def _answered(server: RedisServer) -> str | None:
    for event in _events(server):
        if event["type"] == "call.answered":
            return str(event["data"]["call_uuid"])
    return None


def test_a_redis_restart_mid_call_loses_no_event(
    tmp_path: Path, private_redis: RedisServer
) -> None:
    env = demo_env(tmp_path, private_redis.url, flows_dir=str(FLOWS))
    port = free_udp_port()
    journal = tmp_path / "recordings" / ".journal" / f"test-{port}"
    writer = Proc.driveline(["call-writer"], env, tmp_path)
    worker = Proc.driveline(["sip", "--fake-tts", "--bind", f"127.0.0.1:{port}"], env, tmp_path)
    (tmp_path / "sipp").mkdir()
    try:
        worker.wait_for("sip worker ready on", timeout=40)
        sipp = Sipp(tmp_path / "sipp", f"127.0.0.1:{port}")
        call = sipp.start(
            "dtmf_rfc2833.xml", service=DEMO_DID, call_id="outage", caller=DEMO_CALLER, timeout=20
        )
        call_uuid = _wait(lambda: _answered(private_redis), 10, "the call to be answered")
        private_redis.stop(keep_data=True)
        stopped = time.monotonic()

        result = call.wait()  # the flow runs on and hangs up while Redis is away
        assert result.returncode == 0 and result.count("SuccessfulCall") == 1, result.describe()
        worker.wait_for(r"call done", timeout=5)
        worker.wait_for(r"Redis unreachable", timeout=1)
        assert (journal / f"{call_uuid}.json").exists(), "call.ended is held, not on Redis yet"

        private_redis.start()
        outage = time.monotonic() - stopped
        back = worker.wait_for(r"Redis is back after ([\d.]+)s: (\d+) held .*\((\d+) dropped", 5)
        held, dropped = int(back.group(2)), int(back.group(3))
        _wait(lambda: not journal.exists() or not list(journal.glob("*.json")), 3, "the journal")

        # A call after the restart: its screen-pop and events as usual.
        after = sipp.run(
            "dtmf_rfc2833.xml", service=DEMO_DID, call_id="after", caller=DEMO_CALLER, timeout=20
        )
        assert after.returncode == 0 and after.count("SuccessfulCall") == 1, after.describe()

        ended = lambda: [e for e in _events(private_redis) if e["type"] == "call.ended"]  # noqa: E731
        _wait(lambda: len(ended()) == 2, 5, "the second call's call.ended")
        events = _events(private_redis)
        ours = _of_call(events, call_uuid)
        later = [e for e in events if e["type"] == "call.ringing"][1:]
        assert len(later) == 1, "the second call's screen-pop"
        reference = _of_call(events, later[0]["data"]["call_uuid"])
        # Every event of the interrupted call once, in order, just like an untroubled call's.
        assert _shape(ours) == _shape(reference)
        assert [e["type"] for e in ours][:2] == ["call.ringing", "call.answered"]
        assert ours[-1]["type"] == "call.ended" and ours[-1]["data"]["disposition"] == (
            "handled_by_ivr"
        )
        assert len({e["id"] for e in ours}) == len(ours)
        assert held == len(ours) - 2 and dropped == 0  # all but ringing, answered waited
        lost = len(reference) - len(ours)
        print(
            f"\nredis restart: outage {outage:.1f}s (events held for {back.group(1)}s), "
            f"{held} events held, {lost} lost, {len(ours)} events of the call on the stream"
        )

        # The call writer rode it out too: both calls written, without a restart.
        db = sqlite3.connect(tmp_path / "driveline.db")

        def written() -> list[tuple[str, str]]:
            return db.execute(
                "SELECT call_uuid, disposition FROM calls WHERE ended_at IS NOT NULL"
            ).fetchall()

        uuids = {call_uuid, later[0]["data"]["call_uuid"]}
        rows = _wait(lambda: len(written()) == 2 and written(), 10, "the call writer's rows")
        assert {u for u, _ in rows} == uuids
        assert {d for _, d in rows} == {"handled_by_ivr"}
        assert writer.proc.poll() is None and writer.count(r"retrying in") >= 1

        # /metrics figures come from the heartbeat: the worker says it held them, lost none.
        def beat() -> dict[str, Any] | None:
            raw = private_redis.client().get(f"driveline:workers:{_worker_key(worker)}")
            snapshot = json.loads(raw) if raw else None
            return snapshot if snapshot and snapshot["events_held"] == held else None

        snapshot = _wait(beat, 7, "a heartbeat after the restart")
        assert snapshot["events_dropped"] == 0 and snapshot["events_buffered"] == 0
    finally:
        worker.close()
        writer.close()


def _worker_key(worker: Proc) -> str:
    """The heartbeat id: `<host>:<port>` from the worker's ready line."""
    port = re.search(r"sip worker ready on [^:]+:(\d+)", "\n".join(worker.lines))
    assert port is not None
    return f"{socket.gethostname()}:{port.group(1)}"


def test_the_outbound_runner_takes_jobs_again_after_redis_restarted_empty(
    tmp_path: Path, private_redis: RedisServer
) -> None:
    """A Redis without persistence comes back empty: the queue's consumer group is gone with
    it. The runner makes it again and takes the next job, without being restarted."""
    from events import outbound
    from events.bus import AsyncEventBus
    from ivr.speech import FakeTTS
    from sip.outbound import OutboundRunner

    class OneFreeSlot:  # just enough of a SipEndpoint for the runner's hand-off
        async def free_slots(self) -> int:
            return 1

    later = datetime.now(UTC) + timedelta(minutes=1)
    job = outbound.OutboundJob(
        kind="pickup", call_uuid="after-restart", call_id=1, store_id=1,
        destination="+15550201234", caller_id="+15550300100", expires_at=later,
    )  # fmt: skip

    async def scenario() -> float:
        bus = AsyncEventBus(private_redis.url)
        runner = OutboundRunner(
            OneFreeSlot(),  # type: ignore[arg-type]
            bus, private_redis.url, tts=FakeTTS(tmp_path), recordings_dir=tmp_path, poll_ms=50,
        )  # fmt: skip
        placed = asyncio.Event()

        async def place(job: outbound.OutboundJob, queue_entry: str | None = None) -> str:
            placed.set()
            return "connected"

        runner.place = place  # type: ignore[method-assign]
        await runner.start()
        try:
            await asyncio.sleep(0.2)
            await asyncio.to_thread(private_redis.stop)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(private_redis.start)
            outbound.enqueue(private_redis.client(), job)  # the API's enqueue: no group made
            started = time.monotonic()
            await asyncio.wait_for(placed.wait(), 5.0)
            return time.monotonic() - started
        finally:
            await runner.stop()
            await bus.close()

    assert asyncio.run(scenario()) < 4.0
