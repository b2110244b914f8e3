"""SIP load: how many concurrent recorded status-flow calls complete with 0 failures, no gaps.

    .venv/bin/python -m bench.sip_load [--steps 4,8,16,32,64,128] [--max-time 900] [--fake-tts]
                                       [--quick]

Each step places C concurrent calls on C/4 `driveline sip` processes (one per 4 calls, the
pjsua2 cap; started as needed and kept for the next step, each on its own loopback port, the
demo store on one scratch SQLite file, recording on as the demo store has it). On each worker,
3 callers are sipp running bench/scenarios/status_load.xml (RTP from g711a.pcap while the
greeting plays, then 1 as RFC 2833 DTMF in the menu, then listening until the worker hangs up
after saying the RO's status) and 1 is a probe: the same call, but its RTP goes to a peer in
this process that speaks the same audio, sends the 1 itself and timestamps every packet the
worker sends, so prompt audio gaps are measured (lost packets, or 100 ms or more without one).

Per step: calls, failures (sipp's failed calls + probes that saw no audio), gaps, INVITE → 200 OK
p50/p99 (sipp response times), CPU per call (worker CPU time / call-seconds: % of one core per
concurrent call), worker RSS. The ramp stops at the first step with a failure or a gap (unless
--keep-going), after the last step, or before a step that would not fit in --max-time. Gaps
are judged on kernel receive timestamps (SO_TIMESTAMPNS), so a late reader thread here is not
counted as the worker's gap. Workers are separate
processes (not `driveline sip --workers`) so each one's CPU and memory can be read from /proc
and the next step only adds workers instead of restarting the warm ones.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import struct
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import DID, RESULTS, DemoEnv, Worker, start_workers, summary
from tests.e2e.harness import SIPP_MEDIA, RunningSipp, Sipp, free_udp_port, pcap_rtp_payloads

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
CALLS_PER_WORKER = 4
GAP_S = 0.1
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux
ALAW_SILENCE = b"\xd5" * 160
DTMF_AT_S = 8.5  # after the worker's first packet: while the menu plays
CALLERS = ["+15550200002", "+15550200003", "+15550200004", "+15550200008"]
TARGETS = {"concurrent_calls": 200, "cpu_per_call_pct": 0.7, "rss_mb_per_worker": 80.0}


class ProbePeer:
    """The probe caller's phone: receives the worker's RTP (arrival, sequence number), sends
    20 ms A-law frames back (symmetric RTP: the speech once, then silence) and RFC 2833 '1'
    at DTMF_AT_S."""

    def __init__(self, audio: bytes) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        # Kernel receive timestamps: on loopback, when the worker sent each packet, whatever
        # the scheduling of this process's threads on a busy box.
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.port: int = self.sock.getsockname()[1]
        self.frames = [audio[i : i + 160] for i in range(0, len(audio) - 159, 160)]
        self.received: list[tuple[float, int]] = []  # (arrival, epoch s; seq) of audio packets
        self._peer: tuple[str, int] | None = None
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._receive, daemon=True),
            threading.Thread(target=self._send, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data, ancillary, _flags, address = self.sock.recvmsg(2048, 64)
            except TimeoutError:
                continue
            except OSError:
                return
            at = time.time()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                    seconds, nanoseconds = struct.unpack("qq", value[:16])
                    at = seconds + nanoseconds / 1e9
            if self._peer is None:
                self._peer = address
            if len(data) > 12 and data[0] >> 6 == 2 and data[1] & 0x7F in (0, 8):
                self.received.append((at, struct.unpack("!H", data[2:4])[0]))

    def _send(self) -> None:
        while self._peer is None:
            if self._stop.wait(0.02):
                return
        ssrc, seq, stamp = random.getrandbits(32), random.getrandbits(16), random.getrandbits(32)
        started = next_at = time.monotonic()
        sent, dtmf_done = 0, False
        while not self._stop.is_set():
            if not dtmf_done and time.monotonic() - started >= DTMF_AT_S:
                # RFC 2833: event 1, 100 ms (5 packets), then 3 end packets; one timestamp.
                for n in range(8):
                    end = n >= 5
                    duration = 160 * min(n + 1, 5)
                    payload = struct.pack("!BBH", 1, (0x80 if end else 0) | 10, duration)
                    header = struct.pack("!BBHII", 0x80, 101 | (0x80 if n == 0 else 0),
                                         seq & 0xFFFF, stamp & 0xFFFFFFFF, ssrc)  # fmt: skip
                    self._sendto(header + payload)
                    seq += 1
                    next_at += 0.02
                    time.sleep(max(0.0, next_at - time.monotonic()))
                stamp += 160 * 8
                dtmf_done = True
                continue
            # The speech once (like sipp's pcap on the load calls), then silence: a caller who
            # never stops talking would hold a speech gather open.
            frame = self.frames[sent] if sent < len(self.frames) else ALAW_SILENCE
            self._sendto(
                struct.pack("!BBHII", 0x80, 8, seq & 0xFFFF, stamp & 0xFFFFFFFF, ssrc) + frame
            )
            sent, seq, stamp = sent + 1, seq + 1, stamp + 160
            next_at += 0.02
            time.sleep(max(0.0, next_at - time.monotonic()))

    def _sendto(self, packet: bytes) -> None:
        try:
            if self._peer is not None:
                self.sock.sendto(packet, self._peer)
        except OSError:
            pass

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        self.sock.close()

    def gaps(self) -> tuple[int, float, float]:
        """(gaps, longest silence in ms, seconds of audio received) over the call."""
        if len(self.received) < 2:
            return 0, 0.0, 0.0
        gaps, longest = 0, 0.0
        for (at_a, seq_a), (at_b, seq_b) in zip(self.received, self.received[1:], strict=False):
            interval = at_b - at_a
            longest = max(longest, interval)
            if interval >= GAP_S or (seq_b - seq_a) & 0xFFFF not in (1,):
                gaps += 1
        return gaps, round(longest * 1000, 1), self.received[-1][0] - self.received[0][0]


def _sipp(
    workdir: Path, tag: str, port: int, scenario: str, *, calls: int, caller: str, sink: int = 0
) -> RunningSipp:
    stat_file, message_file = workdir / f"{tag}.csv", workdir / f"{tag}.messages"
    media = free_udp_port(4)
    command = [
        "sipp", f"127.0.0.1:{port}", "-sf", str(SCENARIOS / scenario), "-s", DID,
        "-key", "caller", caller, "-key", "rtp_sink", str(sink or media),
        "-i", "127.0.0.1", "-p", str(free_udp_port()), "-mp", str(media),
        "-m", str(calls), "-l", str(calls), "-r", "5", "-cid_str", f"{tag}-%u@%s",
        "-timeout", "120s", "-timeout_error", "-trace_stat", "-stf", str(stat_file),
        "-trace_rtt", "-rtt_freq", "1", "-nostdin",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return RunningSipp(proc, stat_file, message_file, 130)


def _response_times(workdir: Path, scenario: str) -> list[float]:
    """INVITE → 200 OK of every call of the step, from sipp's -trace_rtt files (ms)."""
    times = []
    for path in workdir.glob(f"{Path(scenario).stem}_*_rtt.csv"):
        for line in path.read_text().splitlines()[1:]:
            parts = line.split(";")
            if len(parts) >= 2:
                try:
                    times.append(float(parts[1]))
                except ValueError:
                    continue
    return times


@dataclass
class Step:
    calls: int
    workers: int
    failures: int = 0
    gaps: int = 0
    longest_silence_ms: float = 0.0
    invite_to_200_ms: dict[str, float] = field(default_factory=dict)
    call_seconds: float = 0.0
    cpu_seconds: float = 0.0
    rss_mb_max: float = 0.0
    rss_mb_mean: float = 0.0
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.failures == 0 and self.gaps == 0

    def report(self) -> dict[str, Any]:
        cpu_pct = 100 * self.cpu_seconds / self.call_seconds if self.call_seconds else None
        return {
            "calls": self.calls,
            "workers": self.workers,
            "failures": self.failures,
            "gaps": self.gaps,
            "longest_silence_ms": self.longest_silence_ms,
            "invite_to_200_ms": self.invite_to_200_ms,
            "cpu_per_call_pct": round(cpu_pct, 2) if cpu_pct is not None else None,
            "rss_mb_per_worker": {
                "mean": round(self.rss_mb_mean, 1),
                "max": round(self.rss_mb_max, 1),
            },
            "wall_s": round(self.wall_s, 1),
            "passed": self.passed,
            "notes": self.notes[:3],
        }


def run_step(workers: list[Worker], calls: int, root: Path, audio: bytes) -> Step:
    used = workers[: calls // CALLS_PER_WORKER]
    step = Step(calls=calls, workers=len(used))
    workdir = root / f"step-{calls}"
    workdir.mkdir()
    (workdir / "pcap").symlink_to(SIPP_MEDIA)
    cpu_before = {w.pid: w.cpu_seconds() for w in used}
    started = time.monotonic()
    loads, probes = [], []
    for i, worker in enumerate(used):
        caller = CALLERS[i % len(CALLERS)]
        loads.append(_sipp(workdir, f"load{i}", worker.port, "status_load.xml",
                           calls=CALLS_PER_WORKER - 1, caller=caller))  # fmt: skip
        peer = ProbePeer(audio)
        probe = _sipp(workdir, f"probe{i}", worker.port, "status_probe.xml",
                      calls=1, caller=caller, sink=peer.port)  # fmt: skip
        probes.append((peer, probe))
        time.sleep(0.05)
    for running in loads:
        result = running.wait()
        failed = result.count("FailedCall") + max(
            0, CALLS_PER_WORKER - 1 - result.count("SuccessfulCall")
        )
        step.failures += failed
        if failed:
            step.notes.append(result.describe()[:300])
    durations = []
    for peer, running in probes:
        result = running.wait()
        peer.close()
        gaps, longest, seconds = peer.gaps()
        if result.count("SuccessfulCall") != 1 or seconds == 0:
            step.failures += 1
            step.notes.append("probe: " + result.describe()[:300])
            continue
        step.gaps += gaps
        step.longest_silence_ms = max(step.longest_silence_ms, longest)
        durations.append(seconds)
    step.wall_s = time.monotonic() - started
    for worker in used:
        if worker.proc.poll() is not None:  # keep its whole log (a crash's traceback) to read
            log_text = worker.stderr_path.read_text(errors="replace")
            kept = RESULTS / f"sip-load-worker-{worker.port}-exit{worker.proc.returncode}.log"
            kept.write_text(log_text)
            step.notes.insert(
                0,
                f"worker {worker.port} exited {worker.proc.returncode} (log: {kept}): "
                + log_text[-800:],
            )
    # A worker that died took its CPU count with it: counted from the ones still running.
    alive = [w for w in used if w.proc.poll() is None]
    step.cpu_seconds = sum(w.cpu_seconds() - cpu_before[w.pid] for w in alive)
    # Every call runs the same flow: the probes' audio time is each call's length.
    mean_call = sum(durations) / len(durations) if durations else step.wall_s
    step.call_seconds = CALLS_PER_WORKER * len(alive) * mean_call
    rss = [w.rss_mb() for w in alive] or [0.0]
    step.rss_mb_max, step.rss_mb_mean = max(rss), sum(rss) / len(rss)
    step.invite_to_200_ms = summary(
        _response_times(workdir, "status_load.xml") + _response_times(workdir, "status_probe.xml"),
        50,
        99,
    )
    return step


def warm_up(workers: list[Worker], root: Path) -> None:
    """One short call to each new worker, not measured: the first call after a start opens
    the database connections and synthesizes the store's greeting (answer_latency reports
    that one); the steps measure warm workers, as a running store has."""
    workdir = root / f"warm-{workers[0].port}"
    workdir.mkdir()
    running = [
        Sipp(workdir, f"127.0.0.1:{w.port}").start(
            "hold.xml", service=DID, call_id=f"warm{i}", caller=CALLERS[0], hold_ms=1000
        )
        for i, w in enumerate(workers)
    ]
    for call in running:
        call.wait()


def run(
    steps: tuple[int, ...] = (4, 8, 16, 32, 64, 128),
    *,
    max_time: float = 900,
    fake_tts: bool = False,
    profile: bool = False,
    keep_going: bool = False,
) -> dict[str, Any]:
    """`profile`: the first worker runs under pyinstrument for the whole ramp; its report goes
    to bench/results/profile-sip-worker.txt."""
    started = time.monotonic()
    audio = pcap_rtp_payloads()
    done: list[Step] = []
    stopped = "all steps ran"
    with tempfile.TemporaryDirectory(prefix="driveline-bench-load-") as tmp:
        root = Path(tmp)
        demo = DemoEnv.create(root)
        workers: list[Worker] = []
        try:
            for calls in steps:
                need = -(-calls // CALLS_PER_WORKER)
                last = done[-1].wall_s if done else 40.0
                if time.monotonic() - started + last * 1.5 + 10 * (need - len(workers)) > max_time:
                    stopped = f"--max-time {max_time:.0f}s reached before {calls} calls"
                    break
                if need > len(workers):
                    first = RESULTS / "profile-sip-worker.txt" if profile and not workers else None
                    fresh = start_workers(
                        demo, need - len(workers), fake_tts=fake_tts, profile_first=first
                    )
                    warm_up(fresh, root)
                    workers += fresh
                step = run_step(workers, need * CALLS_PER_WORKER, root, audio)
                done.append(step)
                print(json.dumps(step.report()), flush=True)
                if not step.passed:
                    stopped = f"{step.calls} calls: {step.failures} failures, {step.gaps} gaps"
                    if not keep_going:
                        break
        finally:
            for worker in workers:
                worker.stop()
    passed = [s for s in done if s.passed]
    best = passed[-1] if passed else None
    return {
        "tts": "fake" if fake_tts else "piper",
        "max_concurrent_ok": best.calls if best else 0,
        "best": best.report() if best else None,
        "steps": [s.report() for s in done],
        "stopped": stopped,
        "elapsed_s": round(time.monotonic() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--steps", default="4,8,16,32,64,128", help="concurrent calls per step (×4)"
    )
    parser.add_argument("--max-time", type=float, default=900, help="seconds for the whole ramp")
    parser.add_argument("--fake-tts", action="store_true", help="tones instead of piper")
    parser.add_argument("--quick", action="store_true", help="one step of 4 calls")
    parser.add_argument("--profile", action="store_true", help="pyinstrument on one worker")
    parser.add_argument(
        "--keep-going", action="store_true", help="run every step even after one fails (noisy box)"
    )
    args = parser.parse_args()
    steps = (4,) if args.quick else tuple(int(s) for s in args.steps.split(","))
    if args.profile:
        RESULTS.mkdir(exist_ok=True)
    report = run(
        steps,
        max_time=args.max_time,
        fake_tts=args.fake_tts,
        profile=args.profile,
        keep_going=args.keep_going,
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
