"""INVITE → 200 OK and ACK → first prompt audio, over real sipp calls to a real SIP worker.

    .venv/bin/python -m bench.answer_latency [--calls 20]

Seeds the demo store into a scratch SQLite file, starts `driveline sip` with piper speech on a
free loopback port and an empty prompt cache, then places the calls one after another, each from
a different demo customer, so every call's personalized greeting is synthesized while it rings
(the worst case: a returning caller's greeting is already cached). The times come from sipp's
message trace and from the RTP the worker sends to a socket the caller's SDP points at.
Bounded: at most --calls calls of 2.5 s each, loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.e2e.harness import REPO, RtpSink, Sipp, free_udp_port, loud_packets

DID = "+15550100100"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def start_worker(workdir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    port = free_udp_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ivr.cli", "sip", "--bind", f"127.0.0.1:{port}"],
        env=env, cwd=workdir, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("sip worker ready"):
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(120):
        proc.kill()
        raise SystemExit("the SIP worker did not start")
    return proc, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="driveline-bench-") as tmp:
        work = Path(tmp)
        env = {
            **os.environ,
            "DRIVELINE_DATABASE_URL": f"sqlite:///{work / 'bench.db'}",
            "DRIVELINE_PROMPTS_DIR": str(work / "prompts"),
            "DRIVELINE_RECORDINGS_DIR": str(work / "recordings"),
            "DRIVELINE_FLOWS_DIR": str(REPO / "flows"),
        }
        subprocess.run(
            [sys.executable, "-m", "ivr.cli", "demo-data"], env=env, check=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        proc, port = start_worker(work, env)
        (work / "sipp").mkdir()
        sipp = Sipp(work / "sipp", f"127.0.0.1:{port}")
        invite_to_ok: list[float] = []
        ack_to_audio: list[float] = []
        try:
            for n in range(1, args.calls + 1):
                sink = RtpSink()
                result = sipp.run(
                    "hold.xml", service=DID, call_id=f"bench{n}", caller=f"+1555020{n:04d}",
                    hold_ms=2500, rtp_sink=sink.port, timeout=15,
                )  # fmt: skip
                loud = loud_packets(sink.drain())
                sink.close()
                if result.returncode != 0 or not loud:
                    print(f"call {n} failed: {result.describe()}", file=sys.stderr)
                    continue
                (invite_at,) = result.message_times("INVITE")
                ok_at = min(t for t in result.message_times("SIP/2.0 200") if t >= invite_at)
                (ack_at,) = result.message_times("ACK")
                invite_to_ok.append((ok_at - invite_at) * 1000)
                ack_to_audio.append((loud[0].at - ack_at) * 1000)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    report = {
        "calls": args.calls,
        "answered": len(invite_to_ok),
        "invite_to_200_ms": {
            "p50": round(statistics.median(invite_to_ok), 1),
            "p95": round(percentile(invite_to_ok, 95), 1),
            "max": round(max(invite_to_ok), 1),
        },
        "ack_to_first_audio_ms": {
            "p50": round(statistics.median(ack_to_audio), 1),
            "p95": round(percentile(ack_to_audio, 95), 1),
            "max": round(max(ack_to_audio), 1),
        },
        "machine": {"cores": os.cpu_count()},
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
