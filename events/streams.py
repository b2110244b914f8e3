"""Consumer-group plumbing shared by the durable stream consumers (the call writer, the
transcription workers): one base (`StreamConsumer`) and one run loop (`run_consumer`), so all
of them read, retry, and set aside what they cannot handle, the same way."""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis

log = logging.getLogger(__name__)

Entry = tuple[bytes, dict[bytes, bytes] | None]  # a stream entry; no fields once trimmed
DEAD_LETTER_MAXLEN = 10_000


def ensure_group(client: redis.Redis, stream: str, group: str) -> None:
    """Create the group (and the stream) if missing, from id 0: entries added before any
    consumer ran are read too."""
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def stream_entries(reply: Any) -> list[Entry]:
    """The entries of an XREADGROUP reply for one stream, in RESP2 or RESP3 shape."""
    if not reply:
        return []
    # RESP2: [[stream, entries]]; RESP3: {stream: [entries]}
    entries: list[Entry] = reply[0][1] if isinstance(reply, list) else next(iter(reply.values()))[0]
    return entries


def dead_letter(
    client: redis.Redis,
    *,
    stream: str,
    group: str,
    dead_letter_stream: str,
    entry_id: bytes,
    fields: dict[str, Any],
    consumer: str,
) -> None:
    """Keep the entry (its payload and why) for a person to look at, and ack it, in one
    transaction: one bad entry must not stop every later one."""
    pipe = client.pipeline(transaction=True)
    pipe.xadd(
        dead_letter_stream,
        {**fields, "entry": entry_id, "consumer": consumer},
        maxlen=DEAD_LETTER_MAXLEN,
        approximate=True,
    )
    pipe.xack(stream, group, entry_id)
    pipe.execute()


MAX_BACKOFF_S = 2.0  # between retries while Redis or the database is down: back within seconds


class StreamConsumer:
    """What every durable consumer of a Redis stream shares: its client, its group (made on
    first use, checked again after an error), acking, and setting an entry aside in a
    dead-letter stream. A subclass says how it reads: the call writer in order and in
    batches, the transcriber one job at a time with retries."""

    payload_field = "payload"  # the entry field holding what is consumed ("event", "job")

    def __init__(
        self,
        redis_url: str,
        *,
        consumer_name: str,
        stream: str,
        group: str,
        dead_letter_stream: str,
    ) -> None:
        self.redis = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=30)
        self.consumer_name = consumer_name
        self.stream, self.group, self.dead_letter_stream = stream, group, dead_letter_stream
        self._group_ready = False

    def poll_once(self, block_ms: int = 1000) -> object:
        """Handle what is due, waiting up to `block_ms` for something new."""
        raise NotImplementedError

    def close(self) -> None:
        self.redis.close()

    def reset(self) -> None:
        """After an error: check the group again before the next read."""
        self._group_ready = False

    def ensure_group(self) -> None:
        if not self._group_ready:
            ensure_group(self.redis, self.stream, self.group)
            self._group_ready = True

    def ack(self, entry_id: bytes) -> None:
        self.redis.xack(self.stream, self.group, entry_id)

    def dead_letter(self, entry_id: bytes, raw: bytes, error: str) -> None:
        """Keep the entry for a person to look at (and re-queue), then ack it."""
        dead_letter(
            self.redis,
            stream=self.stream,
            group=self.group,
            dead_letter_stream=self.dead_letter_stream,
            entry_id=entry_id,
            fields={self.payload_field: raw, "error": error[:500]},
            consumer=self.consumer_name,
        )


def run_consumer(
    consumer: StreamConsumer,
    stop_event: threading.Event,
    *,
    what: str,
    retry_on: tuple[type[BaseException], ...] = (redis.RedisError,),
    block_ms: int = 1000,
) -> None:
    """Poll until `stop_event` is set (noticed within `block_ms`), then close. The errors in
    `retry_on` (Redis or the database away) are waited out with backoff doubling from 0.5 s
    to `MAX_BACKOFF_S`; after each the consumer checks its group again, and what it left
    unacked is read again, so nothing is skipped."""
    backoff = 0.5
    try:
        while not stop_event.is_set():
            try:
                consumer.poll_once(block_ms=block_ms)
                backoff = 0.5
            except retry_on as exc:
                log.warning("%s: %s; retrying in %.1fs", what, exc, backoff)
                consumer.reset()
                stop_event.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
    finally:
        consumer.close()
