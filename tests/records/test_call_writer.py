"""The call writer against real Redis streams and both databases: events in, rows out, once.

Every test works on its own stream, group and dead-letter stream, so runs sharing a Redis do
not see each other's entries. Notifications the writer sends go through the real EventBus.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from driveline.cli import main
from events.bus import Event, EventBus
from events.calls import (
    CallAnswered,
    CallbackInfo,
    CallEnded,
    CallEvent,
    CallRinging,
    CallStep,
    CallTransferred,
    Disposition,
    LegInfo,
    RecordingInfo,
    TransferTarget,
    publish_call_event,
)
from records.call_writer import CallWriterConsumer, DatabaseUnavailable, run_call_writer
from records.models import Call, CallbackTask, CallLeg, Recording, ThreadEntry, User
from records.screen_pop import screen_pop_context
from tests.records.helpers import listening, make_customer, make_store, make_user
from tests.redis_server import RedisServer

DID = "+15550300100"
KNOWN = "+15550301001"
STRANGER = "+15550309999"
SHA = "b" * 64
TransferResult = Literal["answered", "no_answer", "busy", "failed"]


@pytest.fixture
def shop(sessions: sessionmaker[Session]) -> dict[str, int]:
    """A store with two advisors and a manager; Ann's assigned advisor is bob (not the first)."""
    with sessions.begin() as s:
        store = make_store("S1", DID)
        s.add(store)
        s.flush()
        mary = make_user(store, "mary", role="manager", groups=[])
        alice, bob = make_user(store, "alice"), make_user(store, "bob", sip_contact="sip:bob@pbx")
        s.add_all([mary, alice, bob])
        ann = make_customer(store, "Ann", KNOWN, advisor=bob)
        s.add(ann)
        s.flush()
        return {"store": store.id, "ann": ann.id, "alice": alice.id, "bob": bob.id, "mary": mary.id}


@pytest.fixture
def streams(redis_url: str) -> Iterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:10]
    names = {
        "stream": f"test:events:{tag}",
        "group": f"test:writer:{tag}",
        "dead_letter_stream": f"test:dead:{tag}",
    }
    yield names
    client = redis.Redis.from_url(redis_url)
    client.delete(names["stream"], names["dead_letter_stream"])
    client.close()


@pytest.fixture
def consumer(
    engine: Engine, redis_url: str, streams: dict[str, str]
) -> Iterator[Callable[..., CallWriterConsumer]]:
    made: list[CallWriterConsumer] = []

    def make(name: str = "w1", **kw: Any) -> CallWriterConsumer:
        c = CallWriterConsumer(
            engine,
            redis_url,
            consumer_name=name,
            stream=streams["stream"],
            group=streams["group"],
            dead_letter_stream=streams["dead_letter_stream"],
            **kw,
        )
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def xadd(redis_url: str, streams: dict[str, str]) -> Iterator[Callable[[CallEvent], bytes]]:
    """Put a call event on the test stream exactly as EventBus would."""
    client = redis.Redis.from_url(redis_url)

    def send(payload: CallEvent) -> bytes:
        event = Event(
            type=payload.event_type, store_id=payload.store_id, data=payload.model_dump(mode="json")
        )
        return client.xadd(streams["stream"], {"event": event.encode()})  # type: ignore[return-value]

    yield send
    client.close()


def drain(c: CallWriterConsumer) -> int:
    """Poll until nothing is left; bounded."""
    total, idle = 0, 0
    for _ in range(50):
        handled = c.poll_once(block_ms=20)
        total += handled
        idle = idle + 1 if handled == 0 else 0
        if idle >= 2:
            return total
    raise AssertionError("the consumer never ran dry")


def pending(redis_url: str, streams: dict[str, str]) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.xpending(streams["stream"], streams["group"])["pending"])
    finally:
        client.close()


class Script:
    """Builds one call's events with consistent times."""

    def __init__(self, store_id: int, caller: str | None, **ringing: Any) -> None:
        self.uuid = f"call-{uuid.uuid4().hex}"
        self.store_id, self.caller = store_id, caller
        self.t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
        self.ringing_extra = ringing

    def at(self, seconds: float) -> datetime:
        return self.t0 + timedelta(seconds=seconds)

    def base(self, seconds: float) -> dict[str, Any]:
        return {"call_uuid": self.uuid, "store_id": self.store_id, "at": self.at(seconds)}

    def ringing(self) -> CallRinging:
        extra = self.ringing_extra or {"unknown_caller": True}
        return CallRinging(
            **self.base(0),
            did=DID,
            caller=self.caller,
            caller_raw=self.caller or "anonymous",
            **extra,
        )

    def answered(self) -> CallAnswered:
        return CallAnswered(**self.base(1))

    def step(self, name: str, at: float, **kw: Any) -> CallStep:
        return CallStep(**self.base(at), flow="main", step=name, **kw)

    def transferred(
        self, user_id: int, contact: str, result: TransferResult, at: float
    ) -> CallTransferred:
        return CallTransferred(
            **self.base(at),
            target=TransferTarget(user_id=user_id, name="x", contact=contact),
            result=result,
            started_at=self.at(at - 20),
        )

    def ended(self, disposition: Disposition, at: float = 120, **kw: Any) -> CallEnded:
        return CallEnded(
            **self.base(at),
            disposition=disposition,
            did=DID,
            caller=self.caller,
            caller_raw=self.caller or "anonymous",
            started_at=self.at(0),
            **kw,
        )


def counts(sessions: sessionmaker[Session], call_uuid: str) -> dict[str, int]:
    """How many rows of each kind one call has."""
    with sessions() as s:
        call_id = s.scalar(select(Call.id).where(Call.call_uuid == call_uuid))

        def n(column: Any) -> int:
            return s.scalar(select(func.count()).where(column == call_id)) or 0

        return {
            "calls": n(Call.id) if call_id is not None else 0,
            "legs": n(CallLeg.call_id),
            "recordings": n(Recording.call_id),
            "entries": n(ThreadEntry.call_id),
            "callbacks": n(CallbackTask.call_id),
        }


def transferred_call(
    shop: dict[str, int], sessions: sessionmaker[Session]
) -> tuple[Script, list[CallEvent]]:
    with sessions() as s:
        ctx = screen_pop_context(s, shop["store"], KNOWN)
    call = Script(shop["store"], KNOWN, **ctx)
    ended = call.ended(
        Disposition.transferred,
        flow_path=["main.greet", "main.menu", "main.advisor"],
        legs=[
            LegInfo(
                role="caller",
                party=KNOWN,
                started_at=call.at(0),
                answered_at=call.at(1),
                ended_at=call.at(120),
            ),
            LegInfo(
                role="advisor",
                party="sip:alice@pbx",
                user_id=shop["alice"],
                started_at=call.at(40),
                answered_at=call.at(60),
                ended_at=call.at(120),
            ),
        ],
        recordings=[
            RecordingInfo(
                leg_role="caller", path=f"{call.uuid}/caller.wav", sha256=SHA, duration_s=119.0
            ),
            RecordingInfo(
                leg_role="advisor", path=f"{call.uuid}/advisor.wav", sha256=SHA, duration_s=60.0
            ),
        ],
    )
    events: list[CallEvent] = [
        call.ringing(),
        call.answered(),
        call.step("menu", 5, kind="gather", digits="0"),
        call.transferred(shop["bob"], "sip:bob@pbx", "no_answer", 40),
        call.transferred(shop["alice"], "sip:alice@pbx", "answered", 60),
        ended,
    ]
    return call, events


def test_a_scripted_call_becomes_its_rows(
    shop: dict[str, int],
    sessions: sessionmaker[Session],
    consumer: Callable[..., CallWriterConsumer],
    xadd: Callable[[CallEvent], bytes],
    redis_url: str,
    streams: dict[str, str],
) -> None:
    call, events = transferred_call(shop, sessions)
    with listening(redis_url, shop["store"]) as wait:
        for e in events:
            xadd(e)
        assert drain(consumer()) == len(events)
        update = wait("thread.updated", call_uuid=call.uuid)
    assert pending(redis_url, streams) == 0
    with sessions() as s:
        row = s.scalars(select(Call).where(Call.call_uuid == call.uuid)).one()
        assert (row.store_id, row.customer_id, row.direction) == (
            shop["store"],
            shop["ann"],
            "inbound",
        )
        assert (row.from_number, row.to_number, row.disposition) == (KNOWN, DID, "transferred")
        assert (row.started_at, row.answered_at, row.ended_at) == (
            call.at(0),
            call.at(1),
            call.at(120),
        )
        assert row.flow_path == ["main.greet", "main.menu", "main.advisor"]
        assert row.advisor_id == shop["alice"]
        legs = [(leg.role, leg.party, leg.user_id, leg.answered_at is not None) for leg in row.legs]
        assert legs == [
            ("caller", KNOWN, None, True),
            ("advisor", "sip:bob@pbx", shop["bob"], False),
            ("advisor", "sip:alice@pbx", shop["alice"], True),
        ]
        recordings = s.scalars(
            select(Recording).where(Recording.call_id == row.id).order_by(Recording.id)
        ).all()
        leg_ids = {leg.party: leg.id for leg in row.legs}
        assert [(r.path, r.leg_id, r.kind) for r in recordings] == [
            (f"{call.uuid}/caller.wav", leg_ids[KNOWN], "leg"),
            (f"{call.uuid}/advisor.wav", leg_ids["sip:alice@pbx"], "leg"),
        ]
        [entry] = s.scalars(select(ThreadEntry).where(ThreadEntry.call_id == row.id)).all()
        assert (entry.customer_id, entry.kind, entry.dedupe_key) == (
            shop["ann"],
            "call",
            f"call:{call.uuid}",
        )
        assert entry.data["disposition"] == "transferred" and entry.data["duration"] == 120.0
        assert [r["path"] for r in entry.data["recordings"]] == [r.path for r in recordings]
        assert "Alice Example" in entry.body
        assert (
            s.scalar(
                select(func.count()).select_from(CallbackTask).where(CallbackTask.call_id == row.id)
            )
            == 0
        )
    assert update.data["entry_id"] == entry.id and update.data["customer_id"] == shop["ann"]


def test_duplicate_deliveries_write_nothing_twice(
    shop: dict[str, int],
    sessions: sessionmaker[Session],
    consumer: Callable[..., CallWriterConsumer],
    xadd: Callable[[CallEvent], bytes],
) -> None:
    call, events = transferred_call(shop, sessions)
    missed = Script(shop["store"], STRANGER)
    more = [missed.ringing(), missed.ended(Disposition.missed, at=30)]
    for e in events + more:
        xadd(e)
        xadd(e)  # a producer retry, or a replay
    writer = consumer()
    drain(writer)
    for e in events + more:  # and once more, later, out of order
        xadd(e)
    drain(writer)
    assert counts(sessions, call.uuid) == {
        "calls": 1,
        "legs": 3,
        "recordings": 2,
        "entries": 1,
        "callbacks": 0,
    }
    assert counts(sessions, missed.uuid) == {
        "calls": 1,
        "legs": 1,
        "recordings": 0,
        "entries": 1,
        "callbacks": 1,
    }


def test_a_crash_before_the_commit_loses_nothing(
    shop: dict[str, int],
    sessions: sessionmaker[Session],
    consumer: Callable[..., CallWriterConsumer],
    xadd: Callable[[CallEvent], bytes],
    redis_url: str,
    streams: dict[str, str],
) -> None:
    """w1 reads the entries and dies before writing; the restarted w1 re-reads its pending."""
    call, events = transferred_call(shop, sessions)
    consumer("w1").poll_once(block_ms=10)  # creates the group; nothing to read yet
    for e in events:
        xadd(e)
    client = redis.Redis.from_url(redis_url)
    read: Any = client.xreadgroup(streams["group"], "w1", {streams["stream"]: ">"}, count=100)
    client.close()
    assert len(read[0][1]) == len(events) and pending(redis_url, streams) == len(events)
    assert counts(sessions, call.uuid)["calls"] == 0  # "died" before writing anything

    restarted = consumer("w1")
    drain(restarted)
    assert pending(redis_url, streams) == 0
    assert counts(sessions, call.uuid) == {
        "calls": 1,
        "legs": 3,
        "recordings": 2,
        "entries": 1,
        "callbacks": 0,
    }


class Killed(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the writer catches it."""


def test_a_crash_after_the_commit_is_claimed_by_another_consumer_without_duplicates(
    shop: dict[str, int],
    sessions: sessionmaker[Session],
    consumer: Callable[..., CallWriterConsumer],
    xadd: Callable[[CallEvent], bytes],
    redis_url: str,
    streams: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    call, events = transferred_call(shop, sessions)
    for e in events:
        xadd(e)
    doomed = consumer("w1")
    acks: list[bytes] = []

    def ack_then_die(entry_id: bytes) -> None:
        if len(acks) == 3:
            raise Killed()  # the 4th entry is committed, never acked
        acks.append(entry_id)
        doomed.redis.xack(streams["stream"], streams["group"], entry_id)

    monkeypatch.setattr(doomed, "ack", ack_then_die)
    with pytest.raises(Killed):
        doomed.poll_once(block_ms=10)
    assert pending(redis_url, streams) == len(events) - 3  # the committed one and the unread rest
    assert counts(sessions, call.uuid)["legs"] == 2  # caller, bob's leg: committed before dying

    heir = consumer("w2", claim_idle_ms=0)  # takes over w1's entries at once
    drain(heir)
    assert pending(redis_url, streams) == 0
    assert counts(sessions, call.uuid) == {
        "calls": 1,
        "legs": 3,
        "recordings": 2,
        "entries": 1,
        "callbacks": 0,
    }


@pytest.mark.parametrize(
    ("who", "disposition", "owner"),
    [
        ("stranger", Disposition.missed, "alice"),  # first active advisor of the store
        ("ann", Disposition.abandoned, "bob"),  # Ann's assigned advisor
        ("ann_inactive_advisor", Disposition.missed, "alice"),
        ("withheld", Disposition.missed, "alice"),
    ],
)
def test_missed_calls_always_get_a_callback_with_an_owner(
    shop: dict[str, int],
    sessions: sessionmaker[Session],
    consumer: Callable[..., CallWriterConsumer],
    xadd: Callable[[CallEvent], bytes],
    redis_url: str,
    who: str,
    disposition: Disposition,
    owner: str,
) -> None:
    if who == "ann_inactive_advisor":
        with sessions.begin() as s:
            s.get(User, shop["bob"]).active = False  # type: ignore[union-attr]
    caller = {"stranger": STRANGER, "withheld": None}.get(who, KNOWN)
    with sessions() as s:
        ctx = screen_pop_context(s, shop["store"], caller)
    call = Script(shop["store"], caller, **ctx)
    with listening(redis_url, shop["store"]) as wait:
        xadd(call.ringing())
        xadd(call.ended(disposition, at=25))
        drain(consumer())
        made = wait("callback.created", call_uuid=call.uuid)
    with sessions() as s:
        row = s.scalars(select(Call).where(Call.call_uuid == call.uuid)).one()
        [task] = s.scalars(select(CallbackTask).where(CallbackTask.call_id == row.id)).all()
        assert task.owner_id == shop[owner]
        assert task.phone == (caller or "anonymous")
        assert task.due_at > call.at(25)
        expected_customer = shop["ann"] if caller == KNOWN else None
        assert task.customer_id == expected_customer
        [entry] = s.scalars(select(ThreadEntry).where(ThreadEntry.call_id == row.id)).all()
        assert entry.customer_id == expected_customer  # None: on the unmatched list
    assert made.data["callback_id"] == task.id and made.data["owner_id"] == shop[owner]


@pytest.mark.parametrize("lookup_failed", [True, False])
def test_a_caller_the_worker_could_not_look_up_is_matched_by_caller_id(
    shop: dict[str, int],
    sessions: sessionmaker[Session],
    consumer: Callable[..., CallWriterConsumer],
    xadd: Callable[[CallEvent], bytes],
    lookup_failed: bool,
) -> None:
    """The database was down during the call (the records_down flow): once it is written the
    call, its message and its callback go to the customer and their advisor. A caller the
    worker did look up and found nobody stays on the unmatched list."""
    call = Script(shop["store"], KNOWN, unknown_caller=True, lookup_failed=lookup_failed)
    message = RecordingInfo(
        leg_role="caller", path=f"{call.uuid}/vm.wav", sha256=SHA, duration_s=9.0, kind="voicemail"
    )
    xadd(call.ringing())
    xadd(call.ended(Disposition.voicemail, recordings=[message], lookup_failed=lookup_failed))
    drain(consumer())
    with sessions() as s:
        row = s.scalars(select(Call).where(Call.call_uuid == call.uuid)).one()
        [task] = s.scalars(select(CallbackTask).where(CallbackTask.call_id == row.id)).all()
        [entry] = s.scalars(select(ThreadEntry).where(ThreadEntry.call_id == row.id)).all()
    if lookup_failed:
        assert row.customer_id == entry.customer_id == task.customer_id == shop["ann"]
        assert task.owner_id == shop["bob"]  # Ann's advisor, not the store's first
    else:
        assert row.customer_id is None and entry.customer_id is None
        assert task.owner_id == shop["alice"]


def test_the_flows_own_voicemail_callback_is_adopted_not_duplicated(
    shop: dict[str, int],
    sessions: sessionmaker[Session],
    consumer: Callable[..., CallWriterConsumer],
    xadd: Callable[[CallEvent], bytes],
) -> None:
    """What the voicemail step writes through SqlRecords (no call id), then call.ended."""
    call = Script(shop["store"], STRANGER)
    with sessions.begin() as s:
        task = CallbackTask(
            store_id=shop["store"],
            phone=STRANGER,
            owner_id=None,
            reason="Voicemail from +15550309999",
            due_at=call.at(3600),
        )
        voicemail = ThreadEntry(
            store_id=shop["store"],
            customer_id=None,
            kind="voicemail",
            at=call.at(60),
            body="Voicemail (20s)",
            data={"recording": "v.wav", "caller": STRANGER},
        )
        other = CallbackTask(
            store_id=shop["store"],
            phone="+15550308888",
            owner_id=shop["bob"],
            reason="someone else",
            due_at=call.at(3600),
        )
        s.add_all([task, voicemail, other])
    xadd(call.ringing())
    xadd(
        call.ended(
            Disposition.voicemail,
            at=90,
            recordings=[
                RecordingInfo(
                    leg_role="caller", path="v.wav", sha256=SHA, duration_s=20, kind="voicemail"
                )
            ],
        )
    )
    drain(consumer())
    with sessions() as s:
        row = s.scalars(select(Call).where(Call.call_uuid == call.uuid)).one()
        tasks = s.scalars(select(CallbackTask).where(CallbackTask.call_id == row.id)).all()
        assert [t.id for t in tasks] == [task.id]
        assert tasks[0].owner_id == shop["alice"]  # a missed caller always has an owner
        assert s.get(CallbackTask, other.id).call_id is None  # type: ignore[union-attr]
        kinds = sorted(
            e.kind for e in s.scalars(select(ThreadEntry).where(ThreadEntry.call_id == row.id))
        )
        assert kinds == ["call", "voicemail"]
        assert s.scalar(select(Recording.kind).where(Recording.call_id == row.id)) == "voicemail"


def test_a_call_whose_ringing_was_lost_is_still_recorded(
    shop: dict[str, int],
    sessions: sessionmaker[Session],
    consumer: Callable[..., CallWriterConsumer],
    xadd: Callable[[CallEvent], bytes],
) -> None:
    only_end = Script(shop["store"], KNOWN)
    xadd(
        only_end.ended(
            Disposition.handled_by_ivr,
            customer_id=shop["ann"],
            answered_at=only_end.at(1),
            flow_path=["main.greet"],
        )
    )
    late = Script(shop["store"], STRANGER)
    xadd(late.answered())  # ringing after answered: the later one only fills in
    xadd(late.step("greet", 2))
    xadd(late.ringing())
    xadd(late.ended(Disposition.handled_by_ivr, at=30, callback=CallbackInfo()))
    drain(consumer())
    with sessions() as s:
        a = s.scalars(select(Call).where(Call.call_uuid == only_end.uuid)).one()
        assert (a.from_number, a.to_number, a.customer_id) == (KNOWN, DID, shop["ann"])
        assert (a.started_at, a.answered_at, a.disposition) == (
            only_end.at(0),
            only_end.at(1),
            "handled_by_ivr",
        )
        b = s.scalars(select(Call).where(Call.call_uuid == late.uuid)).one()
        assert (b.from_number, b.to_number, b.started_at) == (STRANGER, DID, late.at(0))
        assert b.answered_at == late.at(1) and [leg.party for leg in b.legs] == [STRANGER]
    assert counts(sessions, late.uuid)["callbacks"] == 0  # handled: nobody owes a call back


def test_bad_events_are_set_aside_and_do_not_block_later_calls(
    shop: dict[str, int],
    sessions: sessionmaker[Session],
    consumer: Callable[..., CallWriterConsumer],
    xadd: Callable[[CallEvent], bytes],
    redis_url: str,
    streams: dict[str, str],
) -> None:
    client = redis.Redis.from_url(redis_url)
    client.xadd(streams["stream"], {"event": b"not json"})
    client.xadd(
        streams["stream"],
        {
            "event": Event(
                type="call.ended", store_id=shop["store"], data={"call_uuid": "x"}
            ).encode()
        },
    )
    ghost = Script(999_999, STRANGER)  # a store that does not exist
    xadd(ghost.ringing())
    good = Script(shop["store"], STRANGER)
    xadd(good.ringing())
    client.xadd(
        streams["stream"], {"event": Event(type="ro.status_changed", store_id=1, data={}).encode()}
    )
    drain(consumer())
    assert counts(sessions, good.uuid)["calls"] == 1
    assert counts(sessions, ghost.uuid)["calls"] == 0
    errors = [f[b"error"].decode() for _, f in client.xrange(streams["dead_letter_stream"])]
    assert [e.split(":")[0] for e in errors] == ["undecodable", "ValidationError", "IntegrityError"]
    assert all("\n" not in e for e in errors)
    assert pending(redis_url, streams) == 0
    client.close()


def test_run_call_writer_writes_until_stopped(
    engine: Engine,
    redis_url: str,
    shop: dict[str, int],
    sessions: sessionmaker[Session],
    streams: dict[str, str],
    xadd: Callable[[CallEvent], bytes],
) -> None:
    stop = threading.Event()
    thread = threading.Thread(
        target=run_call_writer,
        args=(engine, redis_url),
        kwargs={
            "consumer_name": "loop",
            "stop_event": stop,
            "stream": streams["stream"],
            "group": streams["group"],
            "block_ms": 100,
            "dead_letter_stream": streams["dead_letter_stream"],
        },
        daemon=True,
    )
    thread.start()
    try:
        call = Script(shop["store"], STRANGER)
        xadd(call.ringing())
        for _ in range(100):
            if counts(sessions, call.uuid)["calls"]:
                break
            threading.Event().wait(0.05)
        assert counts(sessions, call.uuid)["calls"] == 1
    finally:
        stop.set()
        thread.join(timeout=3)
    assert not thread.is_alive()


def test_run_call_writer_rides_out_a_redis_restart(
    engine: Engine,
    shop: dict[str, int],
    sessions: sessionmaker[Session],
    private_redis: RedisServer,
) -> None:
    """Redis restarted without its data (stream and group gone): the loop creates the group
    again and writes what comes next, within seconds, without being restarted."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run_call_writer,
        args=(engine, private_redis.url),
        kwargs={"consumer_name": "loop", "stop_event": stop, "block_ms": 100},
        daemon=True,
    )
    bus = EventBus(private_redis.url)

    def written(call: Script) -> float:
        started = time.monotonic()
        while not counts(sessions, call.uuid)["calls"]:
            assert time.monotonic() - started < 5, "the writer did not write the call"
            time.sleep(0.05)
        return time.monotonic() - started

    thread.start()
    try:
        before = Script(shop["store"], STRANGER)
        publish_call_event(bus, before.ringing())
        written(before)
        private_redis.stop()
        time.sleep(1.0)  # the writer fails a poll or two meanwhile
        private_redis.start()
        after = Script(shop["store"], STRANGER)
        publish_call_event(bus, after.ringing())
        assert written(after) < 2.5
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(timeout=3)
        bus.close()
    assert not thread.is_alive()


def test_a_database_outage_leaves_entries_pending_in_order(
    shop: dict[str, int],
    sessions: sessionmaker[Session],
    consumer: Callable[..., CallWriterConsumer],
    xadd: Callable[[CallEvent], bytes],
    redis_url: str,
    streams: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    call, events = transferred_call(shop, sessions)
    for e in events:
        xadd(e)
    writer = consumer()
    real_apply = writer.writer.apply
    calls_seen: list[str] = []

    def flaky(event: Event, *, redelivered: bool = False) -> Any:
        calls_seen.append(event.type)
        if len(calls_seen) == 2:  # the database goes away while writing call.answered
            raise OperationalError("UPDATE calls", {}, Exception("server closed the connection"))
        return real_apply(event, redelivered=redelivered)

    monkeypatch.setattr(writer.writer, "apply", flaky)
    with pytest.raises(DatabaseUnavailable):
        writer.poll_once(block_ms=10)
    assert pending(redis_url, streams) == len(events) - 1  # only call.ringing was acked
    drain(writer)  # the database is back: the same consumer carries on where it stopped
    assert calls_seen[:3] == ["call.ringing", "call.answered", "call.answered"]
    assert pending(redis_url, streams) == 0
    assert counts(sessions, call.uuid) == {
        "calls": 1,
        "legs": 3,
        "recordings": 2,
        "entries": 1,
        "callbacks": 0,
    }


def test_the_cli_has_the_command() -> None:
    result = CliRunner().invoke(main, ["call-writer", "--help"])
    assert result.exit_code == 0 and "--consumer" in result.output
