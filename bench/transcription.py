"""Transcription throughput and hangup → transcript delay, through the real pipeline.

    .venv/bin/python -m bench.transcription [--calls 3] [--minutes 3] [--workers 1] [--threads 2]

Each call is a two-leg recorded call of --minutes (caller recorded from the answer, advisor from
the bridge at 30 s, both to the hangup, 8 kHz like pjsua2 writes them), with a conversation
synthesized by piper: turns alternate, so each leg holds speech about 40 % of its length and
silence the rest, as real legs do. Its events go through the real call writer (which enqueues
the job at `call.ended`) to --workers `driveline transcribe` processes (shipped tiny.en, loaded
once per process) over a scratch SQLite file and private Redis streams.

1. delay: calls one at a time to idle workers; hangup (`call.ended` published) → job enqueued
   (the stream entry's id is Redis's clock) → transcript committed (polled every 20 ms).
2. throughput: all calls at once; audio seconds (both legs) per wall second, per worker.
Bounded: --calls × --minutes of audio, loopback Redis, 600 s at most.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import wave
from pathlib import Path

import numpy as np
import redis
from sqlalchemy import select

from bench.common import REDIS_URL
from events.bus import Event
from records.call_writer import run_call_writer
from records.db import make_engine, session_factory, upgrade
from records.models import Call as CallRow
from records.models import Transcript
from tests.transcription.calls import Call
from tests.transcription.conftest import make_shop

RATE = 8000
DEADLINE_S = 600.0
CALLER_LINES = [
    "Hi, this is Ann, I'm calling about my Chevrolet Equinox.",
    "It has been making a grinding noise when I brake, mostly in the morning.",
    "Is the repair order ready, and how much will the brake pads cost?",
    "Can I pick it up after five, or do you close earlier on Fridays?",
    "Okay, and did you also rotate the tires like we talked about?",
]
ADVISOR_LINES = [
    "Good afternoon, this is Alice Romero in the service department.",
    "The technician replaced the front pads and resurfaced the rotors.",
    "Your repair order comes to three hundred and twelve dollars with tax.",
    "We are open until six tonight, so after five works just fine.",
    "Yes, the tires were rotated and the pressure was set to spec.",
]


def render_lines(workdir: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    from speech.piper_tts import PiperTTS, default_model_path

    tts = PiperTTS(workdir / "piper", default_model_path())

    def pcm(text: str) -> np.ndarray:
        with wave.open(str(asyncio.run(tts.render(text))), "rb") as wav:
            return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")

    return [pcm(t) for t in CALLER_LINES], [pcm(t) for t in ADVISOR_LINES]


def write_conversation(call: Call, caller: list[np.ndarray], advisor: list[np.ndarray]) -> float:
    """Caller alone until the bridge, then turns; returns seconds of speech written."""
    length = int(call.length_s * RATE)
    legs = {"caller": np.zeros(length, np.int16), "advisor": np.zeros(length, np.int16)}
    t, turn, spoken = int(4 * RATE), 0, 0
    bridge = int(call.bridged_s * RATE)
    while True:
        # before the bridge the caller talks to the IVR; after it, the advisor speaks first
        who = "advisor" if t >= bridge and turn % 2 == 0 else "caller"
        lines = advisor if who == "advisor" else caller
        clip = lines[(turn // 2 if t >= bridge else turn) % len(lines)]
        if t + len(clip) >= length:
            break
        if t < bridge <= t + len(clip):  # the IVR transfers: the caller's line is cut short
            clip = clip[: bridge - t]
        legs[who][t : t + len(clip)] = clip
        spoken += len(clip)
        start, turn = t, turn + 1
        t += len(clip) + int(0.8 * RATE)
        if start < bridge <= t:
            t, turn = bridge + RATE, 0
    for who, path, start in (
        ("caller", call.caller_wav, call.ANSWERED_S),
        ("advisor", call.advisor_wav, call.bridged_s),
    ):
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(legs[who][int(start * RATE) :].tobytes())
    return spoken / RATE


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Workers:
    """`driveline transcribe` processes reading the bench's job stream."""

    def __init__(self, count: int, env: dict[str, str], stream: str, group: str) -> None:
        self.procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "driveline",
                    "transcribe",
                    "--consumer",
                    f"bench-{i}",
                    "--stream",
                    stream,
                    "--group",
                    group,
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for i in range(count)
        ]
        self.lines: list[str] = []
        self.ready = threading.Semaphore(0)
        for proc in self.procs:
            threading.Thread(target=self._pump, args=(proc,), daemon=True).start()
        for _ in self.procs:
            if not self.ready.acquire(timeout=120):
                self.stop()
                raise SystemExit("a transcription worker did not start:\n" + "".join(self.lines))

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.lines.append(line)
            if line.startswith("transcriber bench-"):
                self.ready.release()

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per worker's model")
    parser.add_argument("--redis-url", default=REDIS_URL)
    args = parser.parse_args()
    started = time.monotonic()
    tag = uuid.uuid4().hex[:8]
    events_stream, jobs = f"bench:events:{tag}", f"bench:jobs:{tag}"
    client = redis.Redis.from_url(args.redis_url)

    with tempfile.TemporaryDirectory(prefix="bench-transcription-") as tmp:
        workdir = Path(tmp)
        db_url = f"sqlite:///{workdir / 'driveline.db'}"
        engine = make_engine(db_url)
        upgrade(engine)
        sessions = session_factory(engine)
        shop = make_shop(sessions)
        caller_pcm, advisor_pcm = render_lines(workdir)
        length = args.minutes * 60
        bridged = min(30.0, length / 3)  # the advisor answers at 30 s (earlier in short runs)
        calls = []
        for _ in range(args.calls):
            call = Call(
                shop["store"],
                shop["ann"],
                workdir / "recordings",
                length_s=length,
                bridged_s=bridged,
            )
            write_conversation(call, caller_pcm, advisor_pcm)
            calls.append(call)
        audio_s = calls[0].caller_s + calls[0].advisor_s

        stop = threading.Event()
        writer = threading.Thread(
            target=run_call_writer,
            args=(engine, args.redis_url),
            kwargs={"consumer_name": "bench", "stop_event": stop, "stream": events_stream,
                    "group": f"{events_stream}:g", "block_ms": 50, "jobs_stream": jobs},
            daemon=True,
        )  # fmt: skip
        writer.start()
        env = {
            **os.environ,
            "DRIVELINE_DATABASE_URL": db_url,
            "DRIVELINE_REDIS_URL": args.redis_url,
            "DRIVELINE_RECORDINGS_DIR": str(workdir / "recordings"),
            "DRIVELINE_STT_THREADS": str(args.threads),
        }
        workers = Workers(args.workers, env, jobs, f"{jobs}:g")

        def publish(call: Call) -> float:
            """All of the call's events; returns the wall time `call.ended` went out."""
            sent = 0.0
            for payload in call.events():
                event = Event(payload.event_type, payload.store_id, payload.model_dump(mode="json"))
                sent = time.time()
                client.xadd(events_stream, {"event": event.encode()})
            return sent

        def attached(call: Call) -> bool:
            with sessions() as s:
                found = s.scalar(
                    select(Transcript.id)
                    .join(CallRow, CallRow.id == Transcript.call_id)
                    .where(CallRow.call_uuid == call.uuid)
                )
                return found is not None

        def wait_all(pending: list[Call]) -> None:
            while pending:
                if time.monotonic() - started > DEADLINE_S:
                    raise SystemExit("bounded run: out of time")
                pending[:] = [c for c in pending if not attached(c)]
                time.sleep(0.02)

        try:
            # 1. one call at a time, idle workers
            delays, enqueue_delays = [], []
            for call in calls:
                hangup = publish(call)
                wait_all([call])
                done = time.time()
                entry_ids = [e for e, f in client.xrange(jobs) if call.uuid.encode() in f[b"job"]]
                enqueued = int(entry_ids[0].split(b"-")[0]) / 1000
                delays.append(done - hangup)
                enqueue_delays.append(enqueued - hangup)
            # 2. all at once (fresh call ids, same audio)
            batch = []
            for call in calls:
                again = Call(
                    shop["store"],
                    shop["ann"],
                    workdir / "recordings",
                    length_s=length,
                    bridged_s=bridged,
                )
                again.caller_wav.write_bytes(call.caller_wav.read_bytes())
                again.advisor_wav.write_bytes(call.advisor_wav.read_bytes())
                batch.append(again)
            t0, cpu0 = time.time(), workers.cpu()
            for call in batch:
                publish(call)
            wait_all(list(batch))
            wall, cpu = time.time() - t0, workers.cpu() - cpu0
        finally:
            workers.stop()
            stop.set()
            writer.join(timeout=5)
            client.delete(events_stream, jobs)
            engine.dispose()

    per_worker = audio_s * len(batch) / wall / args.workers
    cpu_per_audio = cpu / (audio_s * len(batch))
    rows = [
        ("call length", f"{length:.0f} s (two legs: {audio_s:.0f} s of audio)"),
        ("workers × threads", f"{args.workers} × {args.threads}"),
        ("hangup → job enqueued, mean", f"{statistics.mean(enqueue_delays) * 1000:.0f} ms"),
        ("hangup → transcript, each call", ", ".join(f"{d:.1f} s" for d in delays)),
        ("hangup → transcript, mean", f"{statistics.mean(delays):.1f} s "
                                       f"({statistics.mean(delays) / length:.3f} × call length)"),
        (f"{len(batch)} calls at once, wall", f"{wall:.1f} s"),
        ("throughput per worker", f"{per_worker:.1f} audio s / wall s "
                                  f"({1 / per_worker:.3f} × real time per leg-second)"),
        ("worker CPU per audio second", f"{cpu_per_audio:.3f} CPU s"),
        ("load average (1 min) at the end", f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
