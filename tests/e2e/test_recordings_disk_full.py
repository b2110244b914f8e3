"""A full recordings disk drops no call: real sipp calls to `driveline sip` whose recordings dir
is a 2 MiB tmpfs. Nearly full, the call completes unrecorded (a warning, the worker's
`recordings_failed` on its heartbeat, `unrecorded` in `call.ended`, "not recorded" on the
thread); with the space freed the next call is recorded again, no restart; a disk that fills
up mid-call leaves a repaired WAV marked `cut_short`. The worker stays up throughout."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from events.bus import STREAM
from events.health import WORKER_KEY
from sip.media import MIN_RECORDING_FREE_BYTES, free_bytes, header_complete
from tests.e2e.harness import RunningSipp, Sipp, free_udp_port, wav_info
from tests.e2e.stack import DEMO_CALLER, DEMO_DID, Proc, demo_env
from tests.needs import require

HOLD_MS = 2500  # the caller's time on the line: recording starts at the answer (no consent)


def _wait(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return found


def _mount_tmpfs(path: Path, size: str) -> None:
    """A small filesystem of our own to fill; skips without root (fails under CI)."""
    path.mkdir()
    require(os.geteuid() == 0 and shutil.which("mount"), "mounting a tmpfs needs root and mount")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    require(done.returncode == 0, f"cannot mount a tmpfs on {path}: {done.stderr.strip()}")


def _fill(folder: Path, leave: int = 0) -> Path:
    """Write a file that leaves `leave` bytes free (0: until the disk refuses)."""
    path = folder / f"fill-{time.monotonic_ns()}"
    with path.open("wb") as out:
        try:
            while (free := free_bytes(folder) or 0) > leave:
                out.write(b"\0" * min(free - leave, 64 * 1024))
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return path


@dataclass
class Stack:
    """`driveline sip` and `driveline call-writer` recording to a tmpfs, and how to read them."""

    worker: Proc
    db: sqlite3.Connection
    recordings: Path
    sipp: Sipp
    redis: redis.Redis
    heartbeat: str  # the worker's heartbeat key (what /metrics renders)
    since: str  # the event stream's id when the test began

    def call(self, tag: str, hold_ms: int = HOLD_MS) -> RunningSipp:
        return self.sipp.start(
            "hold.xml", service=DEMO_DID, call_id=tag, caller=DEMO_CALLER, hold_ms=hold_ms,
            timeout=15,
        )  # fmt: skip

    def ended(self, tag: str) -> dict[str, Any]:
        """The `call.ended` data of the call whose SIP Call-ID starts with `tag`."""

        def find() -> dict[str, Any] | None:
            raw = self.redis.xrange(STREAM, min=self.since)
            events = [json.loads(fields[b"event"]) for _id, fields in raw]
            uuids = {
                e["data"]["call_uuid"]
                for e in events
                if e["type"] == "call.ringing" and str(e["data"]["sip_call_id"]).startswith(tag)
            }
            ended = [e["data"] for e in events if e["type"] == "call.ended"]
            return next((data for data in ended if data["call_uuid"] in uuids), None)

        try:
            return _wait(find, 10, f"call.ended of {tag}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the worker said:\n" + "\n".join(self.worker.lines[-30:]))

    def thread_entry(self, call_uuid: str) -> dict[str, Any]:
        """The data of the call's thread entry, once the call writer made it."""
        query = "SELECT data FROM thread_entries WHERE dedupe_key = ?"
        row = _wait(
            lambda: self.db.execute(query, (f"call:{call_uuid}",)).fetchone(),
            10,
            "the call writer's thread entry",
        )
        return json.loads(row[0])

    def failed_recordings(self) -> int:
        raw = self.redis.get(self.heartbeat)
        return json.loads(raw).get("recordings_failed", {}).get("disk_full", 0) if raw else 0


@pytest.fixture
def stack(tmp_path: Path, redis_url: str) -> Iterator[Stack]:
    """The worker over a demo store that plays no consent prompt (recording starts at the
    answer), its recordings dir a 2 MiB tmpfs."""
    env = demo_env(tmp_path, redis_url)
    recordings = tmp_path / "recordings"
    _mount_tmpfs(recordings, "2m")
    db = sqlite3.connect(tmp_path / "driveline.db")
    db.execute("UPDATE stores SET recording_consent = 0")
    db.commit()
    port = free_udp_port()
    writer = worker = None
    try:
        writer = Proc.driveline(["call-writer"], env, tmp_path)
        worker = Proc.driveline(["sip", "--fake-tts", "--bind", f"127.0.0.1:{port}"], env, tmp_path)
        worker.wait_for("sip worker ready on", timeout=40)
        (tmp_path / "sipp").mkdir()
        yield Stack(
            worker=worker,
            db=db,
            recordings=recordings,
            sipp=Sipp(tmp_path / "sipp", f"127.0.0.1:{port}"),
            redis=redis.Redis.from_url(redis_url),
            heartbeat=WORKER_KEY.format(worker_id=f"{socket.gethostname()}:{port}"),
            since=f"{int(time.time() * 1000)}-0",
        )
    finally:
        for proc in (worker, writer):
            if proc is not None:
                proc.close()
        db.close()
        if subprocess.run(["umount", str(recordings)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(recordings)], capture_output=True)


def test_a_full_disk_drops_no_call_and_recording_resumes_when_space_returns(
    stack: Stack,
) -> None:
    filler = _fill(stack.recordings, leave=MIN_RECORDING_FREE_BYTES // 4)
    result = stack.call("full").wait()
    assert result.count("SuccessfulCall") == 1, result.describe()
    assert stack.worker.proc.poll() is None
    stack.worker.wait_for(r"WARNING .*caller leg \(call\) not recorded: disk full", timeout=5)
    unrecorded = stack.ended("full")
    assert unrecorded["recordings"] == []
    [missed] = unrecorded["unrecorded"]
    assert (missed["leg_role"], missed["kind"], missed["reason"]) == ("caller", "leg", "disk_full")
    assert not list(stack.recordings.rglob(f"{unrecorded['call_uuid']}*"))  # no broken file

    filler.unlink()  # space returns: the very next call records again, no restart
    result = stack.call("roomy").wait()
    assert result.count("SuccessfulCall") == 1, result.describe()
    recorded = stack.ended("roomy")
    assert recorded["unrecorded"] == []
    [leg] = recorded["recordings"]
    wav = stack.recordings / leg["path"]
    assert header_complete(wav) and not leg["cut_short"]
    seconds, _peak, digest = wav_info(wav)
    assert seconds > 1.0 and digest == leg["sha256"]

    # Counted on the worker's heartbeat (every 5 s), which /metrics renders.
    assert _wait(stack.failed_recordings, 7, "the heartbeat to count the failed recording") == 1
    # The record: the first call is on the thread as not recorded, the second has its file.
    assert stack.thread_entry(unrecorded["call_uuid"])["unrecorded"][0]["reason"] == "disk_full"
    assert "unrecorded" not in stack.thread_entry(recorded["call_uuid"])
    assert stack.worker.proc.poll() is None


def test_a_disk_that_fills_up_mid_call_leaves_a_repaired_recording(stack: Stack) -> None:
    caller = stack.call("filling", hold_ms=4000)

    def recording() -> Path | None:
        return next(
            (p for p in stack.recordings.rglob("*-caller.wav") if p.stat().st_size > 8000), None
        )

    wav = _wait(recording, 10, "half a second of recording")
    _fill(stack.recordings)  # every byte: pjsua's next write fails
    result = caller.wait()
    assert result.count("SuccessfulCall") == 1, result.describe()
    ended = stack.ended("filling")
    [leg] = ended["recordings"]
    assert stack.recordings / leg["path"] == wav and leg["cut_short"]
    assert header_complete(wav)
    seconds, _peak, digest = wav_info(wav)
    assert 0.4 < seconds < 3.0 and digest == leg["sha256"]
    stack.worker.wait_for(r"WARNING .*caller leg \(call\) recording cut short", timeout=5)
    assert stack.thread_entry(ended["call_uuid"])["recordings"][0]["cut_short"]
    assert stack.worker.proc.poll() is None
