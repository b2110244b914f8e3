"""Publish domain events on Redis.

Every event goes two ways: PUBLISH on the store's channel for live listeners (the SSE stream
behind the screen-pop), and XADD on one stream for durable consumers (the writer of call rows,
later the transcription trigger) that must not miss an event while they restart.

The SIP worker's bus (`AsyncEventBus`) also rides out a Redis restart: a call goes on while
Redis is away, its events wait in memory, in order, and go out before any newer one as soon as
Redis answers again (see the class).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from events.health import WORKER_STATS, WorkerStats

log = logging.getLogger(__name__)

STREAM = "driveline:events"
STREAM_MAXLEN = 100_000
BUFFER_LIMIT = 10_000  # events a worker holds while Redis is away (about an hour of 4 calls)
RETRY_S = 0.5  # how often a worker tries Redis again while it holds events
TIMEOUT_S = 1.0  # connect and reply timeouts: a publish never holds a call up for long
BATCH = 500  # events per transaction when catching up


def database_of(client: Any) -> int:
    """The Redis database a client (sync or asyncio) works in."""
    return int(client.connection_pool.connection_kwargs.get("db", 0))


def store_channel(store_id: int, db: int) -> str:
    """A store's live channel. PUBLISH is not per database in Redis (every subscriber on the
    server hears it), so the name carries the database: installs sharing one server on
    different databases (a demo and the tests, two test processes) never hear each other."""
    return f"driveline:{db}:events:store:{store_id}"


def all_stores_pattern(db: int) -> str:
    """Every store's channel in database `db`, for a PSUBSCRIBE (admins)."""
    return store_channel(0, db).rpartition(":")[0] + ":*"


@dataclass(frozen=True)
class Event:
    type: str  # call.ringing, thread.updated, ro.status_changed, callback.created, ...
    store_id: int
    data: dict[str, Any]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def encode(self) -> str:
        return json.dumps(asdict(self), default=str, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str | bytes) -> Event:
        return cls(**json.loads(raw))


def _queue(pipe: Any, event: Event) -> None:
    payload = event.encode()
    pipe.publish(store_channel(event.store_id, database_of(pipe)), payload)
    pipe.xadd(STREAM, {"event": payload}, maxlen=STREAM_MAXLEN, approximate=True)


class EventBus:
    """Synchronous publisher for the API and the CLI."""

    def __init__(self, redis_url: str) -> None:
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)

    def publish(self, store_id: int, type: str, data: dict[str, Any]) -> Event:
        event = Event(type=type, store_id=store_id, data=data)
        pipe = self.redis.pipeline(transaction=False)
        _queue(pipe, event)
        pipe.execute()
        return event

    def close(self) -> None:
        self.redis.close()


def publish(bus: EventBus, store_id: int, type: str, data: dict[str, Any]) -> None:
    """Announce an event after the commit; Redis being down must not undo or fail a write."""
    try:
        bus.publish(store_id, type, data)
    except Exception:  # noqa: BLE001 - any Redis failure: log it, the row is already saved
        log.exception("could not publish %s for store %s", type, store_id)


class AsyncEventBus:
    """The same, for asyncio code (SIP worker), and it outlives a Redis outage.

    `publish` never raises for Redis and never loses an event to a restart: an event Redis
    does not take waits in memory, in order (at most `limit`; beyond that the oldest are
    dropped, counted and logged), and a background retry every `retry_s` sends what waits,
    oldest first, before any newer event, as soon as Redis answers. While events wait, a new
    one joins the queue at once: a call never waits on a Redis that is away.

    Each batch goes out in one MULTI/EXEC, so it lands whole or not at all. A batch whose
    reply was lost (Redis stopped while answering) may have landed: before sending it again,
    the stream is searched for its events, so none is written twice.

    `when_delivered` runs a callback once an event is on Redis (not merely queued): the
    worker's journal keeps a call until its `call.ended` got there (sip/journal.py).
    """

    def __init__(
        self,
        redis_url: str,
        *,
        limit: int = BUFFER_LIMIT,
        retry_s: float = RETRY_S,
        timeout_s: float = TIMEOUT_S,
        stats: WorkerStats = WORKER_STATS,
    ) -> None:
        # No retries inside redis-py: they would block a publish and resend blindly.
        self.redis = aioredis.Redis.from_url(
            redis_url,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self.limit, self.retry_s, self.stats = limit, retry_s, stats
        self._unsent: deque[Event] = deque()  # oldest first; the batch in flight is not here
        self._in_flight: list[Event] = []
        self._callbacks: dict[str, list[Callable[[bool], None]]] = {}  # every unsent event
        self._lock = asyncio.Lock()
        self._retry: asyncio.Task[None] | None = None
        self._down_since: float | None = None  # monotonic time of the first failure
        self._held_before = 0  # events held before this outage (the log counts this one's)
        self._doubt: tuple[set[str], int] | None = None  # ids that may have landed, since (ms)
        self.dropped = 0
        self._dropped_ids: deque[str] = deque(maxlen=limit)  # for `delivered` to answer no

    @property
    def buffered(self) -> int:
        """Events published but not on Redis yet."""
        return len(self._unsent) + len(self._in_flight)

    async def publish(self, store_id: int, type: str, data: dict[str, Any]) -> Event:
        event = Event(type=type, store_id=store_id, data=data)
        self._hold(event)
        if self._down_since is None:
            await self._flush()
        return event

    def when_delivered(self, event: Event, callback: Callable[[], None]) -> None:
        """Run `callback` as soon as `event` is on Redis (now, if it already is); never, if
        it was dropped from a full buffer. Ask right after publishing it."""
        waiting = self._callbacks.get(event.id)
        if waiting is None:
            callback()
        else:
            waiting.append(lambda delivered: callback() if delivered else None)

    async def delivered(self, event: Event, timeout: float | None = None) -> bool:
        """Whether `event` reached Redis within `timeout` seconds (False: dropped, or not yet)."""
        waiting = self._callbacks.get(event.id)
        if waiting is None:
            return event.id not in self._dropped_ids
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        waiting.append(lambda ok: done.done() or done.set_result(ok))
        try:
            return await asyncio.wait_for(asyncio.shield(done), timeout)
        except TimeoutError:
            return False

    async def close(self, timeout_s: float = 2.0) -> None:
        """Stop retrying, try once more (for at most `timeout_s`) to send what waits."""
        await self._stop_retrying()
        if self.buffered:
            try:
                await asyncio.wait_for(self._flush(), timeout_s)
            except TimeoutError:
                pass
            await self._stop_retrying()  # a failed last try started it again
        if self.buffered:
            log.error("%d event(s) never reached Redis: the worker stops", self.buffered)
            self._settle([*self._unsent], delivered=False)  # nobody waits forever
            self._unsent.clear()
        await self.redis.aclose()

    async def _stop_retrying(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            await asyncio.gather(self._retry, return_exceptions=True)
            self._retry = None

    # --- the buffer --------------------------------------------------------------------------

    def _hold(self, event: Event) -> None:
        self._callbacks[event.id] = []
        self._unsent.append(event)
        while self._unsent and self.buffered > self.limit:
            oldest = self._unsent.popleft()
            self._dropped_ids.append(oldest.id)
            self.dropped += 1
            self.stats.events_dropped = self.dropped
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning(
                    "event buffer full (%d): dropped the oldest, %s %s (%d dropped so far)",
                    self.limit, oldest.type, oldest.id, self.dropped,
                )  # fmt: skip
            self._settle([oldest], delivered=False)
        self.stats.events_buffered = self.buffered

    def _settle(self, events: list[Event], *, delivered: bool) -> None:
        for event in events:
            for callback in self._callbacks.pop(event.id, ()):
                try:
                    callback(delivered)
                except Exception:  # noqa: BLE001 - one caller's hook must not stop the rest
                    log.exception("delivery callback for %s failed", event.id)

    async def _flush(self) -> bool:
        """Send everything that waits, oldest first; False (and the retry started) when Redis
        does not take it."""
        async with self._lock:
            try:
                try:
                    await self._send_all()
                except redis.ConnectionError:
                    if self._down_since is not None:
                        raise
                    # Most likely a pooled connection Redis closed as it restarted: once more
                    # on a new one, at once (what may have landed is looked for first).
                    await self._send_all()
            except (redis.RedisError, OSError) as exc:
                self._went_down(exc)
                return False
            finally:
                self.stats.events_buffered = self.buffered
            if self._down_since is not None:
                self._came_back()
            return True

    async def _send_all(self) -> None:
        if self._doubt is not None:
            await self._settle_doubt()
        while self._unsent:
            await self._send_batch()

    async def _send_batch(self) -> None:
        batch = self._in_flight = [
            self._unsent.popleft() for _ in range(min(BATCH, len(self._unsent)))
        ]
        sent = False
        try:
            self._doubt = ({e.id for e in batch}, int(time.time() * 1000) - 5000)
            pipe = self.redis.pipeline(transaction=True)
            for event in batch:
                _queue(pipe, event)
            await pipe.execute()
            sent = True
        finally:
            self._in_flight = []
            if sent:
                self._doubt = None
                if self._down_since is not None:
                    self.stats.events_held += len(batch)
                self._settle(batch, delivered=True)
            else:  # back at the front, in order; maybe landed (see _settle_doubt)
                self._unsent.extendleft(reversed(batch))

    async def _settle_doubt(self) -> None:
        """A batch whose reply never came: those of its events the stream has are delivered."""
        assert self._doubt is not None
        ids, since_ms = self._doubt
        found: set[str] = set()
        start = f"{since_ms}-0"
        for _ in range(20):  # bounded: at most 20 × 1000 entries after the batch was sent
            entries = await self.redis.xrange(STREAM, min=start, count=1000)
            for _entry_id, fields in entries:
                raw = fields.get(b"event")
                event_id = json.loads(raw).get("id") if raw is not None else None
                if event_id in ids:
                    found.add(event_id)
            if len(entries) < 1000 or found == ids:
                break
            start = "(" + entries[-1][0].decode()
        landed = [e for e in self._unsent if e.id in found]
        if landed:
            log.warning(
                "%d event(s) had reached Redis before it went away: not resent", len(landed)
            )
            self._unsent = deque(e for e in self._unsent if e.id not in found)
            self.stats.events_held += len(landed)
            self._settle(landed, delivered=True)
        self._doubt = None

    def _went_down(self, exc: Exception) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            self._held_before = self.stats.events_held
            log.warning(
                "Redis unreachable (%s: %s): holding events, retrying every %.1fs",
                type(exc).__name__, exc, self.retry_s,
            )  # fmt: skip
        if self._retry is None or self._retry.done():
            self._retry = asyncio.get_running_loop().create_task(self._retry_until_sent())

    def _came_back(self) -> None:
        assert self._down_since is not None
        log.warning(
            "Redis is back after %.1fs: %d held event(s) sent in order (%d dropped so far)",
            time.monotonic() - self._down_since, self.stats.events_held - self._held_before,
            self.dropped,
        )  # fmt: skip
        self._down_since = None

    async def _retry_until_sent(self) -> None:
        while self.buffered or self._down_since is not None:
            await asyncio.sleep(self.retry_s)
            if await self._flush():
                return
