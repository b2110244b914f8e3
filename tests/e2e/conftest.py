"""Fixtures for the end-to-end SIP tests: one worker process for the module, sipp, an RTP sink.

The tests need sipp (Debian `sip-tester`) and pjsua2; without them they are skipped, except
under CI, where a missing tool fails the run (a green CI means real calls were placed).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import RtpSink, Sipp, WorkerProcess, require_tools


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    require_tools()
    process = WorkerProcess(tmp_path_factory.mktemp("worker"))
    try:
        yield process
    finally:
        process.close()
    assert process.proc.returncode == 0, "the worker did not exit cleanly"


@pytest.fixture
def sipp(worker: WorkerProcess, tmp_path: Path) -> Sipp:
    return Sipp(tmp_path, f"127.0.0.1:{worker.port}")


@pytest.fixture
def rtp_sink() -> Iterator[RtpSink]:
    sink = RtpSink()
    try:
        yield sink
    finally:
        sink.close()
