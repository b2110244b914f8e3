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
import tempfile
from pathlib import Path
from typing import Any

from bench.common import DID, DemoEnv, Worker, summary
from tests.e2e.harness import RtpSink, Sipp, loud_packets

TARGETS = {"invite_to_200_ms": ("p95", 400.0), "ack_to_first_audio_ms": ("p95", 100.0)}


def run(calls: int = 20, *, fake_tts: bool = False) -> dict[str, Any]:
    invite_to_ok: list[float] = []
    ack_to_audio: list[float] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="driveline-bench-") as tmp:
        work = Path(tmp)
        demo = DemoEnv.create(work)
        worker = Worker(demo, fake_tts=fake_tts)
        (work / "sipp").mkdir()
        sipp = Sipp(work / "sipp", f"127.0.0.1:{worker.port}")
        try:
            worker.wait_ready()
            for n in range(1, calls + 1):
                sink = RtpSink()
                result = sipp.run(
                    "hold.xml", service=DID, call_id=f"bench{n}", caller=f"+1555020{n:04d}",
                    hold_ms=2500, rtp_sink=sink.port, timeout=15,
                )  # fmt: skip
                loud = loud_packets(sink.drain())
                sink.close()
                if result.returncode != 0 or not loud:
                    failures.append(result.describe()[:300])
                    continue
                (invite_at,) = result.message_times("INVITE")
                ok_at = min(t for t in result.message_times("SIP/2.0 200") if t >= invite_at)
                (ack_at,) = result.message_times("ACK")
                invite_to_ok.append((ok_at - invite_at) * 1000)
                ack_to_audio.append((loud[0].at - ack_at) * 1000)
        finally:
            worker.stop()
    return {
        "calls": calls,
        "answered": len(invite_to_ok),
        "failures": len(failures),
        "failure_sample": failures[:2],
        "tts": "fake" if fake_tts else "piper",
        "invite_to_200_ms": summary(invite_to_ok, 50, 95),
        "ack_to_first_audio_ms": summary(ack_to_audio, 50, 95),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="5 calls")
    args = parser.parse_args()
    print(json.dumps(run(5 if args.quick else args.calls), indent=2))


if __name__ == "__main__":
    main()
