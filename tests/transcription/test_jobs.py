"""The job queue against real Redis: enqueue once, run once, retry with backoff, dead-letter,
take over a dead worker's job. Handlers here are plain functions (no model, no database)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from events.calls import CallEnded, RecordingInfo
from events.transcription import (
    TranscribeJob,
    enqueue,
    job_for,
    remember_prompt,
    remembered_prompts,
)
from ivr.domain import Disposition
from transcription.jobs import JobConsumer, PermanentJobError, pending_jobs

T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
SHA = "c" * 64


def _job(call_uuid: str = "job-1") -> TranscribeJob:
    return TranscribeJob(call_uuid=call_uuid, store_id=1, started_at=T0, recordings=[])


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


@pytest.fixture
def consumer(redis_url: str, streams: dict[str, str]) -> Iterator[Callable[..., JobConsumer]]:
    made: list[JobConsumer] = []

    def make(handler: Callable[[TranscribeJob], None], name: str = "w1", **kw: Any) -> JobConsumer:
        options: dict[str, Any] = {"backoff_s": 0.05, "max_backoff_s": 0.2, **kw}
        c = JobConsumer(redis_url, handler, consumer_name=name, **streams, **options)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def _unique(tag: str) -> str:
    return f"{tag}-{time.time_ns()}"


def run_until(c: JobConsumer, done: Callable[[], bool], polls: int = 200) -> None:
    """Poll until `done()`; bounded (polls block 20 ms at most when idle)."""
    for _ in range(polls):
        if done():
            return
        c.poll_once(block_ms=20)
        time.sleep(0.01)
    raise AssertionError("condition never reached")


def test_job_for_places_each_recording_on_the_call_clock() -> None:
    ended = CallEnded(
        call_uuid="c1",
        store_id=1,
        at=T0 + timedelta(seconds=100),
        disposition=Disposition.transferred,
        did="+15550300100",
        started_at=T0,
        recordings=[
            RecordingInfo(
                leg_role="caller", path="a/c1-caller.wav", sha256=SHA, duration_s=97.5,
                started_at=T0 + timedelta(seconds=2.5),
            ),
            RecordingInfo(
                leg_role="advisor", path="a/c1-advisor.wav", sha256=SHA, duration_s=40,
                started_at=T0 + timedelta(seconds=60),
            ),
            # an older worker sends no start: it ran until the hangup
            RecordingInfo(leg_role="caller", path="a/c1-vm.wav", sha256=SHA, duration_s=30,
                          kind="voicemail"),
        ],
    )  # fmt: skip
    job = job_for(ended, [(T0 + timedelta(seconds=5), "Hi"), (T0 + timedelta(seconds=1), "Yo")])
    assert [(r.role, r.kind, r.offset_s) for r in job.recordings] == [
        ("caller", "leg", 2.5),
        ("advisor", "leg", 60.0),
        ("caller", "voicemail", 70.0),
    ]
    assert [(p.offset_s, p.text) for p in job.prompts] == [(1.0, "Yo"), (5.0, "Hi")]
    assert job.audio_s == 167.5


def test_prompts_are_kept_once_per_event(client: redis.Redis) -> None:
    call = _unique("prompts")
    remember_prompt(client, call, "ev2", T0 + timedelta(seconds=4), "second")
    remember_prompt(client, call, "ev1", T0, "first")
    remember_prompt(client, call, "ev1", T0, "first")  # redelivered
    assert remembered_prompts(client, call) == [
        (T0, "first"),
        (T0 + timedelta(seconds=4), "second"),
    ]


def test_enqueue_is_once_per_call_unless_forced(
    client: redis.Redis, streams: dict[str, str]
) -> None:
    call = _unique("once")
    remember_prompt(client, call, "ev1", T0, "hello")
    first = enqueue(client, _job(call), stream=streams["stream"])
    assert first is not None
    assert enqueue(client, _job(call), stream=streams["stream"]) is None
    assert client.xlen(streams["stream"]) == 1
    assert remembered_prompts(client, call) == []  # in the job now
    assert enqueue(client, _job(call), stream=streams["stream"], force=True) is not None
    assert client.xlen(streams["stream"]) == 2


def test_a_job_runs_once_and_is_acked(
    client: redis.Redis, streams: dict[str, str], consumer: Callable[..., JobConsumer]
) -> None:
    seen: list[str] = []
    c = consumer(lambda job: seen.append(job.call_uuid))
    call = _unique("ok")
    enqueue(client, _job(call), stream=streams["stream"])
    run_until(c, lambda: bool(seen))
    for _ in range(3):
        c.poll_once(block_ms=20)
    assert seen == [call]
    assert pending_jobs(client, streams["stream"], streams["group"]) == 0


def test_a_failed_job_is_retried_with_backoff_then_succeeds(
    client: redis.Redis, streams: dict[str, str], consumer: Callable[..., JobConsumer]
) -> None:
    attempts: list[float] = []

    def flaky(job: TranscribeJob) -> None:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise OSError("recording not there yet")

    c = consumer(flaky, backoff_s=0.2, max_backoff_s=1.0)
    enqueue(client, _job(_unique("flaky")), stream=streams["stream"])
    run_until(c, lambda: c.done == 1, polls=400)
    assert len(attempts) == 3
    # not retried in a tight loop: each retry waited at least its backoff (0.2 s, then 0.4 s)
    assert attempts[1] - attempts[0] >= 0.2 and attempts[2] - attempts[1] >= 0.4
    assert pending_jobs(client, streams["stream"], streams["group"]) == 0
    assert client.xlen(streams["dead_letter_stream"]) == 0


def test_a_job_that_keeps_failing_is_dead_lettered(
    client: redis.Redis, streams: dict[str, str], consumer: Callable[..., JobConsumer]
) -> None:
    attempts: list[int] = []

    def broken(job: TranscribeJob) -> None:
        attempts.append(1)
        raise RuntimeError("model crashed")

    c = consumer(broken, max_attempts=3)
    call = _unique("broken")
    enqueue(client, _job(call), stream=streams["stream"])
    run_until(c, lambda: client.xlen(streams["dead_letter_stream"]) == 1, polls=400)
    assert len(attempts) == 3
    assert pending_jobs(client, streams["stream"], streams["group"]) == 0
    [(_id, fields)] = client.xrange(streams["dead_letter_stream"])
    assert json.loads(fields[b"job"])["call_uuid"] == call
    assert b"model crashed" in fields[b"error"]


def test_bad_and_permanent_jobs_are_dead_lettered_at_once(
    client: redis.Redis, streams: dict[str, str], consumer: Callable[..., JobConsumer]
) -> None:
    def refuse(job: TranscribeJob) -> None:
        raise PermanentJobError("path leaves the recordings dir")

    c = consumer(refuse)
    client.xadd(streams["stream"], {"job": b'{"call_uuid": 5}'})
    enqueue(client, _job(_unique("perm")), stream=streams["stream"])
    run_until(c, lambda: client.xlen(streams["dead_letter_stream"]) == 2)
    errors = [f[b"error"] for _, f in client.xrange(streams["dead_letter_stream"])]
    assert errors[0].startswith(b"bad job") and b"recordings dir" in errors[1]
    assert pending_jobs(client, streams["stream"], streams["group"]) == 0


def test_a_dead_workers_job_is_taken_over(
    client: redis.Redis, streams: dict[str, str], consumer: Callable[..., JobConsumer]
) -> None:
    """Worker "dead" read the job and vanished (never acked): after `claim_idle_ms` another
    worker takes it over; the takeover counts as an attempt."""
    seen: list[str] = []
    alive = consumer(lambda job: seen.append(job.call_uuid), name="alive", claim_idle_ms=300)
    alive.poll_once(block_ms=1)  # makes the group
    call = _unique("orphan")
    enqueue(client, _job(call), stream=streams["stream"])
    client.xreadgroup(streams["group"], "dead", {streams["stream"]: ">"}, count=1)
    assert pending_jobs(client, streams["stream"], streams["group"]) == 1
    alive.poll_once(block_ms=20)
    assert seen == []  # the dead worker's job is not idle long enough yet
    time.sleep(0.35)
    run_until(alive, lambda: bool(seen))
    assert seen == [call]
    assert pending_jobs(client, streams["stream"], streams["group"]) == 0


def test_a_long_job_is_not_taken_over_while_its_worker_lives(
    client: redis.Redis, streams: dict[str, str], consumer: Callable[..., JobConsumer]
) -> None:
    """The heartbeat keeps a running job's idle time under `claim_idle_ms`."""
    other_seen: list[str] = []
    other = consumer(lambda job: other_seen.append(job.call_uuid), name="other", claim_idle_ms=600)

    def slow(job: TranscribeJob) -> None:
        for _ in range(20):  # 2 s of work, > 3 × claim_idle
            time.sleep(0.1)
            other.poll_once(block_ms=1)

    busy = consumer(slow, name="busy", claim_idle_ms=600)
    enqueue(client, _job(_unique("slow")), stream=streams["stream"])
    run_until(busy, lambda: busy.done == 1)
    assert other_seen == []
