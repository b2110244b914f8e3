"""SqlRecords: every method of the flow engine's Records protocol, events through real Redis."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from events.bus import AsyncEventBus, EventBus
from ivr.domain import STANDARD_STATUSES
from ivr.flow.records import Records, RecordsUnavailable
from records.db import make_engine
from records.flow_records import SqlRecords
from records.models import CallbackTask, ThreadEntry
from tests.records.helpers import (
    listening,
    make_customer,
    make_ro,
    make_store,
    make_user,
)

WAITING, IN_SHOP, TECH, READY = STANDARD_STATUSES


@pytest.fixture
def ids(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions.begin() as s:
        store, other = make_store("S1", "+15550300100"), make_store("S2", "+15550300200")
        s.add_all([store, other])
        s.flush()
        users = [
            make_user(
                store,
                "alice",
                sip_contact="sip:alice@127.0.0.1:5070",
                groups=["service", "express"],
            ),
            make_user(store, "bob", phone="+15550300202"),
            make_user(store, "gone", active=False),
            make_user(store, "maria", role="manager", groups=["express"]),
            make_user(other, "otto"),
        ]
        s.add_all(users)
        ann = make_customer(store, "Ann", "+15550301001", advisor=users[0])
        zed = make_customer(other, "Zed", "+15550309001")
        s.add_all([ann, zed])
        s.flush()
        s.add(make_ro(ann, "4512", [WAITING, IN_SHOP]))
        return {
            "store": store.id,
            "other": other.id,
            "ann": ann.id,
            "zed": zed.id,
            "alice": users[0].id,
        }


@pytest.fixture
def bus(redis_url: str) -> Iterator[EventBus]:
    bus = EventBus(redis_url)
    yield bus
    bus.close()


def test_sql_records_satisfies_the_protocol(engine: Engine) -> None:
    records: Records = SqlRecords(engine)  # a type checker holds this line to the protocol
    for name in (
        "store_for_did",
        "store",
        "customer_by_phone",
        "repair_order",
        "user",
        "group",
        "add_thread_entry",
        "create_callback",
        "publish",
    ):
        assert callable(getattr(records, name))


async def test_store_lookups(engine: Engine, ids: dict[str, int]) -> None:
    records = SqlRecords(engine)
    by_did = await records.store_for_did("+15550300100")
    assert by_did is not None and by_did.id == ids["store"] and by_did.name == "Store S1"
    assert (await records.store_for_did("555-030-0200")).id == ids["other"]  # type: ignore[union-attr]
    assert await records.store_for_did("+15559999999") is None
    store = await records.store(ids["store"])
    assert store is not None and store.dids == ("+15550300100",)
    assert await records.store(424242) is None


async def test_customer_by_phone(engine: Engine, ids: dict[str, int]) -> None:
    records = SqlRecords(engine)
    ann = await records.customer_by_phone(ids["store"], "+15550301001")
    assert ann is not None and ann.id == ids["ann"]
    assert [ro.status for ro in ann.open_repair_orders] == [IN_SHOP]
    assert ann.advisor is not None and ann.advisor.contact == "sip:alice@127.0.0.1:5070"
    assert await records.customer_by_phone(ids["store"], "+15550309001") is None  # other store
    assert await records.customer_by_phone(ids["store"], "anonymous") is None


async def test_repair_order(engine: Engine, ids: dict[str, int]) -> None:
    records = SqlRecords(engine)
    ro = await records.repair_order(ids["store"], "004512")
    assert ro is not None and ro.number == "4512" and ro.status == IN_SHOP
    assert [e.status for e in ro.history] == [WAITING, IN_SHOP]
    assert await records.repair_order(ids["other"], "4512") is None
    assert await records.repair_order(ids["store"], "9999") is None


async def test_user(engine: Engine, ids: dict[str, int]) -> None:
    records = SqlRecords(engine)
    alice = await records.user(ids["store"], "Alice")
    assert alice is not None and alice.id == ids["alice"]
    assert alice.first_name == "Alice" and alice.groups == ("service", "express")
    bob = await records.user(ids["store"], "bob")
    assert bob is not None and bob.contact == "+15550300202"
    assert await records.user(ids["store"], "gone") is None  # inactive
    assert await records.user(ids["store"], "otto") is None  # another store's
    assert await records.user(ids["store"], "nobody") is None


async def test_group(engine: Engine, ids: dict[str, int]) -> None:
    records = SqlRecords(engine)
    service = await records.group(ids["store"], "service")
    # Every active advisor of the store: not the manager, not the inactive one, not otto.
    assert [a.username for a in service] == ["alice", "bob"]
    express = await records.group(ids["store"], "express")
    assert [a.username for a in express] == ["alice", "maria"]
    assert await records.group(ids["store"], "parts") == []
    assert [a.username for a in await records.group(ids["other"], "service")] == ["otto"]


async def test_add_thread_entry_writes_then_announces(
    engine: Engine,
    sessions: sessionmaker[Session],
    ids: dict[str, int],
    bus: EventBus,
    redis_url: str,
) -> None:
    records = SqlRecords(engine, bus)
    with listening(redis_url, ids["store"]) as wait:
        await records.add_thread_entry(
            ids["store"], ids["ann"], "voicemail", "Please call me back", {"seconds": 12}
        )
        with sessions() as s:
            entry = s.scalars(
                select(ThreadEntry).where(ThreadEntry.customer_id == ids["ann"])
            ).one()
        event = wait("thread.updated", entry_id=entry.id)
    assert event.store_id == ids["store"]
    assert event.data == {"customer_id": ids["ann"], "entry_id": entry.id, "kind": "voicemail"}
    assert (entry.store_id, entry.kind, entry.body) == (
        ids["store"],
        "voicemail",
        "Please call me back",
    )
    assert entry.data == {"seconds": 12}
    assert entry.at.tzinfo is not None


async def test_add_thread_entry_for_an_unknown_caller(
    engine: Engine, sessions: sessionmaker[Session], ids: dict[str, int]
) -> None:
    await SqlRecords(engine).add_thread_entry(ids["store"], None, "call", "Unknown caller")
    with sessions() as s:
        entry = s.scalars(select(ThreadEntry)).one()
    assert entry.customer_id is None and entry.data == {}


async def test_add_thread_entry_refuses_bad_input(
    engine: Engine, sessions: sessionmaker[Session], ids: dict[str, int]
) -> None:
    records = SqlRecords(engine)
    with pytest.raises(ValueError):
        await records.add_thread_entry(ids["store"], ids["ann"], "gossip", "?")
    with pytest.raises(ValueError, match="does not belong"):
        await records.add_thread_entry(ids["store"], ids["zed"], "note", "wrong store")
    with sessions() as s:
        assert s.scalars(select(ThreadEntry)).all() == []


async def test_create_callback_writes_then_announces(
    engine: Engine,
    sessions: sessionmaker[Session],
    ids: dict[str, int],
    bus: EventBus,
    redis_url: str,
) -> None:
    records = SqlRecords(engine, bus)
    due = datetime.now(UTC) + timedelta(minutes=30)
    with listening(redis_url, ids["store"]) as wait:
        await records.create_callback(
            ids["store"], ids["ann"], "(555) 030-1001", ids["alice"], due, "missed call"
        )
        with sessions() as s:
            task = s.scalars(select(CallbackTask)).one()
        event = wait("callback.created", callback_id=task.id)
    assert (task.store_id, task.customer_id, task.owner_id) == (
        ids["store"],
        ids["ann"],
        ids["alice"],
    )
    assert task.phone == "+15550301001"  # normalized
    assert task.due_at == due and task.reason == "missed call" and task.done_at is None
    assert event.data["phone"] == "+15550301001"
    assert event.data["owner_id"] == ids["alice"]
    assert datetime.fromisoformat(event.data["due_at"]) == due


async def test_create_callback_keeps_an_unreadable_caller_id(
    engine: Engine, sessions: sessionmaker[Session], ids: dict[str, int]
) -> None:
    records = SqlRecords(engine)
    await records.create_callback(
        ids["store"], None, "anonymous", None, datetime.now(UTC), "missed call"
    )
    with sessions() as s:
        assert s.scalars(select(CallbackTask.phone)).one() == "anonymous"
    with pytest.raises(ValueError, match="aware"):
        await records.create_callback(
            ids["store"], None, "+15550301001", None, datetime(2026, 1, 1), "naive"
        )


async def test_publish_passes_through(
    ids: dict[str, int], engine: Engine, bus: EventBus, redis_url: str
) -> None:
    records = SqlRecords(engine, bus)
    with listening(redis_url, ids["store"]) as wait:
        await records.publish(ids["store"], "ro.pickup_confirmed", {"ro": "4512", "probe": 1})
        event = wait("ro.pickup_confirmed", ro="4512", probe=1)
    assert event.store_id == ids["store"]


async def test_publish_with_an_async_bus(
    ids: dict[str, int], engine: Engine, redis_url: str
) -> None:
    bus = AsyncEventBus(redis_url)
    try:
        records = SqlRecords(engine, bus)
        with listening(redis_url, ids["store"]) as wait:
            await records.add_thread_entry(ids["store"], ids["ann"], "note", "async")
            event = wait("thread.updated", customer_id=ids["ann"], kind="note")
        assert isinstance(event.data["entry_id"], int)
    finally:
        await bus.close()


async def test_publish_without_a_bus_is_a_no_op(engine: Engine, ids: dict[str, int]) -> None:
    await SqlRecords(engine).publish(ids["store"], "anything", {"x": 1})


async def test_a_database_that_does_not_answer_is_given_up_on_in_time() -> None:
    """The SIP worker's lookups end at its timeout (`RecordsUnavailable`), whether the database
    host swallows the connection attempt or refuses it, so no caller is left ringing."""
    silent = socket.create_server(("127.0.0.1", 0))  # the kernel accepts; nobody ever answers
    port = silent.getsockname()[1]
    engine = make_engine(f"postgresql://postgres@127.0.0.1:{port}/test", connect_timeout=2)
    records = SqlRecords(engine, timeout=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(RecordsUnavailable, match=r"no answer from the database in 0\.3 s"):
            await records.store_for_did("+15550100100")
        assert time.monotonic() - started < 1.0
        silent.close()  # now refused
        with pytest.raises(RecordsUnavailable):
            await records.customer_by_phone(1, "+15550200003")
    finally:
        silent.close()
        records.close()
        engine.dispose()
