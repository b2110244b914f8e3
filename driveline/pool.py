"""A pool of SIP worker processes on consecutive ports: `driveline sip --workers N`, and the SIP
part of `driveline serve`.

Each worker is a `ChildProcess` (driveline/supervisor.py) running `driveline sip --bind HOST:PORT`.
A worker that exits is started again on the same port, so Kamailio's probe finds it back and
its journal, named after the port, is swept (sip/journal.py). SIGTERM to one worker's pid is
thus a graceful restart of that worker: it drains, exits 0 and comes back. The backoff doubles
from `backoff_s` up to `max_backoff_s` while a worker keeps dying young, and resets once it ran
`stable_s`. SIGTERM to the pool drains them all: every worker gets SIGTERM at once, refuses
new calls with 503 and finishes its active ones (up to `sip_drain_s`), then exits.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import click

from driveline.supervisor import ChildProcess, Part, Supervisor
from ivr.config import Settings, get_settings
from sip.cli import READY
from sip.edge import READY as EDGE_READY
from sip.edge import kamailio_binary, render

log = logging.getLogger(__name__)


def worker_argv(host: str, port: int, *, fake_tts: bool = False, reserve: int = 0) -> list[str]:
    # --workers 1: a worker never becomes a pool itself, whatever DRIVELINE_SIP_WORKERS says.
    argv = [sys.executable, "-m", "driveline", "sip", "--bind", f"{host}:{port}", "--workers", "1"]
    if fake_tts:
        argv.append("--fake-tts")
    if reserve:
        argv += ["--reserve", str(reserve)]
    return argv


@dataclass
class _Slot:
    child: ChildProcess
    port: int
    started_at: float = 0.0
    restart_at: float | None = None  # when a dead worker is due to start again
    backoff_s: float = 0.0
    restarts: int = 0


class WorkerPool:
    """A supervisor part: N SIP workers on `host`, ports `base_port` .. `base_port + N - 1`."""

    name = "sip"

    def __init__(
        self,
        host: str,
        base_port: int,
        count: int,
        *,
        fake_tts: bool = False,
        reserve: int = 0,
        drain_s: float = 300,
        start_s: float = 120,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        stable_s: float = 60.0,
        poll_s: float = 0.2,
    ) -> None:
        self.host = host
        self.slots = [
            _Slot(
                ChildProcess(
                    f"sip-{base_port + i}",
                    worker_argv(host, base_port + i, fake_tts=fake_tts, reserve=reserve),
                    ready=READY,
                    start_s=start_s,
                    stop_s=drain_s + 10,  # the worker hangs up what is left after drain_s
                ),
                base_port + i,
            )
            for i in range(count)
        ]
        self.backoff_s, self.max_backoff_s, self.stable_s = backoff_s, max_backoff_s, stable_s
        self.poll_s = poll_s
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None

    @property
    def addresses(self) -> list[str]:
        return [f"{self.host}:{slot.port}" for slot in self.slots]

    def start(self) -> None:
        """Start every worker at once and return when all are ready (one failing: raise)."""
        for slot in self.slots:
            slot.child.spawn()
            slot.started_at = time.monotonic()
        try:
            for slot in self.slots:
                slot.child.wait_ready()
                log.info("sip worker on port %d ready (pid %s)", slot.port, slot.child.pid)
        except Exception:
            self.stop()
            raise
        self._monitor = threading.Thread(target=self._watch, name="sip-pool", daemon=True)
        self._monitor.start()

    def alive(self) -> bool:
        """The pool restarts its workers itself; it is dead only if its monitor is."""
        return self._monitor is not None and self._monitor.is_alive()

    def stop(self) -> None:
        self._stopping.set()
        if self._monitor is not None:
            self._monitor.join(timeout=5)
        for slot in self.slots:  # all drain at the same time
            slot.child.terminate()
        for slot in self.slots:
            slot.child.stop()
            code = slot.child.process.returncode if slot.child.process else None
            log.info("sip worker on port %d stopped (exit code %s)", slot.port, code)

    def _watch(self) -> None:
        while not self._stopping.wait(self.poll_s):
            for slot in self.slots:
                if self._stopping.is_set():
                    return
                try:
                    self._check(slot)
                except Exception:  # noqa: BLE001 - keep watching the others
                    log.exception("supervising sip worker on port %d failed", slot.port)

    def _check(self, slot: _Slot) -> None:
        now = time.monotonic()
        if slot.restart_at is None:
            if slot.child.alive():
                return
            code = slot.child.process.returncode if slot.child.process else None
            lived = now - slot.started_at
            if lived >= self.stable_s:
                slot.backoff_s = 0.0
            slot.backoff_s = min(self.max_backoff_s, max(self.backoff_s, slot.backoff_s * 2))
            slot.restart_at = now + slot.backoff_s
            log.log(
                logging.WARNING if code == 0 else logging.ERROR,  # 0: drained after a SIGTERM
                "sip worker on port %d exited (code %s after %.0f s); restarting in %.1f s",
                slot.port,
                code,
                lived,
                slot.backoff_s,
            )
            return
        if now < slot.restart_at:
            return
        slot.restart_at = None
        slot.restarts += 1
        slot.started_at = now
        try:
            slot.child.start()
        except RuntimeError as exc:  # counted as another early death by the next check
            log.error("sip worker on port %d did not restart: %s", slot.port, exc)
            return
        log.warning(
            "sip worker on port %d restarted (pid %s, restart %d)",
            slot.port,
            slot.child.pid,
            slot.restarts,
        )


def serve_parts(settings: Settings, count: int, run_dir: Path) -> list[Part]:
    """The SIP side of `driveline serve`: one restarting worker on `sip_bind`, or, for `count`
    > 1, Kamailio on `sip_bind` in front of `count` workers on `sip_worker_host`, ports from
    `sip_worker_base_port` (several workers cannot share one SIP port). Kamailio comes first:
    it starts before and stops after the workers, so calls draining still reach them."""
    from sip.worker import parse_bind

    if count == 1:
        host, port = parse_bind(settings.sip_bind)
        return [WorkerPool(host, port, 1, drain_s=settings.sip_drain_s)]
    pool = WorkerPool(
        settings.sip_worker_host,
        settings.sip_worker_base_port,
        count,
        drain_s=settings.sip_drain_s,
    )
    return [edge_process(settings, run_dir, pool.addresses), pool]


def edge_process(settings: Settings, run_dir: Path, workers: list[str]) -> ChildProcess:
    """Kamailio as a `driveline serve` part."""
    files = render(settings, run_dir, workers)
    return ChildProcess(
        "edge", files.argv(kamailio_binary()), ready=EDGE_READY, start_s=20, stop_s=10
    )


@click.command("sip")
@click.option("--bind", default=None, help="HOST:PORT for SIP (UDP and TCP); default sip_bind.")
@click.option("--fake-tts", is_flag=True, help="Tones instead of piper speech (tests).")
@click.option(
    "--reserve",
    type=click.IntRange(0, 3),
    default=0,
    show_default=True,
    help="Call slots kept free for transfer legs: with 1, a worker takes 3 callers and can "
    "always bridge one of them to an advisor.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Supervise this many worker processes on consecutive ports from --bind's, restarting "
    "any that dies; default sip_workers (1: this process is the worker).",
)
def sip(bind: str | None, fake_tts: bool, reserve: int, workers: int | None) -> None:
    """Run SIP workers: they answer calls to the stores' numbers and run their flows."""
    from sip.cli import run_worker
    from sip.worker import parse_bind

    settings = get_settings()
    try:
        host, port = parse_bind(bind or settings.sip_bind)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--bind") from None
    count = workers or settings.sip_workers
    if count > 1:
        pool = WorkerPool(
            host, port, count, fake_tts=fake_tts, reserve=reserve, drain_s=settings.sip_drain_s
        )
        supervisor = Supervisor()
        supervisor.add(pool)
        click.echo(f"sip workers: {', '.join(pool.addresses)}")
        raise SystemExit(supervisor.run())
    asyncio.run(run_worker(settings, host, port, fake_tts=fake_tts, reserve=reserve))
