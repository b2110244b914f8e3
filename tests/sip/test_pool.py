"""The worker pool's supervision with stand-in workers (tiny Python processes): restarts with a
doubling, capped backoff, and stopping everyone. Real workers: tests/e2e/test_worker_pool.py."""

from __future__ import annotations

import logging
import sys
import time

import pytest

from driveline.pool import WorkerPool
from sip.cli import READY


def stand_in(pool: WorkerPool, index: int, code: str) -> None:
    pool.slots[index].child.argv = [sys.executable, "-c", f"print({READY!r}, flush=True)\n{code}"]


def test_a_worker_dying_young_is_restarted_with_a_growing_capped_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = WorkerPool(
        "127.0.0.1", 7000, 2, backoff_s=0.05, max_backoff_s=0.2, stable_s=60, poll_s=0.01
    )
    stand_in(pool, 0, "import time; time.sleep(30)")
    stand_in(pool, 1, "raise SystemExit(3)")  # ready, then dies at once, again and again
    caplog.set_level(logging.WARNING, logger="driveline.pool")
    pool.start()
    try:
        deadline = time.monotonic() + 10
        while pool.slots[1].restarts < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        steady = pool.slots[0]
        assert (steady.restarts, steady.child.alive()) == (0, True)
        assert pool.slots[1].restarts >= 4
        assert pool.slots[1].backoff_s == 0.2  # 0.05, 0.1, 0.2, then capped
        exits = [r.getMessage() for r in caplog.records if "exited" in r.getMessage()]
        assert exits[0].startswith("sip worker on port 7001 exited (code 3")
        assert "restarting in 0.1 s" in exits[1] and "restarting in 0.2 s" in exits[3]
        assert all(r.levelno == logging.ERROR for r in caplog.records if "exited" in r.message)
        assert pool.alive()
    finally:
        pool.stop()
    assert not pool.alive()
    assert not any(slot.child.alive() for slot in pool.slots)


def test_a_worker_that_cannot_start_fails_the_pool_start() -> None:
    pool = WorkerPool("127.0.0.1", 7000, 2, start_s=5)
    stand_in(pool, 0, "import time; time.sleep(30)")
    pool.slots[1].child.argv = [sys.executable, "-c", "raise SystemExit(2)"]  # never ready
    with pytest.raises(RuntimeError, match="sip-7001 did not start"):
        pool.start()
    assert not pool.slots[0].child.alive()  # the one that did start was stopped
