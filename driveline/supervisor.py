"""`driveline serve` runs several parts in one process; this starts and stops them in one place.

Parts: the call writer, the transcription worker and the speech recognizer (threads), the SIP
worker pool (driveline/pool.py: child processes), Kamailio in front of them when there are
several (sip/edge.py renders its config), and the API server (api/server.py). `ChildProcess`
is also what `driveline sip --workers N` supervises its workers with. Each part says when it
is ready (`start` returns), whether it still runs (`alive`) and how to stop.
Parts start in the order added and stop in reverse, so a worker never outlives what it needs.
If any part dies, or SIGINT/SIGTERM arrives, everything is stopped.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from types import FrameType
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Part(Protocol):
    name: str

    def start(self) -> None:
        """Start and return once ready to serve; raise if it cannot."""

    def alive(self) -> bool: ...

    def stop(self) -> None:
        """Stop and wait for it; must be safe to call on a part that already died."""


class Supervisor:
    def __init__(self, poll_s: float = 0.5) -> None:
        self.parts: list[Part] = []
        self.poll_s = poll_s
        self.stopping = threading.Event()

    def add(self, part: Part) -> None:
        self.parts.append(part)

    def run(self) -> int:
        """Run until a signal or a dead part; returns the exit code (0: asked to stop)."""
        started: list[Part] = []
        restore = self._catch_signals()
        exit_code = 0
        try:
            for part in self.parts:
                log.info("starting %s", part.name)
                part.start()
                started.append(part)
            while not self.stopping.wait(self.poll_s):
                dead = [p.name for p in started if not p.alive()]
                if dead:
                    log.error("stopped unexpectedly: %s; shutting down", ", ".join(dead))
                    exit_code = 1
                    break
        except Exception:
            log.exception("could not start; shutting down")
            exit_code = 1
        finally:
            for part in reversed(started):
                log.info("stopping %s", part.name)
                try:
                    part.stop()
                except Exception:  # noqa: BLE001 - keep stopping the others
                    log.exception("error while stopping %s", part.name)
            restore()
        return exit_code

    def _catch_signals(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None  # tests run the supervisor in a thread and set `stopping`

        def handle(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s, stopping", signal.Signals(signum).name)
            self.stopping.set()

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return lambda: [signal.signal(sig, h) for sig, h in previous.items()]


class ChildProcess:
    """A part that runs in its own process (a SIP worker: pjsua2 wants a process to itself;
    Kamailio).

    `start` returns once the child prints a line containing `ready`; the child's output is
    passed on to this process's log, and `stop` sends SIGTERM (then SIGKILL after `stop_s`).
    `spawn` + `wait_ready` and `terminate` + `stop` let a pool start and stop many at once.
    """

    def __init__(
        self, name: str, argv: list[str], ready: str, *, start_s: float = 60, stop_s: float = 10
    ) -> None:
        self.name, self.argv, self.ready = name, argv, ready
        self.start_s, self.stop_s = start_s, stop_s
        self.process: subprocess.Popen[str] | None = None
        self.ready_line: str | None = None
        self._ready = threading.Event()
        self._terminated = False
        self._log = logging.getLogger(f"driveline.{name}")

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def spawn(self) -> None:
        self._ready.clear()
        self.ready_line = None
        self._terminated = False
        self.process = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        process = self.process
        threading.Thread(
            target=self._pump, args=(process,), name=f"{self.name}-output", daemon=True
        ).start()

    def wait_ready(self) -> None:
        assert self.process is not None, "spawn() first"
        deadline = time.monotonic() + self.start_s
        while not self._ready.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start (exit code {self.process.poll()})")

    def _pump(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            if not self._ready.is_set() and process is self.process and self.ready in line:
                self.ready_line = line
                self._ready.set()
            self._log.info("%s", line)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def terminate(self) -> None:
        """Send SIGTERM once (a SIP worker then drains); `stop` waits for the exit."""
        if self.process is not None and self.process.poll() is None and not self._terminated:
            self._terminated = True
            self.process.terminate()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.terminate()
        try:
            self.process.wait(timeout=self.stop_s)
        except subprocess.TimeoutExpired:
            self._log.warning("did not stop in %.0f s; killing it", self.stop_s)
            self.process.kill()
            self.process.wait(timeout=5)
