"""A transcription worker process killed with SIGKILL mid-job loses nothing: another worker
process takes the job over (XAUTOCLAIM after --claim-idle) and the transcript is attached once.
Real processes (`driveline transcribe`), real Redis, a real SQLite file, the shipped model."""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from records.db import make_engine, session_factory
from records.models import Transcript
from tests.transcription.calls import Call, publish, write_call
from tests.transcription.conftest import make_shop
from transcription.jobs import pending_jobs

ROOT = Path(__file__).resolve().parents[2]
CLAIM_IDLE_S = 2.0


class Worker:
    """`driveline transcribe` as a child process, its log lines read as they come."""

    def __init__(self, name: str, env: dict[str, str], streams: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "driveline", "transcribe", "--consumer", name,
                "--claim-idle", str(CLAIM_IDLE_S), "--backoff", "0.5",
                "--stream", streams["stream"], "--group", streams["group"],
            ],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: list[str] = []

    def wait_for(self, text: str, timeout: float) -> None:
        assert self.proc.stderr is not None
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if selector.select(timeout=0.2):
                line = self.proc.stderr.readline()
                if not line and self.proc.poll() is not None:
                    break
                self.lines.append(line)
        raise AssertionError(f"no {text!r} from the worker; it said:\n{''.join(self.lines)}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for w in started:
        w.stop()


def test_a_sigkilled_workers_job_completes_on_another_worker(
    sqlite_template: Path,
    redis_url: str,
    streams: dict[str, str],
    say: Callable[..., Path],
    tmp_path: Path,
    workers: list[Worker],
) -> None:
    db = tmp_path / "driveline.db"
    shutil.copy(sqlite_template, db)
    engine = make_engine(f"sqlite:///{db}")
    shop = make_shop(session_factory(engine))
    call = Call(shop["store"], shop["ann"], tmp_path / "recordings")
    # long enough (~15 s of audio, seconds of work on one thread) that the worker is still at it
    # when it is killed right after it says it started
    sentence = "My Equinox needs an oil change and the brakes checked before Friday."
    say(call.caller_wav, *[(1.5, sentence)] * 3)
    say(call.advisor_wav, (1.0, "We will call you when the repair order is ready."))
    client = redis.Redis.from_url(redis_url)
    events = f"{streams['stream']}:events"
    publish(client, events, call.events())
    write_call(engine, redis_url, streams["stream"], events)
    client.delete(events)

    env = {
        **os.environ,
        "DRIVELINE_DATABASE_URL": f"sqlite:///{db}",
        "DRIVELINE_REDIS_URL": redis_url,
        "DRIVELINE_RECORDINGS_DIR": str(call.recordings_dir),
        "DRIVELINE_STT_THREADS": "1",
    }
    first = Worker("first", env, streams)
    workers.append(first)
    first.wait_for(f"transcribing call {call.uuid}", timeout=60)
    first.proc.kill()  # SIGKILL: no cleanup, no ack
    first.proc.wait()

    sessions = session_factory(engine)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Transcript)) == 0  # killed mid-job
    assert pending_jobs(client, streams["stream"], streams["group"]) == 1

    second = Worker("second", env, streams)
    workers.append(second)
    second.wait_for(f"call {call.uuid}: transcript", timeout=120)
    assert any("took over job" in line for line in second.lines), second.lines
    second.stop()

    with sessions() as s:
        transcripts = s.scalars(select(Transcript)).all()
        assert len(transcripts) == 1
        assert "oil change" in transcripts[0].text.lower()
        assert "repair order" in transcripts[0].text.lower()
    assert pending_jobs(client, streams["stream"], streams["group"]) == 0
    client.close()
    engine.dispose()
