"""Worker processes of their own: the RTP watchdog, and stopping with a call up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Sipp, WorkerProcess, require_tools

HOLD = "+15550100003"


@pytest.fixture
def fresh_worker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WorkerProcess]:
    require_tools()
    extra = getattr(request, "param", ())
    process = WorkerProcess(tmp_path, *extra)
    try:
        yield process
    finally:
        process.close()


@pytest.mark.parametrize("fresh_worker", [("--rtp-timeout", "1.0")], indirect=True)
def test_silent_caller_is_hung_up(fresh_worker: WorkerProcess, tmp_path: Path) -> None:
    sipp = Sipp(tmp_path, f"127.0.0.1:{fresh_worker.port}")
    result = sipp.run("wait_bye.xml", service=HOLD, call_id="silent", timeout=8)
    assert result.returncode == 0, result.describe()  # the worker's BYE came
    hung_up = fresh_worker.wait_for(
        lambda e: e["event"] == "hung_up" and e["call"].startswith("silent")
    )
    assert hung_up["rtp_timeout"] is True
    fresh_worker.wait_idle()


def test_stopping_the_worker_hangs_up_calls_and_exits_cleanly(
    fresh_worker: WorkerProcess, tmp_path: Path
) -> None:
    sipp = Sipp(tmp_path, f"127.0.0.1:{fresh_worker.port}")
    running = sipp.start("hold.xml", service=HOLD, call_id="up", calls=2, concurrent=2,
                         hold_ms=8000, timeout=10)  # fmt: skip
    fresh_worker.wait_for(lambda e: e["event"] == "greeted" and e["call"] == "up-1@127.0.0.1")
    fresh_worker.wait_for(lambda e: e["event"] == "greeted" and e["call"] == "up-2@127.0.0.1")
    fresh_worker.close()
    assert fresh_worker.proc.returncode == 0  # no pjsua2 assertion on the way out
    assert fresh_worker.events[-1]["event"] == "stopped"
    result = running.wait()
    assert result.messages.count("\nBYE sip:") >= 2, "the callers were not sent a BYE"


def test_tcp_transport_answers(fresh_worker: WorkerProcess, tmp_path: Path) -> None:
    sipp = Sipp(tmp_path, f"127.0.0.1:{fresh_worker.port}")
    result = sipp.run("hold.xml", service=HOLD, call_id="tcp", hold_ms=300, transport="t1")
    assert result.returncode == 0, result.describe()
    assert result.count("GenericCounter3") == 1
