"""A SIP worker SIGKILLed mid-call loses no recording: when it starts again it repairs the call's
WAV and closes the call in the record (`failed`, with the recording) through the call writer."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

from sip.media import header_complete
from tests.e2e.harness import Sipp, free_udp_port, wav_info
from tests.e2e.stack import DEMO_CALLER, DEMO_DID, Proc, demo_env


def _wait(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_killed_worker_closes_its_dropped_call_with_the_repaired_recording(
    tmp_path: Path, redis_url: str
) -> None:
    env = demo_env(tmp_path, redis_url)
    recordings = tmp_path / "recordings"
    port = free_udp_port()
    argv = ["sip", "--fake-tts", "--bind", f"127.0.0.1:{port}"]
    writer = Proc.driveline(["call-writer"], env, tmp_path)
    worker = Proc.driveline(argv, env, tmp_path)
    restarted = None
    (tmp_path / "sipp").mkdir()
    caller = None
    try:
        worker.wait_for("sip worker ready on", timeout=40)
        sipp = Sipp(tmp_path / "sipp", f"127.0.0.1:{port}")
        caller = sipp.start(
            "hold.xml", service=DEMO_DID, call_id="doomed", caller=DEMO_CALLER,
            hold_ms=20000, timeout=25,
        )  # fmt: skip
        journal = recordings / ".journal" / f"test-{port}"
        _wait(lambda: len(list(journal.glob("*.json"))) == 1, 10, "the call in the journal")
        call_uuid = next(journal.glob("*.json")).stem
        wavs = lambda: list(recordings.rglob(f"{call_uuid}-caller*.wav"))  # noqa: E731
        _wait(lambda: wavs() and wavs()[0].stat().st_size > 16000, 10, "a second of recording")

        os.kill(worker.proc.pid, signal.SIGKILL)
        worker.wait(timeout=5)
        wav = wavs()[0]
        assert not header_complete(wav), "the recorder was never closed, so the header is stale"

        restarted = Proc.driveline(argv, env, tmp_path)
        restarted.wait_for(r"closed 1 call\(s\) left open by a previous run", timeout=40)
        restarted.wait_for("sip worker ready on", timeout=5)
        assert list(journal.glob("*.json")) == []
        seconds, _peak, sha256 = wav_info(wav)  # asserts the header is now complete
        assert seconds >= 1.0

        db = sqlite3.connect(tmp_path / "driveline.db")

        def recorded() -> list[tuple[str, str | None, str, str, float]]:
            return db.execute(
                "SELECT c.disposition, c.ended_at, r.path, r.sha256, r.duration_s "
                "FROM calls c JOIN recordings r ON r.call_id = c.id WHERE c.call_uuid = ?",
                (call_uuid,),
            ).fetchall()

        _wait(lambda: recorded(), 15, "the call writer to record the dropped call")
        [(disposition, ended_at, path, digest, duration)] = recorded()
        assert disposition == "failed"
        assert ended_at is not None
        assert recordings / path == wav and digest == sha256
        assert abs(duration - seconds) < 0.01
    finally:
        if caller is not None and caller.proc.poll() is None:
            caller.proc.kill()
            caller.proc.communicate(timeout=5)
        for proc in (restarted, worker, writer):
            if proc is not None:
                proc.close()
