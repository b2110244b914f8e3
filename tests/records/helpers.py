"""Small builders for records tests: just enough rows to make one point per test."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from events.bus import Event, database_of, store_channel
from ivr.phone import FICTIONAL
from records.models import (
    Customer,
    PhoneNumber,
    RepairOrder,
    StatusEventRow,
    Store,
    StoreNumber,
    User,
    Vehicle,
)

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def make_store(dms_id: str = "S1", did: str = "+15550300100", **kw: Any) -> Store:
    return Store(
        dms_id=dms_id,
        name=kw.pop("name", f"Store {dms_id}"),
        hours=kw.pop("hours", {"mon": [["07:00", "18:00"]]}),
        custom_statuses=kw.pop("custom_statuses", []),
        numbers=[StoreNumber(e164=did)],
        # The tests' +1 555 numbers are fictional: allowed like a real store's own range.
        outbound={"allow": [FICTIONAL], **(kw.pop("outbound", None) or {})},
        **kw,
    )


def make_user(store: Store, username: str, **kw: Any) -> User:
    user = User(
        username=username,
        name=kw.pop("name", username.title() + " Example"),
        role=kw.pop("role", "advisor"),
        groups=kw.pop("groups", ["service"]),
        active=kw.pop("active", True),
        **kw,
    )
    user.stores.append(store)
    return user


def make_customer(store: Store, first: str, *phones: str, **kw: Any) -> Customer:
    """`store` must be flushed already (phones carry its id)."""
    customer = Customer(store=store, first_name=first, last_name=kw.pop("last", "Tester"), **kw)
    for e164 in phones:
        customer.phones.append(PhoneNumber(store_id=store.id, e164=e164))
    return customer


def make_vehicle(customer: Customer, model: str = "Equinox", year: int = 2021) -> Vehicle:
    vehicle = Vehicle(store_id=customer.store.id, make="Chevrolet", model=model, year=year)
    customer.vehicles.append(vehicle)
    return vehicle


def make_ro(
    customer: Customer,
    number: str,
    statuses: list[str],
    opened_hours_ago: float = 5,
    **kw: Any,
) -> RepairOrder:
    """An RO that went through `statuses`, one per hour after opening."""
    opened = NOW - timedelta(hours=opened_hours_ago)
    ro = RepairOrder(
        store_id=customer.store.id,
        number=number,
        customer=customer,
        status=statuses[-1],
        opened_at=opened,
        **kw,
    )
    ro.events = [
        StatusEventRow(status=s, at=opened + timedelta(hours=i), source="api")
        for i, s in enumerate(statuses)
    ]
    return ro


@contextmanager
def listening(redis_url: str, store_id: int) -> Iterator[Callable[..., Event]]:
    """Subscribe to a store's channel *before* acting; yields `wait(type, **match)`.

    Other test runs may share this Redis and this store id, so events are matched by type and
    payload rather than taken first-come.
    """
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    pubsub.subscribe(store_channel(store_id, database_of(client)))
    pubsub.get_message(timeout=1.0)  # the subscribe confirmation

    def wait(event_type: str, timeout: float = 3.0, **match: Any) -> Event:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.2)
            if not message or message["type"] != "message":
                continue
            event = Event.decode(message["data"])
            if event.type == event_type and all(event.data.get(k) == v for k, v in match.items()):
                return event
        raise AssertionError(
            f"no {event_type} event matching {json.dumps(match)} within {timeout}s"
        )

    try:
        yield wait
    finally:
        pubsub.close()
        client.close()
