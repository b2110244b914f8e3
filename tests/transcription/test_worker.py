"""A recorded call, from its events to a transcript on its thread, with FakeSTT standing in for
the model: real Redis streams (call writer → job → worker) and both databases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from events.bus import STREAM as EVENTS
from events.bus import Event, EventBus
from events.transcription import TranscribeJob, enqueue
from ivr.redact import MASK
from ivr.speech import FakeSTT
from records.models import ThreadEntry, Transcript, TranscriptSegment
from tests.transcription.calls import Call, publish, write_call
from transcription.jobs import JobConsumer, pending_jobs
from transcription.worker import Transcriber

CALLER_SAYS = "Hi, is my Equinox ready? My card is 4111 1111 1111 1111."
ADVISOR_SAYS = "Yes, the brakes are done, you can pick it up at five."


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


@pytest.fixture
def recorded(
    engine: Engine,
    redis_url: str,
    client: redis.Redis,
    shop: dict[str, int],
    streams: dict[str, str],
    tmp_path: Path,
) -> Iterator[Call]:
    """A call whose events went through the real call writer: rows written, job enqueued."""
    call = Call(shop["store"], shop["ann"], tmp_path / "recordings")
    events_stream = f"{streams['stream']}:events"
    publish(client, events_stream, call.events())
    write_call(engine, redis_url, streams["stream"], events_stream)
    yield call
    client.delete(events_stream)


def transcriber(engine: Engine, call: Call, redis_url: str) -> tuple[Transcriber, FakeSTT]:
    stt = FakeSTT({call.caller_wav.name: CALLER_SAYS, call.advisor_wav.name: ADVISOR_SAYS})
    return Transcriber(stt, engine, call.recordings_dir, EventBus(redis_url)), stt


def drain(consumer: JobConsumer) -> None:
    for _ in range(20):
        if not consumer.poll_once(block_ms=20):
            return
    raise AssertionError("jobs never ran dry")


def test_call_writer_enqueues_one_job_with_legs_and_ivr_lines(
    recorded: Call, client: redis.Redis, streams: dict[str, str], engine: Engine, redis_url: str
) -> None:
    [(_id, fields)] = client.xrange(streams["stream"])
    job = json.loads(fields[b"job"])
    assert job["call_uuid"] == recorded.uuid
    assert [(r["role"], r["offset_s"]) for r in job["recordings"]] == [
        ("caller", 2.0),
        ("advisor", 30.0),
    ]
    # the IVR's words, not its `[plays …]` notes or the caller's keys
    assert [(p["offset_s"], p["text"]) for p in job["prompts"]] == [
        (4.0, "Thanks for calling."),
        (10.0, "Connecting you now."),
    ]
    # the same events delivered again (a replay) enqueue nothing more
    events_stream = f"{streams['stream']}:events2"
    publish(client, events_stream, recorded.events())
    write_call(engine, redis_url, streams["stream"], events_stream)
    client.delete(events_stream)
    assert client.xlen(streams["stream"]) == 1


def test_worker_attaches_a_merged_masked_transcript_to_the_thread(
    recorded: Call,
    engine: Engine,
    sessions: sessionmaker[Session],
    redis_url: str,
    client: redis.Redis,
    streams: dict[str, str],
) -> None:
    work, stt = transcriber(engine, recorded, redis_url)
    consumer = JobConsumer(redis_url, work, consumer_name="t1", **streams)
    drain(consumer)
    consumer.close()
    assert consumer.done == 1
    assert pending_jobs(client, streams["stream"], streams["group"]) == 0

    # each leg transcribed on its own, with the store's vocabulary as the prompt
    assert [audio.name for audio, _ in stt.calls] == [  # type: ignore[union-attr]
        recorded.caller_wav.name,
        recorded.advisor_wav.name,
    ]
    prompt = stt.calls[0][1] or ""
    for word in ("Northside Chevrolet", "Alice Romero", "Chevrolet Equinox", "Repair order"):
        assert word in prompt

    with sessions() as s:
        transcript = s.scalar(select(Transcript))
        assert transcript is not None
        lines = [(x.speaker, x.start_s, x.end_s, x.text) for x in transcript.segments]
        entry = s.scalar(select(ThreadEntry).where(ThreadEntry.call_id == transcript.call_id))
    assert lines == [
        ("Caller", 2.0, 60.0, f"Hi, is my Equinox ready? My card is {MASK}."),
        ("IVR", 4.0, round(4.0 + 0.07 * len("Thanks for calling."), 2), "Thanks for calling."),
        ("IVR", 10.0, round(10.0 + 0.07 * len("Connecting you now."), 2), "Connecting you now."),
        ("Advisor", 30.0, 60.0, ADVISOR_SAYS),
    ]
    assert "4111" not in transcript.text and MASK in transcript.text
    assert transcript.model == "fake"
    assert entry is not None and entry.data["transcript_id"] == transcript.id
    assert entry.data["transcript_excerpt"].startswith("Hi, is my Equinox ready?")
    assert entry.data["call_uuid"] == recorded.uuid  # the writer's data is kept

    updates = [Event.decode(f[b"event"]) for _, f in client.xrevrange(EVENTS, count=50)]
    assert any(
        e.type == "thread.updated"
        and e.data["entry_id"] == entry.id
        and e.data["customer_id"] == recorded.customer_id
        and e.data["call_uuid"] == recorded.uuid
        for e in updates
    )


def test_a_rerun_keeps_one_transcript(
    recorded: Call,
    engine: Engine,
    sessions: sessionmaker[Session],
    redis_url: str,
    client: redis.Redis,
    streams: dict[str, str],
) -> None:
    work, _ = transcriber(engine, recorded, redis_url)
    consumer = JobConsumer(redis_url, work, consumer_name="t1", **streams)
    drain(consumer)
    [(_id, fields)] = client.xrange(streams["stream"])
    enqueue(client, TranscribeJob.model_validate_json(fields[b"job"]), stream=streams["stream"],
            force=True)  # fmt: skip
    drain(consumer)
    consumer.close()
    assert consumer.done == 2
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Transcript)) == 1
        assert s.scalar(select(func.count()).select_from(TranscriptSegment)) == 4


def test_a_missing_recording_leaves_the_job_for_a_retry(
    recorded: Call,
    engine: Engine,
    sessions: sessionmaker[Session],
    redis_url: str,
    client: redis.Redis,
    streams: dict[str, str],
) -> None:
    recorded.advisor_wav.unlink()
    work, _ = transcriber(engine, recorded, redis_url)
    consumer = JobConsumer(redis_url, work, consumer_name="t1", backoff_s=60, **streams)
    consumer.poll_once(block_ms=20)
    consumer.close()
    assert consumer.done == 0
    assert pending_jobs(client, streams["stream"], streams["group"]) == 1
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Transcript)) == 0
