"""`GET /api/v1/events`: the store's live events as Server-Sent Events (the screen-pop).

Each event the API, the call writer or a SIP worker publishes on a store's Redis channel
(`call.ringing`, `call.answered`, `call.step`, `call.transferred`, `call.ended`,
`thread.updated`, `callback.created`, `ro.status_changed`, ...) is sent to every connected user
who can see that store, as

    event: call.ringing
    id: 3f2a...            (the event's id)
    data: {"type": "call.ringing", "store_id": 1, "data": {...}, "id": "3f2a...", "at": "..."}

plus a `: ping` comment every 15 s so proxies keep the connection open. Authentication is the
usual bearer token, or `?token=` because a browser's `EventSource` cannot set headers; prefer
the header where you can (a URL is more likely to end up in a proxy's log). The web pages'
`EventSource` sends their session cookie instead (checked the same way, every minute).

It is live only: events published while a client is disconnected are not replayed (the
browser refetches the lists it shows after reconnecting). The token is checked again every
minute, so a revoked token or a changed store assignment ends the stream.

Every connection holds its own Redis subscription and no database connection: the session used
to authenticate is closed before streaming starts. Redis going away (a restart) does not end
the stream: it says `: redis unavailable, reconnecting`, keeps its pings, subscribes again
every few seconds, and says `: reconnected` once events flow again (the screen-pops resume; those
published while it was away are not replayed, as for a client that reconnects).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api.auth import TokenExpired, authenticate
from api.deps import get_scope
from api.web.sessions import COOKIE, scope_for_cookie
from events.bus import Event, all_stores_pattern, database_of, store_channel
from records.queries import Scope

log = logging.getLogger(__name__)

router = APIRouter(tags=["events"])

HEARTBEAT_S = 15.0
REAUTH_S = 60.0
RETRY_MS = 3000  # how soon a browser reconnects after the stream drops
RESUBSCRIBE_S = (0.5, 4.0)  # Redis away: try again after 0.5 s, doubling up to 4 s
REDIS_AWAY = (RedisConnectionError, RedisTimeoutError, OSError)

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <token>`")
TokenQuery = Annotated[
    str | None,
    Query(
        max_length=200,
        description="The API token, for browsers' EventSource (it cannot send headers).",
    ),
]


def _scope_for(factory: sessionmaker[Session], secret: str, cookie: bool = False) -> Scope | None:
    """The scope behind a token, or (`cookie`) behind a web page's session cookie."""
    with factory() as session:
        if cookie:
            return scope_for_cookie(session, secret)
        user = authenticate(session, secret)
        return get_scope(user) if user is not None else None


def _line(text: str) -> str:
    """A field value on one line: a CR or LF would end the field and let text forge another."""
    return text.replace("\r", " ").replace("\n", " ")


def sse_frame(event: Event) -> str:
    return f"event: {_line(event.type)}\nid: {_line(event.id)}\ndata: {event.encode()}\n\n"


class _Subscription:
    """One stream's subscription to its stores' channels, made again when Redis comes back."""

    def __init__(self, redis_url: str, scope: Scope) -> None:
        # No retries inside redis-py: the stream retries itself, without blocking its pings.
        self.client: Any = aioredis.Redis.from_url(
            redis_url, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0)
        )
        self.scope = scope
        self.wanted = scope.store_ids is None or bool(scope.store_ids)  # none: pings only
        self.pubsub: Any = None
        self.retry_at = 0.0
        self.backoff = RESUBSCRIBE_S[0]

    async def open(self) -> bool:
        """Subscribe; False (and the next try scheduled) while Redis is away."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            if self.scope.store_ids is None:
                await pubsub.psubscribe(all_stores_pattern(database_of(self.client)))
            else:
                db = database_of(self.client)
                await pubsub.subscribe(
                    *(store_channel(s, db) for s in sorted(self.scope.store_ids))
                )
        except REDIS_AWAY as exc:
            log.debug("SSE: cannot subscribe yet: %s", exc)
            await _quietly_close(pubsub)
            self.retry_at = asyncio.get_running_loop().time() + self.backoff
            self.backoff = min(self.backoff * 2, RESUBSCRIBE_S[1])
            return False
        self.pubsub, self.backoff = pubsub, RESUBSCRIBE_S[0]
        return True

    async def next(self, timeout: float) -> dict[str, Any] | str | None:
        """The next message within `timeout` seconds (None: nothing came), or a note for the
        client when the subscription was lost or made again."""
        loop = asyncio.get_running_loop()
        if not self.wanted:
            await asyncio.sleep(timeout)
            return None
        if self.pubsub is None:
            await asyncio.sleep(max(0.0, min(timeout, self.retry_at - loop.time())))
            if loop.time() < self.retry_at:
                return None
            return "reconnected" if await self.open() else None
        try:
            message: dict[str, Any] | None = await self.pubsub.get_message(timeout=timeout)
        except REDIS_AWAY as exc:
            log.warning("SSE: Redis went away (%s); subscribing again", exc)
            await _quietly_close(self.pubsub)
            self.pubsub = None
            self.retry_at = loop.time() + self.backoff
            return "redis unavailable, reconnecting"
        return message

    async def close(self) -> None:
        if self.pubsub is not None:
            await _quietly_close(self.pubsub)
        await self.client.aclose()


async def _quietly_close(pubsub: Any) -> None:
    try:
        await pubsub.aclose()
    except Exception:  # noqa: BLE001 - the connection is dropped either way
        log.debug("closing an SSE subscription failed", exc_info=True)


async def _stream(
    request: Request, factory: sessionmaker[Session], secret: str, scope: Scope, cookie: bool
) -> AsyncIterator[str]:
    subscription = _Subscription(request.app.state.settings.redis_url, scope)
    try:
        live = not subscription.wanted or await subscription.open()
        # The first frame tells the client the subscription is live (tests wait for it).
        yield f"retry: {RETRY_MS}\n: {'connected' if live else 'redis unavailable'}\n\n"
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + HEARTBEAT_S
        next_auth = loop.time() + REAUTH_S
        while True:
            wait = max(0.0, min(next_beat, next_auth) - loop.time())
            message = await subscription.next(wait)
            if isinstance(message, str):  # lost, or subscribed again
                yield f": {message}\n\n"
            elif message is not None and message["type"] in ("message", "pmessage"):
                try:
                    event = Event.decode(message["data"])
                except (ValueError, TypeError):
                    log.warning("undecodable event on %s", message.get("channel"))
                    continue
                if scope.allows(event.store_id):  # the channel says so too; belt and braces
                    yield sse_frame(event)
            now = loop.time()
            if now >= next_auth:
                try:
                    still = await run_in_threadpool(_scope_for, factory, secret, cookie)
                except TokenExpired:
                    return  # the client reconnects and is told "token expired"
                if still != scope:
                    return  # revoked, or other stores now: the client reconnects and re-auths
                next_auth = now + REAUTH_S
            if now >= next_beat:
                yield ": ping\n\n"
                next_beat = now + HEARTBEAT_S
    finally:
        # Runs when the client goes away (Starlette cancels this generator): shielded, since
        # every await in a cancelled scope would be cancelled again before it unsubscribed.
        with anyio.CancelScope(shield=True):
            try:
                await subscription.close()
            except Exception:  # noqa: BLE001 - the connection is dropped either way
                log.debug("closing the SSE subscription failed", exc_info=True)


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events."},
        401: {"description": "Missing, unknown or revoked token."},
    },
)
async def events(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    token: TokenQuery = None,
) -> StreamingResponse:
    """Your stores' live events (screen-pop, call progress, thread and callback updates)."""
    secret = credentials.credentials if credentials is not None else token
    cookie = not secret and COOKIE in request.cookies  # a logged-in web page's EventSource
    if cookie:
        secret = request.cookies[COOKIE]
    if not secret:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    factory: sessionmaker[Session] = request.app.state.sessions
    scope = await run_in_threadpool(_scope_for, factory, secret, cookie)
    if scope is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="unknown or revoked token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return StreamingResponse(
        _stream(request, factory, secret, scope, cookie),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
