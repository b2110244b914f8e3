"""Who may work what, checked inside the use cases: advisors their own callbacks and
follow-ups, managers their stores', nobody another store's (which looks like a missing
object); each refusal changes nothing and each change announces itself once on Redis."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy.orm import Session, sessionmaker

from events.bus import STREAM, EventBus
from records import followups
from records.models import Call, CallbackTask, FollowUp, RepairOrder, User
from tests.api.conftest import NOW, World
from usecases import callbacks, calls, thread
from usecases import followups as work
from usecases.errors import Conflict, Invalid, NotFound

T = TypeVar("T")


def _events(bus: EventBus, act: Callable[[], T]) -> tuple[T, list[tuple[str, dict[str, Any]]]]:
    """What `act` returns, and the events it published (type, data), in order."""
    last = bus.redis.xrevrange(STREAM, count=1)
    start = f"({last[0][0].decode()}" if last else "-"
    result = act()
    events = [json.loads(f[b"event"]) for _, f in bus.redis.xrange(STREAM, min=start)]
    return result, [(e["type"], e["data"]) for e in events]


def _user(session: Session, world: World, name: str) -> User:
    user = session.get(User, world.users[name])
    assert user is not None
    return user


@pytest.fixture
def alexs(world: World, sessions: sessionmaker[Session]) -> dict[str, int]:
    """A callback and a promise of alex (advisor of store A), both due now."""
    with sessions.begin() as session:
        task = CallbackTask(
            store_id=world.stores["A"],
            phone="+15550200005",
            owner_id=world.users["alex"],
            reason="alex's",
            due_at=NOW,
        )
        session.add(task)
        ro = session.get(RepairOrder, world.ros["A"])
        assert ro is not None
        fu = followups.create_promise(
            session, ro=ro, text="the estimate", created_by_id=world.users["alex"], due_at=NOW
        )
        session.flush()
        return {"callback": task.id, "follow_up": fu.id}


def test_completing_a_callback_is_for_its_owner_or_a_manager(
    world: World, sessions: sessionmaker[Session], bus: EventBus, alexs: dict[str, int]
) -> None:
    task_id = alexs["callback"]
    with sessions() as session:
        for outsider in ("ann", "bob", "bea"):  # another advisor of A; B's advisor and manager
            with pytest.raises(NotFound, match="callback not found"):
                callbacks.complete_callback(session, _user(session, world, outsider), bus, task_id)
        task = session.get(CallbackTask, task_id)
        assert task is not None and task.done_at is None
        mary = _user(session, world, "mary")
        done, events = _events(
            bus, lambda: callbacks.complete_callback(session, mary, bus, task_id)
        )
        assert done.done_by_id == mary.id
        assert events == [("callback.done", {"callback_id": task_id, "by": mary.id})]
        alex = _user(session, world, "alex")
        again, events = _events(
            bus, lambda: callbacks.complete_callback(session, alex, bus, task_id)
        )
        assert again.done_by_id == mary.id and events == []  # idempotent, announced once


def test_creating_a_callback_checks_store_and_owner(
    world: World, sessions: sessionmaker[Session], bus: EventBus
) -> None:
    with sessions() as session:
        ann = _user(session, world, "ann")
        with pytest.raises(NotFound, match="customer not found"):
            callbacks.create_callback(
                session, ann, bus, phone="+15550200009", customer_id=world.customers["B"]
            )
        with pytest.raises(Invalid, match="active user of the store") as refused:
            callbacks.create_callback(
                session, ann, bus, phone="+15550200009", owner_id=world.users["bob"]
            )
        assert refused.value.field == ("body", "owner_id")
        task, events = _events(
            bus,
            lambda: callbacks.create_callback(
                session, ann, bus, phone="+15550200009", owner_id=world.users["alex"]
            ),
        )
        assert task.store_id == world.stores["A"] and task.owner_id == world.users["alex"]
        assert [t for t, _ in events] == ["callback.created"]


def test_a_follow_up_is_worked_by_its_owner_or_a_manager(
    world: World, sessions: sessionmaker[Session], bus: EventBus, alexs: dict[str, int]
) -> None:
    fu_id = alexs["follow_up"]
    with sessions() as session:
        for outsider in ("ann", "bob", "bea"):
            user = _user(session, world, outsider)
            with pytest.raises(NotFound, match="follow-up not found"):
                work.record_outcome(session, user, bus, follow_up_id=fu_id, outcome="booked")
            with pytest.raises(NotFound):
                work.find_follow_up(session, user, fu_id)
        fu = session.get(FollowUp, fu_id)
        assert fu is not None and fu.attempts == 0 and fu.done_at is None
        mary = _user(session, world, "mary")
        result, events = _events(
            bus,
            lambda: work.record_outcome(
                session, mary, bus, follow_up_id=fu_id, outcome="booked", note="  Tuesday  "
            ),
        )
        assert result.closed and result.entry.body == "Promise (the estimate): booked. Tuesday"
        assert [t for t, _ in events] == ["follow_up.changed", "thread.updated"]
        with pytest.raises(Conflict, match="was closed"):
            work.record_outcome(session, mary, bus, follow_up_id=fu_id, outcome="done")


def test_a_promise_needs_text_one_when_and_an_owner_of_the_store(
    world: World, sessions: sessionmaker[Session], bus: EventBus
) -> None:
    ro_a = world.ros["A"]
    with sessions() as session:
        ann, root = _user(session, world, "ann"), _user(session, world, "root")
        for actor, kw, error, message in (
            (ann, {"repair_order_id": world.ros["B"]}, NotFound, "repair order not found"),
            (ann, {"text": "  "}, Invalid, "say what you promised"),
            (ann, {"due_at": NOW}, Invalid, "give either due_at or trigger"),
            (ann, {"trigger": "status:Nope"}, Invalid, "unknown status"),
            (root, {}, Invalid, "the owner must be an active user of the store"),
        ):
            args: dict[str, Any] = {
                "repair_order_id": ro_a,
                "text": "call",
                "trigger": "part_arrived",
            }
            with pytest.raises(error, match=message):
                work.record_promise(session, actor, bus, **{**args, **kw})
        assert session.query(FollowUp).count() == 0
        fu, events = _events(
            bus,
            lambda: work.record_promise(
                session,
                ann,
                bus,
                repair_order_id=ro_a,
                text=" call ",
                due_at=NOW + timedelta(hours=1),
            ),
        )
        assert fu.owner_id == ann.id and fu.text == "call"
        assert [t for t, _ in events] == ["follow_up.changed"]
        with pytest.raises(NotFound, match="no such repair order"):
            work.repair_order_by_number(session, ann, "9B")  # store B's
        with pytest.raises(Invalid, match="several stores"):
            work.repair_order_by_number(session, root, "1001")  # in both stores


def test_notes_and_links_stay_in_the_customers_store(
    world: World, sessions: sessionmaker[Session], bus: EventBus
) -> None:
    with sessions() as session:
        ann = _user(session, world, "ann")
        with pytest.raises(NotFound, match="customer not found"):
            thread.add_note(session, ann, bus, customer_id=world.customers["B"], body="hi")
        with pytest.raises(Invalid, match="no such user in this store: @bob"):
            thread.add_note(session, ann, bus, customer_id=world.customers["A"], body="@bob hi")
        with pytest.raises(Invalid, match="write a note first"):
            thread.add_note(session, ann, bus, customer_id=world.customers["A"], body=" \x00 ")
        entry, events = _events(
            bus,
            lambda: thread.add_note(
                session, ann, bus, customer_id=world.customers["A"], body="ask @alex"
            ),
        )
        assert entry.body == "ask @alex"
        assert events == [
            (
                "thread.updated",
                {
                    "customer_id": world.customers["A"],
                    "entry_id": entry.id,
                    "kind": "note",
                    "mentions": [world.users["alex"]],
                },
            )
        ]
        call = Call(
            call_uuid="usecase-link",
            store_id=world.stores["A"],
            direction="inbound",
            from_number="anonymous",
            to_number="+15550300100",
            started_at=NOW,
            flow_path=[],
        )
        session.add(call)
        session.commit()
        bob = _user(session, world, "bob")
        with pytest.raises(NotFound, match="call not found"):
            calls.link_call(session, bob, bus, call_id=call.id, customer_id=world.customers["B"])
        with pytest.raises(NotFound, match="customer not found"):
            calls.link_call(session, ann, bus, call_id=call.id, customer_id=world.customers["B"])
        with pytest.raises(Invalid, match="not a phone number"):
            kw = {"call_id": call.id, "customer_id": world.customers["A"], "add_phone": True}
            calls.link_call(session, ann, bus, **kw)
        linked = calls.link_call(
            session, ann, bus, call_id=call.id, customer_id=world.customers["A"]
        )
        assert linked.customer_id == world.customers["A"]
