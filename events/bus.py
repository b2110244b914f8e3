"""Publish domain events on Redis.

Every event goes two ways: PUBLISH on the store's channel for live listeners (the SSE stream
behind the screen-pop), and XADD on one stream for durable consumers (the writer of call rows,
later the transcription trigger) that must not miss an event while they restart.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
import redis.asyncio as aioredis

log = logging.getLogger(__name__)

STREAM = "driveline:events"
STREAM_MAXLEN = 100_000


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
    """The same, for asyncio code (SIP worker, SSE)."""

    def __init__(self, redis_url: str) -> None:
        self.redis = aioredis.Redis.from_url(redis_url, socket_connect_timeout=2)

    async def publish(self, store_id: int, type: str, data: dict[str, Any]) -> Event:
        event = Event(type=type, store_id=store_id, data=data)
        pipe = self.redis.pipeline(transaction=False)
        _queue(pipe, event)
        await pipe.execute()
        return event

    async def close(self) -> None:
        await self.redis.aclose()
