"""`GET /api/v1/events` over real HTTP: a uvicorn server on a free loopback port, httpx reading
the Server-Sent Events, events published on the real Redis."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.auth import hash_token
from api.routes import events as events_route
from api.server import ApiServer
from events.bus import Event, EventBus, database_of, store_channel
from events.calls import CallRinging, publish_call_event
from ivr.config import Settings
from records.models import ApiToken, utcnow
from tests.api.conftest import NOW, World
from tests.redis_server import RedisServer

TIMEOUT = httpx.Timeout(5.0, read=3.0)  # heartbeats every 0.3 s keep reads well under this


@pytest.fixture
def base_url(
    db_url: str,
    engine: Engine,
    bus: EventBus,
    redis_url: str,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    monkeypatch.setattr(events_route, "HEARTBEAT_S", 0.3)
    monkeypatch.setattr(events_route, "REAUTH_S", 0.5)
    app = create_app(Settings(database_url=db_url, redis_url=redis_url), engine=engine, bus=bus)
    server = ApiServer(app, host="127.0.0.1", port=0, startup_timeout_s=10)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}/api/v1"
    finally:
        server.stop()


class Frames:
    """Reads SSE frames: {"event", "id", "data", "comments"}; every wait is bounded."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()

    def next(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"comments": []}
        for line in self.lines:
            if line == "":
                if len(frame) > 1 or frame["comments"]:
                    return frame
                continue
            if line.startswith(":"):
                frame["comments"].append(line[1:].strip())
            else:
                name, _, value = line.partition(":")
                frame[name] = value.removeprefix(" ")
        raise AssertionError("the stream ended")

    def until(
        self, found: Callable[[dict[str, Any]], bool], timeout: float = 3.0
    ) -> list[dict[str, Any]]:
        """Every frame up to and including the first `found` one."""
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen.append(self.next())
            if found(seen[-1]):
                return seen
        raise AssertionError(f"not found within {timeout}s; saw {seen}")


@contextmanager
def stream(url: str, **kw: Any) -> Iterator[Frames]:
    with httpx.Client(timeout=TIMEOUT) as client, client.stream("GET", url, **kw) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = Frames(response)
        frames.until(lambda f: "connected" in f["comments"])  # subscribed: safe to publish
        yield frames


def _ringing(store_id: int) -> CallRinging:
    return CallRinging(
        call_uuid=f"sse-{uuid.uuid4().hex}",
        store_id=store_id,
        at=NOW,
        did="+15550300100",
        caller="+15550209999",
        unknown_caller=True,
    )


def _events(frames: list[dict[str, Any]]) -> list[Event]:
    return [Event(**json.loads(f["data"])) for f in frames if "data" in f]


def test_a_store_user_gets_their_stores_events_only(
    base_url: str, world: World, bus: EventBus
) -> None:
    a, b = world.stores["A"], world.stores["B"]
    auth = {"Authorization": f"Bearer {world.tokens['ann']}"}
    with stream(f"{base_url}/events", headers=auth) as frames:
        sent_b = publish_call_event(bus, _ringing(b))  # published first: would arrive first
        sent_a = publish_call_event(bus, _ringing(a))
        seen = frames.until(lambda f: f.get("id") == sent_a.id)
        got = seen[-1]
        assert got["event"] == "call.ringing"
        assert Event(**json.loads(got["data"])) == sent_a
        assert sent_b.id not in {e.id for e in _events(seen)}
        assert {e.store_id for e in _events(seen)} == {a}
        # Other domain events are forwarded too, and the heartbeat keeps coming.
        note = bus.publish(a, "thread.updated", {"customer_id": 1, "entry_id": 2, "kind": "note"})
        seen = frames.until(lambda f: f.get("id") == note.id)
        frames.until(lambda f: "ping" in f["comments"], timeout=2.0)


def test_admins_hear_every_store_with_the_query_token(
    base_url: str, world: World, bus: EventBus
) -> None:
    a, b = world.stores["A"], world.stores["B"]
    with stream(f"{base_url}/events", params={"token": world.tokens["root"]}) as frames:
        sent_b = publish_call_event(bus, _ringing(b))
        sent_a = publish_call_event(bus, _ringing(a))
        seen = frames.until(lambda f: f.get("id") == sent_a.id)
        assert sent_b.id in {e.id for e in _events(seen)}


@pytest.mark.parametrize(
    "kw",
    [{}, {"headers": {"Authorization": "Bearer dl_nope"}}, {"params": {"token": "dl_nope"}}],
    ids=["none", "bad-header", "bad-query"],
)
def test_unauthenticated_is_401(base_url: str, kw: dict[str, Any]) -> None:
    response = httpx.get(f"{base_url}/events", timeout=TIMEOUT, **kw)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_disconnecting_drops_the_redis_subscription(
    base_url: str, world: World, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    channel = store_channel(world.stores["A"], database_of(client))

    def subscribers() -> int:
        return int(dict(client.pubsub_numsub(channel))[channel.encode()])

    before = subscribers()
    with stream(f"{base_url}/events", headers={"Authorization": f"Bearer {world.tokens['ann']}"}):
        assert subscribers() == before + 1
    deadline = time.monotonic() + 3
    while subscribers() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert subscribers() == before
    client.close()


def test_a_revoked_token_ends_the_stream(
    base_url: str, world: World, sessions: sessionmaker[Session]
) -> None:
    token = world.tokens["ann"]
    with stream(f"{base_url}/events", headers={"Authorization": f"Bearer {token}"}) as frames:
        with sessions.begin() as s:
            row = s.scalars(
                select(ApiToken).where(ApiToken.token_sha256 == hash_token(token))
            ).one()
            row.revoked_at = utcnow()
        with pytest.raises(AssertionError, match="the stream ended"):
            frames.until(lambda f: False, timeout=3.0)


def test_the_stream_outlives_a_redis_restart(
    db_url: str,
    engine: Engine,
    world: World,
    private_redis: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis stopped under an open stream: the stream stays, subscribes again once Redis is
    back, and the next screen-pop arrives on the same connection."""
    monkeypatch.setattr(events_route, "HEARTBEAT_S", 0.3)
    monkeypatch.setattr(events_route, "RESUBSCRIBE_S", (0.1, 0.4))
    bus = EventBus(private_redis.url)
    settings = Settings(database_url=db_url, redis_url=private_redis.url)
    server = ApiServer(create_app(settings, engine=engine, bus=bus), host="127.0.0.1", port=0)
    server.start()
    auth = {"Authorization": f"Bearer {world.tokens['ann']}"}
    store = world.stores["A"]
    try:
        with stream(f"http://127.0.0.1:{server.port}/api/v1/events", headers=auth) as frames:
            before = publish_call_event(bus, _ringing(store))
            frames.until(lambda f: f.get("id") == before.id)
            private_redis.stop()
            # Waits across the restart are long: a loaded box takes seconds to restart Redis.
            frames.until(lambda f: "redis unavailable, reconnecting" in f["comments"], 10)
            frames.until(lambda f: "ping" in f["comments"], 10)  # open while Redis is away
            private_redis.start()
            frames.until(lambda f: "reconnected" in f["comments"], 10)
            after = publish_call_event(EventBus(private_redis.url), _ringing(store))
            [got] = _events(frames.until(lambda f: f.get("id") == after.id, 10))
            assert got.type == "call.ringing"
    finally:
        server.stop()
        bus.close()
