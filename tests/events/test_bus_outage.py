"""`AsyncEventBus` through a Redis restart, against a private `redis-server` that is really
stopped and started: events are held in order, go out before newer ones once Redis answers
(without a new publish), the buffer is bounded, and none is written twice."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable

import pytest
import redis

from events.bus import STREAM, AsyncEventBus, Event, database_of, store_channel
from events.health import WorkerStats
from tests.redis_server import RedisServer


def stream_numbers(server: RedisServer) -> list[int]:
    """The `n` of every event on the private Redis's stream, in stream order."""
    entries = server.client().xrange(STREAM)
    return [json.loads(fields[b"event"])["data"]["n"] for _id, fields in entries]


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


def test_events_held_through_a_restart_go_out_in_order_before_newer_ones(
    private_redis: RedisServer,
) -> None:
    async def go() -> None:
        stats = WorkerStats()
        bus = AsyncEventBus(private_redis.url, stats=stats)
        delivered: list[int] = []
        try:
            for n in range(3):
                await bus.publish(1, "call.step", {"n": n})
            await asyncio.to_thread(private_redis.stop)  # data lost: a Redis without persistence
            slowest = 0.0
            held = []
            for n in range(3, 23):
                started = time.monotonic()
                held.append(await bus.publish(1, "call.step", {"n": n}))
                slowest = max(slowest, time.monotonic() - started)
                bus.when_delivered(held[-1], lambda n=n: delivered.append(n))
            assert slowest < 0.5, f"a publish waited {slowest:.2f}s on a Redis that is away"
            assert bus.buffered == 20 and stats.events_buffered == 20
            await asyncio.sleep(0.6)  # a retry or two while it is still down
            assert delivered == [] and bus.buffered == 20

            await asyncio.to_thread(private_redis.start)
            # No new publish: the background retry sends them by itself.
            await wait_until(lambda: bus.buffered == 0, 3.0, "the held events to go out")
            assert delivered == list(range(3, 23))
            await bus.publish(1, "call.step", {"n": 23})
            assert await bus.delivered(held[0]) is True
        finally:
            await bus.close()
        assert stream_numbers(private_redis) == list(range(3, 24))  # 0-2 died with Redis
        assert stats.events_held == 20 and stats.events_buffered == 0
        assert stats.events_dropped == 0

    run(go)


def test_order_is_kept_with_concurrent_publishers_across_a_restart(
    private_redis: RedisServer,
) -> None:
    """Four calls publishing at once: the stream has every event once, in publish order."""

    async def go() -> None:
        stats = WorkerStats()
        bus = AsyncEventBus(private_redis.url, retry_s=0.1, stats=stats)
        counter = itertools.count()

        async def call() -> None:
            for _ in range(60):
                await bus.publish(1, "call.step", {"n": next(counter)})
                await asyncio.sleep(0.005)

        async def outage() -> None:
            await asyncio.sleep(0.1)
            await asyncio.to_thread(private_redis.stop, keep_data=True)
            await asyncio.sleep(0.3)
            await asyncio.to_thread(private_redis.start)

        try:
            await asyncio.gather(*(call() for _ in range(4)), outage())
            await wait_until(lambda: bus.buffered == 0, 3.0, "the held events to go out")
        finally:
            await bus.close()
        assert stream_numbers(private_redis) == list(range(240))
        assert stats.events_held > 10  # some really waited for Redis

    run(go)


def test_the_buffer_is_bounded_and_drops_the_oldest(
    private_redis: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def go() -> None:
        stats = WorkerStats()
        bus = AsyncEventBus(private_redis.url, limit=5, stats=stats)
        try:
            await asyncio.to_thread(private_redis.stop)
            events = [await bus.publish(1, "call.step", {"n": n}) for n in range(8)]
            assert bus.buffered == 5 and bus.dropped == 3 and stats.events_dropped == 3
            assert await bus.delivered(events[0], timeout=0.1) is False  # dropped: never
            await asyncio.to_thread(private_redis.start)
            assert await bus.delivered(events[-1], timeout=3.0) is True
        finally:
            await bus.close()
        assert stream_numbers(private_redis) == [3, 4, 5, 6, 7]

    with caplog.at_level(logging.WARNING, logger="events.bus"):
        run(go)
    assert any("dropped the oldest" in r.getMessage() for r in caplog.records)


def test_a_batch_whose_reply_was_lost_is_not_written_twice(
    private_redis: RedisServer,
) -> None:
    """Redis frozen (SIGSTOP) after our transaction reached its socket: the publish times
    out, yet Redis runs it once it thaws. The bus finds it there and does not send it again."""

    async def go() -> None:
        bus = AsyncEventBus(private_redis.url, timeout_s=0.3, retry_s=0.2)
        client = private_redis.client()
        listener = client.pubsub()
        listener.subscribe(store_channel(1, database_of(client)))
        try:
            await bus.publish(1, "call.step", {"n": 0})  # connected
            assert private_redis.proc is not None
            os.kill(private_redis.proc.pid, signal.SIGSTOP)
            try:
                event = await bus.publish(1, "call.step", {"n": 1})  # times out: in doubt
                assert bus.buffered == 1
            finally:
                os.kill(private_redis.proc.pid, signal.SIGCONT)
            assert await bus.delivered(event, timeout=3.0) is True
            await bus.publish(1, "call.step", {"n": 2})
        finally:
            await bus.close()
        assert stream_numbers(private_redis) == [0, 1, 2]
        heard = []
        while (message := listener.get_message(timeout=0.2)) is not None:
            if message["type"] == "message":
                heard.append(Event.decode(message["data"]).data["n"])
        assert heard == [0, 1, 2]  # live listeners got it once too
        listener.close()

    run(go)


def test_close_sends_what_waits_when_redis_answers_again(
    private_redis: RedisServer,
) -> None:
    async def go() -> None:
        bus = AsyncEventBus(private_redis.url, retry_s=60)  # no retry before close
        await asyncio.to_thread(private_redis.stop)
        for n in range(3):
            await bus.publish(1, "call.ended", {"n": n})
        await asyncio.to_thread(private_redis.start)
        await bus.close()

    run(go)
    assert stream_numbers(private_redis) == [0, 1, 2]


def test_close_gives_up_quickly_when_redis_stays_away(
    private_redis: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def go() -> float:
        bus = AsyncEventBus(private_redis.url)
        await asyncio.to_thread(private_redis.stop)
        await bus.publish(1, "call.ended", {"n": 0})
        started = time.monotonic()
        await bus.close(timeout_s=0.5)
        return time.monotonic() - started

    with caplog.at_level(logging.ERROR, logger="events.bus"):
        assert asyncio.run(go()) < 1.5
    assert any("never reached Redis" in r.getMessage() for r in caplog.records)


def test_a_bus_started_while_redis_is_away_sends_once_it_comes(
    private_redis: RedisServer,
) -> None:
    async def go() -> None:
        await asyncio.to_thread(private_redis.stop)
        bus = AsyncEventBus(private_redis.url)
        try:
            event = await bus.publish(1, "call.ringing", {"n": 0})
            await asyncio.to_thread(private_redis.start)
            assert await bus.delivered(event, timeout=3.0)
        finally:
            await bus.close()

    run(go)
    assert stream_numbers(private_redis) == [0]
    assert redis.Redis(port=private_redis.port).xlen(STREAM) == 1


def test_a_restart_between_two_publishes_costs_no_wait(private_redis: RedisServer) -> None:
    """Redis restarted while idle: the pooled connection is dead, the next publish goes out
    at once on a new one instead of waiting for the retry."""

    async def go() -> None:
        bus = AsyncEventBus(private_redis.url, retry_s=60)
        try:
            await bus.publish(1, "call.step", {"n": 0})
            await asyncio.to_thread(private_redis.stop, keep_data=True)
            await asyncio.to_thread(private_redis.start)
            await bus.publish(1, "call.step", {"n": 1})
            assert bus.buffered == 0
        finally:
            await bus.close()

    run(go)
    assert stream_numbers(private_redis) == [0, 1]
