"""The one consumer that turns call events into SQL rows, in stream order (the rows
themselves: records/call_rows.py).

SIP workers never write call rows themselves (DESIGN: SQLite has one writer; dozens of workers
would queue on its lock). They publish `events/calls.py` events; this reads the Redis stream
`driveline:events` through a consumer group:

- An entry is XACKed only after its transaction committed (and its notifications were sent),
  so a crash at any point leaves it pending. On start, and after any error, the consumer first
  re-reads its own pending entries (XREADGROUP id 0); entries another consumer left pending for
  longer than `claim_idle_ms` are taken over with XAUTOCLAIM. Nothing read is ever lost.
- An entry that can never be applied (bad payload, unknown store) goes to the dead-letter
  stream and is acked, so one bad event cannot stop every later call from being recorded.
  A database that is down is different: nothing is acked and the loop retries with backoff
  (at most `events.streams.MAX_BACKOFF_S` apart, so the rows follow within seconds of its return).
- Once a call ended with recordings, its one transcription job is enqueued
  (events/transcription.py).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from events.bus import STREAM, Event, EventBus
from events.calls import (
    CALL_ENDED,
    CALL_EVENTS,
    CALL_STEP,
    CallEnded,
    CallStep,
    parse_call_event,
)
from events.streams import Entry, StreamConsumer, run_consumer, stream_entries
from events.transcription import STREAM as JOBS_STREAM
from events.transcription import (
    enqueue,
    forget_prompts,
    job_for,
    remember_prompt,
    remembered_prompts,
)
from ivr.parts import ThreadPart
from records.call_rows import CallWriter, Notice

log = logging.getLogger(__name__)

GROUP = "driveline:call-writer"
DEAD_LETTER_STREAM = "driveline:events:dead"


def _one_line(exc: Exception) -> str:
    """Pydantic and SQLAlchemy errors span many lines (and echo the SQL): keep the gist."""
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        if not errors:
            return "ValidationError"
        where = ".".join(str(p) for p in errors[0]["loc"])
        return f"ValidationError: {len(errors)} error(s), first {where}: {errors[0]['msg']}"
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


class DatabaseUnavailable(Exception):
    """The database could not be reached: retry the entry later, never skip it."""


class CallWriterConsumer(StreamConsumer):
    """Reads the event stream through a consumer group and feeds `CallWriter`, in order.

    `poll_once` handles one batch and is what tests drive; `run_call_writer` loops over it.
    """

    payload_field = "event"

    def __init__(
        self,
        engine: Engine,
        redis_url: str,
        *,
        consumer_name: str,
        stream: str = STREAM,
        group: str = GROUP,
        dead_letter_stream: str = DEAD_LETTER_STREAM,
        bus: EventBus | None = None,
        batch: int = 100,
        claim_idle_ms: int = 60_000,
        claim_every_s: float = 30.0,
        region: str = "US",
        jobs_stream: str = JOBS_STREAM,
    ) -> None:
        super().__init__(
            redis_url,
            consumer_name=consumer_name,
            stream=stream,
            group=group,
            dead_letter_stream=dead_letter_stream,
        )
        self.writer = CallWriter(engine, region=region)
        self.jobs_stream = jobs_stream  # where transcription jobs go
        self.owns_bus = bus is None
        self.bus = bus or EventBus(redis_url)
        self.batch = batch
        self.claim_idle_ms = claim_idle_ms
        self.claim_every_s = claim_every_s
        self._pending_first = True  # after a start or an error: our own pending entries first
        self._claimed_at = float("-inf")

    def close(self) -> None:
        super().close()
        if self.owns_bus:
            self.bus.close()

    def reset(self) -> None:
        """After an error: re-check the group and re-read pending entries before new ones."""
        super().reset()
        self._pending_first = True

    def poll_once(self, block_ms: int = 1000) -> int:
        """Handle one batch: pending entries first (ours, or claimed from a dead consumer),
        else new ones, waiting up to `block_ms` for them. Returns how many were handled."""
        # From id 0: events published before the writer ever ran (a fresh install whose
        # workers started first) are written too; re-applying old ones changes nothing.
        self.ensure_group()
        if time.monotonic() - self._claimed_at >= self.claim_every_s:
            self._claim()
        if self._pending_first:
            entries = self._read("0", block_ms=None)
            if entries:
                return self._handle(entries, redelivered=True)
            self._pending_first = False
        return self._handle(self._read(">", block_ms=block_ms), redelivered=False)

    def _claim(self) -> None:
        """Take over entries another consumer read but never acked (it crashed)."""
        start: Any = "0-0"
        for _ in range(100):  # bounded: at most 100 × batch entries per round
            reply = self.redis.xautoclaim(
                self.stream,
                self.group,
                self.consumer_name,
                self.claim_idle_ms,
                start_id=start,
                count=self.batch,
                justid=True,
            )
            if reply:
                self._pending_first = True
                log.info("claimed %d pending entries from other consumers", len(reply))
            if not isinstance(reply, list) or len(reply) < self.batch:
                break
            start = reply[-1]  # justid gives ids only; go on after the last one
        self._claimed_at = time.monotonic()

    def _read(self, start: str, block_ms: int | None) -> list[Entry]:
        reply: Any = self.redis.xreadgroup(
            self.group,
            self.consumer_name,
            {self.stream: start},
            count=self.batch,
            block=block_ms,
        )
        return stream_entries(reply)

    def _handle(self, entries: list[Entry], *, redelivered: bool) -> int:
        for entry_id, fields in entries:
            try:
                self._handle_one(entry_id, fields, redelivered)
            except DatabaseUnavailable:
                self._pending_first = True  # this entry and the rest stay pending, in order
                raise
        return len(entries)

    def _handle_one(
        self, entry_id: bytes, fields: dict[bytes, bytes] | None, redelivered: bool
    ) -> None:
        raw = (fields or {}).get(b"event")
        if raw is None:  # trimmed from the stream while pending: nothing left to apply
            log.warning("entry %s has no event (trimmed?); acking", entry_id)
            self.ack(entry_id)
            return
        try:
            event = Event.decode(raw)
        except (ValueError, TypeError) as exc:
            self.dead_letter(entry_id, raw, f"undecodable: {exc}")
            return
        if event.type not in CALL_EVENTS:
            self.ack(entry_id)
            return
        try:
            notices = self._apply(event, redelivered)
        except (ValidationError, ValueError, DataError, IntegrityError) as exc:
            reason = _one_line(exc)
            log.warning("event %s (%s) set aside: %s", event.id, event.type, reason)
            self.dead_letter(entry_id, raw, reason)
            return
        for store_id, event_type, data in notices:
            try:
                self.bus.publish(store_id, event_type, data)
            except redis.RedisError:
                log.exception("could not publish %s for store %s", event_type, store_id)
        self._hand_to_transcription(event)
        self.ack(entry_id)

    def _hand_to_transcription(self, event: Event) -> None:
        """After the commit: keep the IVR's lines of a call, and once it ended with recordings,
        enqueue its one transcription job (events/transcription.py). A Redis error leaves the
        entry pending; both steps are idempotent, so the re-read repeats them harmlessly."""
        if event.type not in (CALL_STEP, CALL_ENDED):
            return
        payload = parse_call_event(event)
        if isinstance(payload, CallStep):
            if payload.said and not payload.said.startswith("[plays "):
                remember_prompt(self.redis, payload.call_uuid, event.id, payload.at, payload.said)
        elif isinstance(payload, CallEnded):
            if payload.recordings:
                prompts = remembered_prompts(self.redis, payload.call_uuid)
                enqueue(self.redis, job_for(payload, prompts), stream=self.jobs_stream)
            else:
                forget_prompts(self.redis, payload.call_uuid)

    def _apply(self, event: Event, redelivered: bool) -> list[Notice]:
        try:
            try:
                return self.writer.apply(event, redelivered=redelivered)
            except IntegrityError:
                # Another writer (a second instance, the API's link) got there first: the
                # retry sees its rows and only fills in. A second failure is a real conflict.
                log.debug("event %s: integrity conflict, retrying once", event.id)
                return self.writer.apply(event, redelivered=True)
        except (IntegrityError, DataError):
            raise
        except DBAPIError as exc:
            raise DatabaseUnavailable(str(exc).splitlines()[0]) from exc


def run_call_writer(
    engine: Engine,
    redis_url: str,
    *,
    consumer_name: str,
    stop_event: threading.Event,
    stream: str = STREAM,
    group: str = GROUP,
    block_ms: int = 1000,
    **options: Any,
) -> None:
    """Write call events until `stop_event` is set (noticed within `block_ms`). Redis or the
    database being down is waited out (events.streams.run_consumer: the writer is back within
    seconds of a restart); the unacked entries are re-read after."""
    consumer = CallWriterConsumer(
        engine, redis_url, consumer_name=consumer_name, stream=stream, group=group, **options
    )
    log.info("call writer %s reading %s as group %s", consumer_name, stream, group)
    run_consumer(
        consumer,
        stop_event,
        what="call writer",
        retry_on=(redis.RedisError, DatabaseUnavailable, DBAPIError),
        block_ms=block_ms,
    )


class CallWriterPart(ThreadPart):
    """The writer as a `driveline serve` part (see driveline/supervisor.py): a thread of its own."""

    def __init__(self, engine: Engine, redis_url: str, consumer_name: str = "call-writer") -> None:
        def run(stopping: threading.Event) -> None:
            run_call_writer(engine, redis_url, consumer_name=consumer_name, stop_event=stopping)

        super().__init__("call-writer", run, join_s=10)
