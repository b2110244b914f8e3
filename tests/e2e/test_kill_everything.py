"""SIGKILL under load loses nothing: the call writer, the speech service, the transcriber and the
SIP worker (`driveline` subcommands over a demo store on SQLite) are each killed while calls are
in progress, and started again with the same arguments. Afterwards every call sipp placed has
one closed row with a disposition (the worker's dropped calls `failed`, with their repaired
recordings), every recording row its complete WAV with the sha256 on disk, every recording one
transcript, every utterance the killed speech service held is put back on the queue by its
restart (answered, or skipped if the restart took longer than the caller's 3 s wait), and
nothing is left pending or dead-lettered in the event or job streams."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from events.bus import STREAM
from records.call_writer import DEAD_LETTER_STREAM as EVENTS_DEAD
from records.call_writer import GROUP as WRITER_GROUP
from sip.media import header_complete
from tests.e2e.harness import SIPP_MEDIA, RunningSipp, Sipp, free_udp_port, wav_info
from tests.e2e.stack import DEMO_CALLER, DEMO_DID, Proc, demo_env
from transcription.jobs import DEAD_LETTER_STREAM as JOBS_DEAD
from transcription.jobs import GROUP as JOBS_GROUP
from transcription.jobs import STREAM as JOBS_STREAM
from transcription.jobs import pending_jobs

CALLS = 4  # per batch: a worker carries at most 4


def _wait(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return found


@dataclass
class Stack:
    """The four processes, restartable under the same arguments (and so the same names)."""

    env: dict[str, str]
    workdir: Path
    argv: dict[str, list[str]]
    ready: dict[str, str]
    procs: dict[str, Proc] = field(default_factory=dict)  # the running one of each
    killed: list[Proc] = field(default_factory=list)

    def start(self, name: str) -> Proc:
        self.procs[name] = Proc.driveline(self.argv[name], self.env, self.workdir)
        return self.procs[name]

    def log(self) -> str:
        return "\n".join(
            f"--- {p.name}{' (killed)' if p in self.killed else ''}:\n" + "\n".join(p.lines[-25:])
            for p in [*self.killed, *self.procs.values()]
        )

    def kill_and_restart(self, name: str) -> Proc:
        """SIGKILL: no cleanup, no ack, no journal tidy-up; then the same command again."""
        old = self.procs[name]
        os.kill(old.proc.pid, signal.SIGKILL)
        old.wait(timeout=5)
        self.killed.append(old)
        return self.start(name)

    def worker_runs(self) -> list[Proc]:
        return [p for p in [*self.killed, self.procs["sip"]] if p.name == "sip"]

    def close(self) -> None:
        for proc in self.procs.values():
            proc.close()


@pytest.fixture
def stack(tmp_path: Path, redis_url: str) -> Iterator[Stack]:
    redis.Redis.from_url(redis_url).flushdb()  # this session's own database: fresh streams
    env = demo_env(tmp_path, redis_url, stt_threads="1")
    db = sqlite3.connect(tmp_path / "driveline.db")
    db.execute("UPDATE stores SET recording_consent = 0")  # recording starts at the answer
    db.commit()
    db.close()
    port = free_udp_port()
    stack = Stack(
        env=env,
        workdir=tmp_path,
        argv={
            "call-writer": ["call-writer"],
            "speech": ["speech"],
            "transcribe": ["transcribe", "--consumer", "transcriber", "--backoff", "0.5"],
            "sip": ["sip", "--fake-tts", "--bind", f"127.0.0.1:{port}"],
        },
        ready={
            "call-writer": "call writer .* reading",
            "speech": "speech service ready",
            "transcribe": "transcriber transcriber: model",
            "sip": "sip worker ready on",
        },
    )
    try:
        for name in stack.argv:
            stack.start(name)
        for name, proc in stack.procs.items():
            proc.wait_for(stack.ready[name], timeout=40)
        yield stack
    finally:
        stack.close()


def _calls(sipp: Sipp, tag: str, hold_ms: int) -> RunningSipp:
    """CALLS callers at once, each speaking (sipp's sample speech) until it hangs up."""
    return sipp.start(
        "speak_and_hang_up.xml", service=DEMO_DID, call_id=tag, caller=DEMO_CALLER,
        calls=CALLS, concurrent=CALLS, hold_ms=hold_ms, timeout=hold_ms / 1000 + 15,
    )  # fmt: skip


def test_sigkill_of_every_process_under_load_loses_nothing(stack: Stack, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    port = stack.argv["sip"][-1].rsplit(":", 1)[1]
    journal = stack.workdir / "recordings" / ".journal" / f"test-{port}"
    in_journal = lambda: len(list(journal.glob("*.json"))) if journal.exists() else 0  # noqa: E731
    workdir = stack.workdir / "sipp"
    workdir.mkdir()
    (workdir / "speech.pcap").symlink_to(SIPP_MEDIA / "g711a.pcap")
    sipp = Sipp(workdir, f"127.0.0.1:{port}")

    # Batch 1: the call writer dies as four calls come in, with events in its hands; the
    # speech service while it recognizes their answers to the menu (more requests queued).
    writer = stack.procs["call-writer"]
    writer.signal(signal.SIGSTOP)  # idle, so blocked in XREADGROUP: the next events are its own
    talking = _calls(sipp, "first", hold_ms=12000)  # > the lost answer's 3 s wait
    in_hand = _in_hand(writer, client)
    _wait(lambda: in_journal() == CALLS, 10, "four calls in progress")
    stack.kill_and_restart("call-writer").wait_for(stack.ready["call-writer"], timeout=40)
    speech = stack.procs["speech"]
    busy = lambda: speech.count("Processing audio") > speech.count("recognizer: heard")  # noqa: E731
    _wait(busy, 15, "the speech service in the middle of an utterance")
    held = stack.kill_and_restart("speech").wait_for(r"put back (\d+) speech request", timeout=40)
    # The transcriber dies on the first call's job, the moment it starts (a job takes > 0.5 s).
    cut = stack.procs["transcribe"].wait_for(r"transcribing call (\S+)", timeout=15).group(1)
    stack.kill_and_restart("transcribe").wait_for(stack.ready["transcribe"], timeout=40)
    first = talking.wait()
    assert first.count("SuccessfulCall") == CALLS, first.describe()

    # Batch 2: the SIP worker dies with four calls in progress.
    doomed = _calls(sipp, "second", hold_ms=20000)
    _wait(lambda: in_journal() == CALLS, 10, "four more calls in progress")
    wavs = lambda: list((stack.workdir / "recordings").rglob("*.wav"))  # noqa: E731
    _wait(
        lambda: sum(w.stat().st_size > 16000 for w in wavs()) == 2 * CALLS,
        10,
        "a second of each of the second batch's recordings",
    )
    dropped = {path.stem for path in journal.glob("*.json")}
    worker = stack.kill_and_restart("sip")
    doomed.proc.kill()  # its callers were cut off with the worker
    doomed.proc.communicate(timeout=5)
    worker.wait_for(rf"closed {CALLS} call\(s\) left open by a previous run", timeout=40)
    worker.wait_for(stack.ready["sip"], timeout=10)

    # Settled: every call closed and transcribed, no job left; then count what is where.
    db = sqlite3.connect(stack.workdir / "driveline.db")
    placed = 2 * CALLS

    def settled() -> bool:
        closed = db.execute("SELECT count(*) FROM calls WHERE ended_at IS NOT NULL").fetchone()[0]
        transcripts = db.execute("SELECT count(*) FROM transcripts").fetchone()[0]
        return closed >= placed and transcripts >= placed and pending_jobs(client) == 0

    deadline = time.monotonic() + 40
    while not settled() and time.monotonic() < deadline:  # else: counted as lost below
        time.sleep(0.2)
    rows = db.execute(
        "SELECT c.call_uuid, c.disposition, r.path, r.sha256, t.id FROM calls c "
        "LEFT JOIN recordings r ON r.call_id = c.id LEFT JOIN transcripts t ON t.call_id = c.id"
    ).fetchall()
    db.close()
    writer_group = _writer_group(client)
    speech_after = _held_outcomes(stack.procs["speech"], int(held.group(1)))
    lost = {
        "call rows": placed - len({uuid for uuid, *_ in rows}),
        "unclosed or misfiled calls": sum(
            (disposition == "failed") != (uuid in dropped) or disposition is None
            for uuid, disposition, *_ in rows
        ),
        "recordings": sum(
            not (path and _intact(stack.workdir / "recordings" / path, digest))
            for _uuid, _disposition, path, digest, _transcript in rows
        ),
        "WAVs without a row": max(0, len(wavs()) - sum(1 for row in rows if row[2])),
        "transcripts": sum(transcript is None for *_, transcript in rows),
        "transcription jobs": abs(placed - client.xlen(JOBS_STREAM)),
        "jobs pending": pending_jobs(client, JOBS_STREAM, JOBS_GROUP),
        "events pending or unread": writer_group["pending"] + (writer_group["lag"] or 0),
        "dead-lettered": client.xlen(EVENTS_DEAD) + client.xlen(JOBS_DEAD),
        "utterances dropped": int(held.group(1)) - sum(speech_after),
    }
    slow = sum(p.count("speech service gave no answer") for p in stack.worker_runs())
    print(
        f"\nkill-everything: {placed} calls ({placed - len(dropped)} completed, {len(dropped)} "
        f"dropped by the worker kill), {client.xlen(STREAM)} events ({in_hand} in the call "
        f"writer's hands at its kill), {len(rows)} call rows, "
        f"{sum(1 for r in rows if r[2])} recordings ({len(wavs())} WAVs), "
        f"{client.xlen(JOBS_STREAM)} transcription jobs, {sum(1 for r in rows if r[4])} "
        f"transcripts; {len(stack.killed)} SIGKILLs ({', '.join(p.name for p in stack.killed)}); "
        f"{held.group(1)} utterance(s) in the speech service's hands at its kill, put back: "
        f"{speech_after[0]} answered, {speech_after[1]} too late ({slow} gather(s) timed out "
        f"while it restarted and caught up); data lost: {sum(lost.values())}"
    )
    assert not any(lost.values()), f"{lost}\n{stack.log()}"
    assert len(rows) == placed, rows  # one recording per call (the caller's leg), one transcript
    assert stack.procs["transcribe"].count(f"transcribing call {cut}") == 1  # taken up again


def _in_hand(writer: Proc, client: redis.Redis) -> int:
    """Events Redis delivered to the stopped call writer (pending in its group, never to be
    written by it). A writer stopped between two reads gets none: let it read, stop it again."""
    for _ in range(20):
        deadline = time.monotonic() + 1.5  # longer than its XREADGROUP block (1 s)
        while time.monotonic() < deadline:
            if pending := _writer_group(client)["pending"]:
                return int(pending)
            time.sleep(0.05)
        writer.signal(signal.SIGCONT)
        time.sleep(0.05)
        writer.signal(signal.SIGSTOP)
    raise AssertionError("the stopped call writer was never handed an event")


def _held_outcomes(speech: Proc, held: int) -> tuple[int, int]:
    """What the restarted speech service did with the requests it put back (at the queue's
    head, so the first it deals with): answered, or skipped as past their deadline (late, on a
    busy host; the gather had given up and asked again). Dropped ones have neither."""
    start = next(n for n, line in enumerate(speech.lines) if "put back" in line)
    outcomes = [
        line for line in speech.lines[start:] if "recognizer: heard" in line or "expired" in line
    ][:held]
    answered = sum("recognizer: heard" in line for line in outcomes)
    return answered, len(outcomes) - answered


def _writer_group(client: redis.Redis) -> dict[str, Any]:
    """The call writer's consumer group on the event stream (XINFO GROUPS)."""
    groups: Any = client.xinfo_groups(STREAM)
    return next(g for g in groups if g["name"] == WRITER_GROUP.encode())


def _intact(wav: Path, sha256: str) -> bool:
    """The file is there, its header says how long it is, and it is the bytes the row names."""
    return wav.exists() and header_complete(wav) and wav_info(wav)[2] == sha256
