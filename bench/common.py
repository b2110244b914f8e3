"""What every benchmark shares: percentiles, a scratch demo store, worker processes, the machine.

Benchmarks talk to Redis on `DRIVELINE_BENCH_REDIS` (default database 12: never flushed by
a bench, but keep it apart from a running demo) and to loopback only.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.harness import REPO, free_udp_port

REDIS_URL = os.environ.get("DRIVELINE_BENCH_REDIS", "redis://127.0.0.1:6379/12")
PG_BASE = os.environ.get("DRIVELINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
DID = "+15550100100"  # the demo store's number (records/demo.py)
RESULTS = Path(__file__).resolve().parent / "results"
READY = "sip worker ready on"


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: with 20 samples, p99 is the max)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def summary(values: list[float], *pcts: float) -> dict[str, float]:
    """`{"n", "p50", "p95"/"p99"..., "max"}` in milliseconds rounded to 0.1; empty: n only."""
    if not values:
        return {"n": 0}
    out: dict[str, float] = {"n": len(values)}
    for pct in pcts or (50, 99):
        out[f"p{pct:g}"] = round(percentile(values, pct), 1)
    out["max"] = round(max(values), 1)
    return out


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def machine() -> dict[str, Any]:
    memory_kb = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "cpu": model,
        "python": platform.python_version(),
        "load_1m": round(os.getloadavg()[0], 2),  # other work on the box while measuring
    }


def commit() -> str:
    """Short commit id, `+dirty` when the tree has uncommitted changes (read-only git)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head}+dirty" if dirty else head or "unknown"


@dataclass
class DemoEnv:
    """A scratch SQLite demo store, its prompts and recordings, and the env to run commands in."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, workdir: Path, **settings: str) -> DemoEnv:
        env = {
            **os.environ,
            "DRIVELINE_DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
            "DRIVELINE_REDIS_URL": REDIS_URL,
            "DRIVELINE_PROMPTS_DIR": str(workdir / "prompts"),
            "DRIVELINE_RECORDINGS_DIR": str(workdir / "recordings"),
            "DRIVELINE_FLOWS_DIR": str(REPO / "flows"),
            "DRIVELINE_OUTBOUND_CALLS": "false",  # no click-to-call queue consumers here
            "PYTHONUNBUFFERED": "1",
            **settings,
        }
        subprocess.run(
            [sys.executable, "-m", "driveline", "demo-data"], env=env, cwd=workdir, check=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        return cls(workdir, env)


class Worker:
    """One `driveline sip` process on its own loopback port (stderr to a file)."""

    def __init__(
        self,
        demo: DemoEnv,
        *,
        fake_tts: bool = False,
        port: int | None = None,
        profile_to: Path | None = None,
    ) -> None:
        """`profile_to`: run under pyinstrument (its event loop thread), text report there
        when the worker exits."""
        self.port = port or free_udp_port()
        self.stderr_path = demo.workdir / f"worker-{self.port}.log"
        self._stderr = self.stderr_path.open("wb")
        argv = [sys.executable, "-m", "driveline", "sip", "--bind", f"127.0.0.1:{self.port}"]
        if profile_to is not None:
            profiler = ["-m", "pyinstrument", "-r", "text", "-o", str(profile_to), "-i", "0.0005"]
            argv = [sys.executable, *profiler, *argv[1:]]
        self.proc = subprocess.Popen(
            [*argv, *(["--fake-tts"] if fake_tts else [])],
            env=demo.env, cwd=demo.workdir, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=self._stderr, text=True,
        )  # fmt: skip
        self.ready = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(READY):
                self.ready.set()

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.stderr_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"SIP worker on {self.port} did not start:\n{tail}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """utime + stime of the worker process so far (/proc)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._stderr.close()


def start_workers(
    demo: DemoEnv, count: int, *, fake_tts: bool = False, profile_first: Path | None = None
) -> list[Worker]:
    """Start `count` workers at once (they warm up in parallel), wait for all of them;
    `profile_first`: the first one runs under pyinstrument, its report goes there."""
    workers = [
        Worker(demo, fake_tts=fake_tts, profile_to=profile_first if i == 0 else None)
        for i in range(count)
    ]
    try:
        for i, worker in enumerate(workers):
            for attempt in range(3):
                try:
                    worker.wait_ready()
                    break
                except RuntimeError as exc:
                    # Its free UDP port's TCP twin was someone's ephemeral port: another pick.
                    if "Address already in use" not in str(exc) or attempt == 2:
                        raise
                    worker = workers[i] = Worker(demo, fake_tts=fake_tts)
    except RuntimeError:
        for worker in workers:
            worker.stop()
        raise
    return workers
