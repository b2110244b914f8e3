"""`driveline sip --workers 2`: a killed worker is started again on its port, and SIGTERM drains
(new calls get 503, the call in progress is finished, then everything exits cleanly)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Sipp, free_udp_port
from tests.e2e.stack import DEMO_CALLER, DEMO_DID, Proc, demo_env, pool_pids


@pytest.fixture
def pool(tmp_path: Path, redis_url: str) -> Iterator[tuple[Proc, int]]:
    base = free_udp_port(2)
    env = demo_env(tmp_path, redis_url, sip_drain_s="20", sip_workers="2")  # not --workers
    proc = Proc.driveline(["sip", "--fake-tts", "--bind", f"127.0.0.1:{base}"], env, tmp_path)
    try:
        proc.wait_for(rf"sip worker on port {base + 1} ready", timeout=40)
        proc.wait_for(rf"sip worker on port {base} ready", timeout=5)
        yield proc, base
    finally:
        proc.close(timeout=30)


def _call(tmp_path: Path, port: int) -> Sipp:
    (tmp_path / "sipp").mkdir(exist_ok=True)
    return Sipp(tmp_path / "sipp", f"127.0.0.1:{port}")


def test_a_killed_worker_is_restarted_on_its_port(pool: tuple[Proc, int], tmp_path: Path) -> None:
    proc, base = pool
    assert proc.count("sip workers: ") == 1  # its workers do not become pools themselves
    other, victim = pool_pids(proc)[base], pool_pids(proc)[base + 1]
    os.kill(victim, signal.SIGKILL)
    proc.wait_for(rf"sip worker on port {base + 1} exited \(code -9", timeout=5)
    proc.wait_for(rf"sip worker on port {base + 1} restarted \(pid \d+, restart 1\)", timeout=40)
    assert pool_pids(proc)[base + 1] != victim

    sipp = _call(tmp_path, base + 1)
    result = sipp.run(
        "hold.xml", service=DEMO_DID, call_id="after", caller=DEMO_CALLER, hold_ms=500
    )
    assert result.returncode == 0, result.describe()
    assert result.count("GenericCounter3") == 1  # answered by the new worker
    assert pool_pids(proc)[base] == other  # the other one was left alone


def test_sigterm_drains_new_calls_get_503_and_active_ones_finish(
    pool: tuple[Proc, int], tmp_path: Path
) -> None:
    proc, base = pool
    sipp = _call(tmp_path, base)
    up = sipp.start(
        "hold.xml", service=DEMO_DID, call_id="up", caller=DEMO_CALLER, hold_ms=5000, timeout=20
    )
    proc.wait_for(r"answered [\d.]+ ms after the INVITE", timeout=10)
    proc.signal(signal.SIGTERM)
    proc.wait_for(r"draining: waiting for 1 call", timeout=5)

    refused = sipp.run("hold.xml", service=DEMO_DID, call_id="late", caller=DEMO_CALLER, timeout=5)
    assert refused.count("GenericCounter1") == 1, refused.describe()  # 503
    assert "SIP/2.0 503" in refused.messages

    finished = up.wait()
    assert finished.returncode == 0, finished.describe()
    assert finished.count("SuccessfulCall") == 1  # the caller hung up when done, not us
    assert proc.wait(timeout=30) == 0
    assert proc.count(r"stopped \(exit code 0\)") == 2
