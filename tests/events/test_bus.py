import asyncio

import redis

from events.bus import STREAM, AsyncEventBus, Event, EventBus, database_of, store_channel


def test_publish_reaches_live_listeners_and_the_stream(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    pubsub.subscribe(store_channel(4242, database_of(client)))
    pubsub.get_message(timeout=1)  # subscription confirmation
    before = client.xinfo_stream(STREAM)["last-generated-id"] if client.exists(STREAM) else None

    bus = EventBus(redis_url)
    sent = bus.publish(4242, "thread.updated", {"customer_id": 7})

    message = pubsub.get_message(timeout=2)
    assert message is not None and message["type"] == "message"
    received = Event.decode(message["data"])
    assert received == sent
    last = client.xrevrange(STREAM, count=1)[0]
    assert last[0] != before
    assert Event.decode(last[1][b"event"]).id == sent.id
    pubsub.close()
    bus.close()


def test_other_stores_do_not_hear_it(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    pubsub.subscribe(store_channel(1001, database_of(client)))
    pubsub.get_message(timeout=1)
    EventBus(redis_url).publish(1002, "call.ringing", {})
    assert pubsub.get_message(timeout=0.5) is None
    pubsub.close()


def test_async_bus_publishes_the_same_encoding(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    pubsub.subscribe(store_channel(4343, database_of(client)))
    pubsub.get_message(timeout=1)

    async def go() -> Event:
        bus = AsyncEventBus(redis_url)
        try:
            return await bus.publish(4343, "call.ringing", {"caller": "+15550200001"})
        finally:
            await bus.close()

    sent = asyncio.run(go())
    message = pubsub.get_message(timeout=2)
    assert message is not None
    assert Event.decode(message["data"]).data == {"caller": "+15550200001"}
    assert Event.decode(message["data"]).id == sent.id
    pubsub.close()


def test_another_database_does_not_hear_it(redis_url: str) -> None:
    """Redis delivers PUBLISH server-wide: a demo on database 0 must not pop a test's caller."""
    client = redis.Redis.from_url(redis_url)
    elsewhere = redis.Redis.from_url(redis_url.rpartition("/")[0] + "/0")
    pubsub = elsewhere.pubsub()
    pubsub.subscribe(store_channel(4444, database_of(elsewhere)))
    pubsub.get_message(timeout=1)
    assert database_of(client) != 0
    EventBus(redis_url).publish(4444, "call.ringing", {})
    assert pubsub.get_message(timeout=0.5) is None
    pubsub.close()
    elsewhere.close()
