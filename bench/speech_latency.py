"""End of the caller's speech → first RTP packet of the next prompt, over real speech gathers.

    .venv/bin/python -m bench.speech_latency [--calls 10] [--redis redis://127.0.0.1:6379/14]

Starts `driveline speech` (tiny.en, model loaded once) and the e2e test worker
(tests/e2e/app.py, number +15550100011: a menu gather listening for keys and speech, then
"Your car is ready."), both on loopback and a scratch Redis database. Each call is a sipp UAC
whose SDP points the worker's RTP at a socket of ours; once the menu prompt is heard, that
socket speaks piper's "Is my car ready?" (8 kHz A-law, 20 ms packets, then silence) back to the
worker, like a phone. Measured per call, on one clock:
- speech end: when the packet holding the utterance's last loud sample was sent;
- VAD end: when the worker's endpointer declared the utterance over (its silence hangover);
- next prompt: the first loud packet the worker sends after the speech end.
Reported: p50/p95/max of speech end → next prompt, split into the VAD hangover and the rest
(recognition on the speech service plus starting the prompt). Bounded: --calls calls, each
at most 30 s, loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench.speech_eval import read_pcm, render
from tests.e2e.harness import PCMA, REPO, RtpPeer, Sipp, WorkerProcess, loud_packets

SPEECH_DID = "+15550100011"
TEXT = "Is my car ready?"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def to_alaw(pcm: bytes) -> bytes:
    done = subprocess.run(
        ["sox", "-t", "raw", "-r", "8000", "-e", "signed-integer", "-b", "16", "-c", "1", "-",
         "-t", "raw", "-e", "a-law", "-"],
        input=pcm, check=True, capture_output=True,
    )  # fmt: skip
    return done.stdout


class SpeakingPeer(RtpPeer):
    """Collects the worker's RTP; after `speak()` it sends the clip once (silence before and
    after) back to where the worker sends from, and notes when its last loud frame went out."""

    def __init__(self, alaw: bytes, last_loud_frame: int) -> None:
        self.last_loud_frame = last_loud_frame
        self.speech_end: tuple[float, float] | None = None  # (time.time, time.monotonic)
        self._go = threading.Event()
        super().__init__(alaw)

    def speak(self) -> None:
        self._go.set()

    def _send(self) -> None:
        while not self._peer_seen.wait(0.05):
            if self._stop.is_set():
                return
        ssrc, seq, stamp = random.getrandbits(32), 0, 0
        silence = b"\xd5" * 160  # A-law zero
        frames = [
            self.audio[i : i + 160].ljust(160, b"\xd5") for i in range(0, len(self.audio), 160)
        ]
        spoken = -1
        next_at = time.monotonic()
        while not self._stop.is_set() and self._peer is not None:
            if self._go.is_set() and spoken < len(frames) - 1:
                spoken += 1
                frame = frames[spoken]
            else:
                frame = silence
            header = struct.pack("!BBHII", 0x80, PCMA, seq & 0xFFFF, stamp & 0xFFFFFFFF, ssrc)
            try:
                self.sock.sendto(header + frame, self._peer)
            except OSError:
                return
            if spoken == self.last_loud_frame and self.speech_end is None:
                self.speech_end = (time.time(), time.monotonic())
            seq, stamp = seq + 1, stamp + 160
            next_at += 0.02
            time.sleep(max(0.0, next_at - time.monotonic()))


def start_speech_service(env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "driveline", "speech"], env=env, cwd=REPO,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("speech service ready"):
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(60):
        proc.kill()
        raise SystemExit("the speech service did not start")
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()

    pcm = read_pcm(render(TEXT, "piper"))
    samples = np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32))
    last_loud = int(np.nonzero(samples > 1000)[0][-1]) // 160
    alaw = to_alaw(pcm)
    env = {**os.environ, "DRIVELINE_REDIS_URL": args.redis}
    speech = start_speech_service(env)
    total: list[float] = []
    after_vad: list[float] = []
    hangover: list[float] = []
    failed = 0
    with tempfile.TemporaryDirectory(prefix="driveline-bench-") as tmp:
        work = Path(tmp)
        worker = WorkerProcess(work, "--redis", args.redis)
        (work / "sipp").mkdir()
        sipp = Sipp(work / "sipp", f"127.0.0.1:{worker.port}")
        try:
            for n in range(1, args.calls + 1):
                peer = SpeakingPeer(alaw, last_loud)
                running = sipp.start("speech_peer.xml", service=SPEECH_DID, call_id=f"lat{n}",
                                     rtp_sink=peer.port, timeout=30)  # fmt: skip
                deadline = time.monotonic() + 10
                seen: list = []
                while not loud_packets(seen) and time.monotonic() < deadline:
                    seen += peer.drain()
                    time.sleep(0.02)
                time.sleep(0.3)  # speak into the menu prompt: barge-in
                peer.speak()
                result = running.wait()
                seen += peer.drain()
                peer.close()
                call_id = f"lat{n}-"
                timing = worker.wait_for(
                    lambda e: e["event"] == "speech_timing" and e["call"].startswith(call_id),
                    timeout=10,
                )
                if result.returncode != 0 or peer.speech_end is None:
                    failed += 1
                    print(f"call {n} failed: {result.describe()}", file=sys.stderr)
                    continue
                end_wall, end_mono = peer.speech_end
                quiet_before = [p for p in seen if end_wall - 0.2 < p.at <= end_wall]
                next_prompt = [p for p in loud_packets(seen) if p.at > end_wall]
                if loud_packets(quiet_before) or not next_prompt:
                    failed += 1
                    print(f"call {n}: no barge-in or no next prompt", file=sys.stderr)
                    continue
                ms = (next_prompt[0].at - end_wall) * 1000
                vad_ms = (timing["speech_ended_at"] - end_mono) * 1000
                total.append(ms)
                hangover.append(vad_ms)
                after_vad.append(ms - vad_ms)
        finally:
            worker.close()
            speech.terminate()
            speech.wait(timeout=20)

    def stats(values: list[float]) -> dict[str, float]:
        return {
            "p50": round(statistics.median(values), 1),
            "p95": round(percentile(values, 95), 1),
            "max": round(max(values), 1),
        }

    if not total:
        raise SystemExit("no call measured")
    report = {
        "calls": args.calls,
        "measured": len(total),
        "failed": failed,
        "speech_end_to_next_prompt_ms": stats(total),
        "of_which_vad_hangover_ms": stats(hangover),
        "of_which_recognition_and_prompt_ms": stats(after_vad),
        "target_p95_ms": 800,
        "machine": {"cores": os.cpu_count(), "load": os.getloadavg()[0]},
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
