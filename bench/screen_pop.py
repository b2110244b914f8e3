"""Screen-pop latency: INVITE sent by the caller → `call.ringing` read by an advisor's SSE client.

    .venv/bin/python -m bench.screen_pop [--calls 30] [--fake-tts] [--quick]

The real path end to end: sipp → `driveline sip` (demo store on a scratch SQLite file: DID →
store, caller → customer with open ROs) → Redis PUBLISH → the real API under uvicorn →
`GET /api/v1/events` as the demo store's advisor, read by an httpx stream in a thread. The
INVITE time comes from sipp's message trace, the arrival from the client's clock (same host).
Calls go one after another (0.5 s each), from different demo customers, after one warm-up call
that is not counted (the worker's first call opens its database connections). Bounded: --calls
calls of 2 s at most each, loopback only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from bench.common import DID, DemoEnv, Worker, free_tcp_port, summary
from tests.e2e.harness import Sipp

TARGET = ("p99", 100.0)


class SseClient:
    """Arrival time (epoch s) of each `call.ringing`, by the SIP Call-ID it carries."""

    def __init__(self, url: str) -> None:
        self.ringing: dict[str, float] = {}
        self.connected = threading.Event()
        self.stopped = False
        threading.Thread(target=self._run, args=(url,), daemon=True).start()

    def _run(self, url: str) -> None:
        try:
            with httpx.stream("GET", url, timeout=httpx.Timeout(5, read=None)) as response:
                kind = None
                for line in response.iter_lines():
                    at = time.time()
                    if self.stopped:
                        return
                    if line.startswith(": connected"):
                        self.connected.set()
                    elif line.startswith("event: "):
                        kind = line.removeprefix("event: ")
                    elif line.startswith("data: ") and kind == "call.ringing":
                        data = json.loads(line[6:])["data"]
                        self.ringing[str(data.get("sip_call_id"))] = at
        except httpx.HTTPError:
            pass


def advisor_token(database_url: str) -> str:
    from api.auth import issue_token
    from records.db import make_engine, session_factory
    from records.models import User

    engine = make_engine(database_url)
    with session_factory(engine)() as session:
        alice = session.scalars(select(User).where(User.username == "alice")).one()
        token = issue_token(session, alice, "bench")
        session.commit()
    engine.dispose()
    return token


def run(calls: int = 30, *, fake_tts: bool = False) -> dict[str, Any]:
    latencies: list[float] = []
    missing: list[str] = []
    with tempfile.TemporaryDirectory(prefix="driveline-bench-pop-") as tmp:
        work = Path(tmp)
        demo = DemoEnv.create(work)
        worker = Worker(demo, fake_tts=fake_tts)
        port = free_tcp_port()
        api_log = (work / "api.log").open("wb")
        api = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=demo.env, cwd=work, stdout=api_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        sse: SseClient | None = None
        try:
            worker.wait_ready()
            token = advisor_token(demo.env["DRIVELINE_DATABASE_URL"])
            base = f"http://127.0.0.1:{port}/api/v1"
            auth = {"Authorization": f"Bearer {token}"}
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/me", headers=auth, timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if api.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the API did not start")
                time.sleep(0.2)
            sse = SseClient(f"{base}/events?token={token}")
            if not sse.connected.wait(10):
                raise RuntimeError("the SSE stream did not connect")
            (work / "sipp").mkdir()
            sipp = Sipp(work / "sipp", f"127.0.0.1:{worker.port}")
            for n in range(0, calls + 1):  # call 0 warms the worker up: not counted
                result = sipp.run(
                    "hold.xml", service=DID, call_id=f"pop{n}", caller=f"+1555020{n % 200 + 1:04d}",
                    hold_ms=500, timeout=10,
                )  # fmt: skip
                invites = result.message_times("INVITE")
                sip_call_id = next(
                    (line.split(":", 1)[1].strip() for line in result.messages.splitlines()
                     if line.startswith("Call-ID:")), ""
                )  # fmt: skip
                for _ in range(40):  # the event may trail the call by a little
                    if sip_call_id in sse.ringing:
                        break
                    time.sleep(0.05)
                if n == 0:
                    continue
                if not invites or sip_call_id not in sse.ringing:
                    missing.append(f"call {n}: {result.describe()[:200]}")
                    continue
                latencies.append((sse.ringing[sip_call_id] - invites[0]) * 1000)
        finally:
            if sse is not None:
                sse.stopped = True
            api.terminate()
            try:
                api.wait(timeout=10)
            except subprocess.TimeoutExpired:
                api.kill()
            api_log.close()
            worker.stop()
    return {
        "calls": calls,
        "received": len(latencies),
        "missing": len(missing),
        "missing_sample": missing[:2],
        "invite_to_sse_ms": summary(latencies, 50, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--fake-tts", action="store_true")
    parser.add_argument("--quick", action="store_true", help="8 calls")
    args = parser.parse_args()
    print(json.dumps(run(8 if args.quick else args.calls, fake_tts=args.fake_tts), indent=2))


if __name__ == "__main__":
    main()
