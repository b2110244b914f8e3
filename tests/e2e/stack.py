"""The product's own processes for the scale-out tests: `driveline sip` (one worker or a pool),
`driveline call-writer` and Kamailio, each a `Proc` with its output collected and bounded waits,
all sharing a demo database (SQLite in the test's directory) and the test Redis database.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import click

from sip.edge import kamailio_binary
from tests.e2e.harness import REPO, require_tools
from tests.needs import require

DEMO_DID = "+15550100100"  # the demo store's number
DEMO_CALLER = "+15550200003"  # a demo customer


def kamailio_path() -> str:
    """Kamailio's binary; skips the test without it (fails under CI)."""
    try:
        return kamailio_binary()
    except click.ClickException as exc:
        require(False, exc.message)
        raise


def demo_env(workdir: Path, redis_url: str, **settings: str) -> dict[str, str]:
    """Environment for Driveline processes over a migrated, demo-seeded SQLite database."""
    from records.db import make_engine, upgrade
    from records.demo import seed_demo

    require_tools()
    url = f"sqlite:///{workdir / 'driveline.db'}"
    engine = make_engine(url)
    upgrade(engine)
    seed_demo(engine)
    engine.dispose()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DRIVELINE_DATABASE_URL": url,
        "DRIVELINE_REDIS_URL": redis_url,
        "DRIVELINE_RECORDINGS_DIR": str(workdir / "recordings"),
        "DRIVELINE_PROMPTS_DIR": str(workdir / "prompts"),
        "DRIVELINE_FLOWS_DIR": str(REPO / "flows"),
        "DRIVELINE_SIP_WORKER_ID": "test",
        "DRIVELINE_OUTBOUND_CALLS": "false",
    }
    env.update({f"DRIVELINE_{k.upper()}": v for k, v in settings.items()})
    return env


class Proc:
    """A process whose stdout+stderr lines are kept; waits are bounded; `close` ends it."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, name: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # our SIGTERM/SIGKILL never reaches pytest
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @classmethod
    def driveline(cls, args: list[str], env: dict[str, str], cwd: Path) -> Proc:
        return cls([sys.executable, "-m", "driveline", *args], env, cwd, " ".join(args[:1]))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip())
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 15.0, start: int = 0) -> re.Match[str]:
        """The first line from `start` on matching `pattern` (a regex)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[start:]:
                    found = regex.search(line)
                    if found:
                        return found
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(
                        f"{self.name}: no line matching {pattern!r} in {timeout}s; last lines:\n"
                        + "\n".join(self.lines[-40:])
                    )
                self._changed.wait(min(remaining, 0.2))

    def count(self, pattern: str) -> int:
        regex = re.compile(pattern)
        with self._changed:
            return sum(1 for line in self.lines if regex.search(line))

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def close(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._reader.join(timeout=2)
        return self.proc.returncode


def pool_pids(pool: Proc) -> dict[int, int]:
    """Port → pid of the workers a `driveline sip --workers N` pool said are ready, latest."""
    pids = {}
    for line in list(pool.lines):
        found = re.search(r"sip worker on port (\d+) (?:ready|restarted) \(pid (\d+)", line)
        if found:
            pids[int(found.group(1))] = int(found.group(2))
    return pids
