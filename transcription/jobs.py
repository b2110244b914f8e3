"""Transcription jobs on a Redis Stream consumer group, the same mechanism as the call writer.

Why Streams and not rq/arq/celery: the call events already flow through a Redis Stream consumer
group (records/call_writer.py), so there is one way to hand work between processes, one thing
to operate, no extra dependency. A consumer group gives what a job library would: each job goes
to one worker; a job stays pending until that worker XACKs it after the transcript is committed;
a worker killed mid-job (SIGKILL, OOM, power) leaves it pending, and another worker (or the same
one restarted) takes it over. Concretely:

- Enqueue (events/transcription.py): the call writer, after it committed `call.ended`, adds
  one job per call that has recordings, once per call.
- Run: `poll_once` first takes over jobs other consumers left pending longer than
  `claim_idle_ms` (XAUTOCLAIM), then retries its own failed jobs whose backoff has passed, then
  reads new ones. While a job runs, a heartbeat re-claims it (XCLAIM JUSTID, which does not
  count as a delivery) so a long job is not mistaken for a dead worker's.
- Retry: a failed job is not acked; its delivery count (XPENDING) is its attempt number, and it
  is retried after `backoff(attempt)`. After `max_attempts` it goes to the dead-letter stream
  and is acked, like the call writer's undecodable events.
- Attaching is idempotent (records/transcripts.py replaces the call's one transcript), so a job
  run twice (claimed while its first worker was only slow) costs CPU, never a duplicate.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

import redis
from pydantic import ValidationError

from events.streams import Entry, StreamConsumer, run_consumer, stream_entries
from events.transcription import DEAD_LETTER_STREAM, GROUP, STREAM, TranscribeJob

log = logging.getLogger(__name__)


# --- the consumer -----------------------------------------------------------------------------


class PermanentJobError(Exception):
    """This job can never succeed (bad payload): dead-letter it now instead of retrying."""


Handler = Callable[[TranscribeJob], None]


def default_consumer_name() -> str:
    return f"transcriber-{socket.gethostname()}-{os.getpid()}"


class JobConsumer(StreamConsumer):
    """Reads transcription jobs through the consumer group and runs `handler` on each, one at
    a time, retrying a failed one with backoff (`max_attempts`), then dead-lettering it.

    `poll_once` handles at most one job and is what tests drive; `run_jobs` loops over it.
    """

    payload_field = "job"

    def __init__(
        self,
        redis_url: str,
        handler: Handler,
        *,
        consumer_name: str,
        stream: str = STREAM,
        group: str = GROUP,
        dead_letter_stream: str = DEAD_LETTER_STREAM,
        claim_idle_ms: int = 60_000,
        max_attempts: int = 5,
        backoff_s: float = 5.0,
        max_backoff_s: float = 60.0,  # keep ≤ claim_idle: XAUTOCLAIM retries at that anyway
    ) -> None:
        super().__init__(
            redis_url,
            consumer_name=consumer_name,
            stream=stream,
            group=group,
            dead_letter_stream=dead_letter_stream,
        )
        self.handler = handler
        self.claim_idle_ms = claim_idle_ms
        self.max_attempts = max_attempts
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.done = 0  # jobs completed by this consumer (for the bench and logs)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1, 2, ...)."""
        return min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)

    def poll_once(self, block_ms: int = 1000) -> bool:
        """Run one job if one is due: taken over, a retry, or new. Returns whether one ran."""
        self.ensure_group()
        claimed = self._claim()
        if claimed:
            return self._handle(claimed[0])
        due = self._due_retry()
        if due is not None:
            return self._handle(due)
        reply: Any = self.redis.xreadgroup(
            self.group, self.consumer_name, {self.stream: ">"}, count=1, block=block_ms
        )
        entries = stream_entries(reply)
        return self._handle((entries[0], 1)) if entries else False

    def _claim(self) -> list[tuple[Entry, int]]:
        """One job a dead (or stuck) worker left pending, now ours; with its attempt number."""
        reply: Any = self.redis.xautoclaim(
            self.stream, self.group, self.consumer_name, self.claim_idle_ms, "0-0", count=1
        )
        entries: list[Entry] = [e for e in reply[1] if e[1] is not None] if reply else []
        for entry_id in reply[2] if reply and len(reply) > 2 else []:
            log.warning("job %s was trimmed from the stream while pending", entry_id)
        if not entries:
            return []
        log.info("took over job %s from a worker that stopped", entries[0][0])
        return [(entries[0], self._attempt(entries[0][0]))]

    def _attempt(self, entry_id: bytes) -> int:
        info: Any = self.redis.xpending_range(
            self.stream, self.group, min=entry_id, max=entry_id, count=1
        )
        return int(info[0]["times_delivered"]) if info else 1

    def _due_retry(self) -> tuple[Entry, int] | None:
        """Our own failed job whose backoff has passed (claimed again: a new delivery)."""
        pending: Any = self.redis.xpending_range(
            self.stream, self.group, min="-", max="+", count=50, consumername=self.consumer_name
        )
        for item in pending:
            attempts = int(item["times_delivered"])
            wait_ms = int(self.backoff(attempts) * 1000)
            if int(item["time_since_delivered"]) < wait_ms:
                continue
            got: Any = self.redis.xclaim(
                self.stream, self.group, self.consumer_name, wait_ms, [item["message_id"]]
            )
            if got and got[0][1] is not None:
                return got[0], attempts + 1
        return None

    def _handle(self, item: tuple[Entry, int]) -> bool:
        (entry_id, fields), attempt = item
        raw = (fields or {}).get(b"job")
        if raw is None:
            self.ack(entry_id)
            return False
        if attempt > self.max_attempts:
            self.dead_letter(entry_id, raw, f"gave up after {attempt - 1} attempts")
            return False
        try:
            job = TranscribeJob.model_validate_json(raw)
        except ValidationError as exc:
            self.dead_letter(entry_id, raw, f"bad job: {exc.errors()[0]['msg']}")
            return False
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(entry_id, stop), daemon=True)
        beat.start()
        try:
            self.handler(job)
        except PermanentJobError as exc:
            self.dead_letter(entry_id, raw, str(exc))
            return True
        except Exception as exc:  # noqa: BLE001 - any failure: retried, then dead-lettered
            if attempt >= self.max_attempts:
                log.exception("job %s (call %s) failed for good", entry_id, job.call_uuid)
                self.dead_letter(entry_id, raw, f"{type(exc).__name__}: {exc}"[:500])
            else:
                log.warning(
                    "job %s (call %s) attempt %d failed: %s; retry in %.0fs",
                    entry_id,
                    job.call_uuid,
                    attempt,
                    exc,
                    self.backoff(attempt),
                )
            return True
        finally:
            stop.set()
            beat.join()
        self.ack(entry_id)
        self.done += 1
        return True

    def _heartbeat(self, entry_id: bytes, stop: threading.Event) -> None:
        """Keep a running job's idle time low, so nobody takes it over while we work."""
        every = max(0.05, self.claim_idle_ms / 4000)
        while not stop.wait(every):
            try:
                self.redis.xclaim(
                    self.stream, self.group, self.consumer_name, 0, [entry_id], justid=True
                )
            except redis.RedisError as exc:
                log.warning("heartbeat for job %s: %s", entry_id, exc)

    def dead_letter(self, entry_id: bytes, raw: bytes, error: str) -> None:
        log.error("job %s dead-lettered: %s", entry_id, error)
        super().dead_letter(entry_id, raw, error)


def run_jobs(consumer: JobConsumer, stop_event: threading.Event, block_ms: int = 1000) -> None:
    """Run jobs until `stop_event` is set; Redis being down is waited out with backoff."""
    run_consumer(consumer, stop_event, what="transcriber", block_ms=block_ms)


def pending_jobs(client: redis.Redis, stream: str = STREAM, group: str = GROUP) -> int:
    """Jobs read but not acked (running, or waiting for a retry)."""
    try:
        info: Any = client.xpending(stream, group)
    except redis.ResponseError:  # no group yet
        return 0
    return int(info["pending"])
