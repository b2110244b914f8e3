"""A small two-store world built through the ORM, and an API client per user.

Store A ("North") and store B ("South") deliberately share a customer phone number and an RO
number, so a missing scope filter shows up as a wrong answer, not just as an extra row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from json import dumps
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.auth import issue_token
from api.web.login_guard import PREFIX as LOGIN_KEYS
from api.webhook_auth import signed_headers
from events.bus import EventBus
from ivr.config import Settings
from ivr.phone import FICTIONAL
from records import followups, integrations
from records.models import (
    Call,
    CallbackTask,
    Customer,
    Mention,
    PhoneNumber,
    RepairOrder,
    StatusEventRow,
    Store,
    ThreadEntry,
    User,
    Vehicle,
)

NOW = datetime.now(UTC).replace(microsecond=0)
SHARED_PHONE = "+15550200001"
SHARED_RO = "1001"


@dataclass
class World:
    """Ids of what the tests ask for, per store letter, and a token per username."""

    stores: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    customers: dict[str, int] = field(default_factory=dict)
    ros: dict[str, int] = field(default_factory=dict)
    callbacks: dict[str, int] = field(default_factory=dict)
    entries: dict[str, int] = field(default_factory=dict)
    mentions: dict[str, int] = field(default_factory=dict)
    integrations: dict[str, tuple[str, str]] = field(default_factory=dict)  # (key id, secret)


def _store(session: Session, world: World, letter: str, **kw: object) -> Store:
    kw.setdefault("outbound", {"allow": [FICTIONAL]})  # the tests' +1 555 numbers are fictional
    store = Store(dms_id=f"S-{letter}", name=f"Store {letter}", **kw)
    session.add(store)
    session.flush()
    world.stores[letter] = store.id
    integration, secret = integrations.create(session, store=store, name="DMS")
    world.integrations[letter] = (integration.key_id, secret)
    return store


def _user(session: Session, world: World, username: str, role: str, stores: list[Store]) -> User:
    user = User(
        username=username, name=username.replace("_", " ").title(), role=role, stores=stores
    )
    session.add(user)
    session.flush()
    world.users[username] = user.id
    world.tokens[username] = issue_token(session, user, "test")
    return user


def _customer_with_ro(
    session: Session, world: World, letter: str, store: Store, advisor: User, first: str
) -> Customer:
    customer = Customer(
        store_id=store.id,
        dms_id=f"C-{letter}",
        first_name=first,
        last_name="Smith",
        email=f"{first.lower()}@example.com",
        advisor=advisor,
        phones=[PhoneNumber(store_id=store.id, e164=SHARED_PHONE, label="mobile")],
        vehicles=[
            Vehicle(store_id=store.id, year=2019, make="Honda", model="Civic", vin=f"VIN{letter}")
        ],
    )
    session.add(customer)
    session.flush()
    world.customers[letter] = customer.id
    ro = RepairOrder(
        store_id=store.id,
        number=SHARED_RO,
        customer_id=customer.id,
        vehicle_id=customer.vehicles[0].id,
        advisor_id=advisor.id,
        status="In Shop",
        opened_at=NOW - timedelta(hours=3),
        promised_at=NOW + timedelta(hours=5),
        concern="brakes squeal",
        events=[
            StatusEventRow(
                status="Waiting on Dispatch", at=NOW - timedelta(hours=3), source="import"
            ),
            StatusEventRow(status="In Shop", at=NOW - timedelta(hours=2), source="import"),
        ],
    )
    closed = RepairOrder(
        store_id=store.id,
        number=f"9{letter}",
        customer_id=customer.id,
        status="Closed",
        opened_at=NOW - timedelta(days=30),
        closed_at=NOW - timedelta(days=29),
    )
    session.add_all([ro, closed])
    session.flush()
    world.ros[letter] = ro.id
    return customer


def build_world(session: Session) -> World:
    world = World()
    a = _store(session, world, "A")
    b = _store(session, world, "B", custom_statuses=["Waiting on Parts"])
    adv_a = _user(session, world, "ann", "advisor", [a])
    _user(session, world, "alex", "advisor", [a])
    mgr_a = _user(session, world, "mary", "manager", [a])
    adv_b = _user(session, world, "bob", "advisor", [b])
    mgr_b = _user(session, world, "bea", "manager", [b])
    _user(session, world, "root", "admin", [])
    _user(session, world, "nobody", "advisor", [])

    cust_a = _customer_with_ro(session, world, "A", a, adv_a, "Jo")
    cust_b = _customer_with_ro(session, world, "B", b, adv_b, "Joan")
    # A second customer of A, to check name search and paging.
    other = Customer(store_id=a.id, dms_id="C-A2", first_name="Zed", last_name="Young")
    session.add(other)

    for letter, customer, author, mentioned in (
        ("A", cust_a, mgr_a, adv_a),
        ("B", cust_b, mgr_b, adv_b),
    ):
        note = ThreadEntry(
            store_id=customer.store_id,
            customer_id=customer.id,
            kind="note",
            at=NOW - timedelta(minutes=30),
            author=author,
            body=f"@{mentioned.username} call them back",
            mentions=[Mention(user=mentioned)],
        )
        call = ThreadEntry(
            store_id=customer.store_id,
            customer_id=customer.id,
            kind="call",
            at=NOW - timedelta(minutes=10),
            body="Inbound call, 2 min",
            data={"duration_s": 120},
        )
        session.add_all([note, call])
        session.flush()
        world.entries[letter] = note.id
        world.mentions[letter] = note.mentions[0].id

    for letter, store, owner, customer in (("A", a, adv_a, cust_a), ("B", b, adv_b, cust_b)):
        overdue = CallbackTask(
            store_id=store.id,
            customer_id=customer.id,
            phone=SHARED_PHONE,
            owner_id=owner.id,
            reason="missed call",
            due_at=NOW - timedelta(hours=1),
        )
        session.add(overdue)
        session.flush()
        world.callbacks[letter] = overdue.id
    # More tasks in A: a later one of ann's, one of mary's, one done.
    session.add_all(
        [
            CallbackTask(
                store_id=a.id,
                phone="+15550200002",
                owner_id=adv_a.id,
                reason="later",
                due_at=NOW + timedelta(hours=2),
            ),
            CallbackTask(
                store_id=a.id,
                phone="+15550200003",
                owner_id=mgr_a.id,
                reason="mary's",
                due_at=NOW + timedelta(hours=1),
            ),
            CallbackTask(
                store_id=a.id,
                phone="+15550200004",
                owner_id=adv_a.id,
                reason="done",
                due_at=NOW - timedelta(hours=5),
                done_at=NOW - timedelta(hours=4),
            ),
        ]
    )
    return world


@pytest.fixture
def world(sessions: sessionmaker[Session]) -> World:
    with sessions() as session:  # issue_token commits, so no outer transaction block
        world = build_world(session)
        session.commit()
        return world


@pytest.fixture
def bus(redis_url: str) -> Iterator[EventBus]:
    """The test session's Redis; login failure counts of earlier tests are forgotten."""
    event_bus = EventBus(redis_url)
    stale = list(event_bus.redis.scan_iter(match=f"{LOGIN_KEYS}*"))
    if stale:
        event_bus.redis.delete(*stale)
    yield event_bus
    event_bus.close()


@pytest.fixture
def app_client(db_url: str, engine: Engine, bus: EventBus, redis_url: str) -> Iterator[TestClient]:
    settings = Settings(database_url=db_url, redis_url=redis_url)
    with TestClient(create_app(settings, engine=engine, bus=bus)) as client:
        yield client


class As:
    """Calls the API as one user: `api.as_("ann").get("/customers/1")`."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get("/api/v1" + path, headers=self._headers(kw), **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.post("/api/v1" + path, headers=self._headers(kw), **kw)

    def _headers(self, kw: dict[str, Any]) -> dict[str, str]:
        return self.headers | kw.pop("headers", {})


class Dms:
    """Posts to the webhooks as a store's integration, each request signed as a DMS signs it
    (api/webhook_auth.py): `api.dms("A").post("/repair-orders/1001/status", json={...})`."""

    def __init__(self, client: TestClient, key_id: str, secret: str) -> None:
        self.client, self.key_id, self.secret = client, key_id, secret

    def post(
        self,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        at: float | None = None,
        delivery: str | None = None,
    ) -> httpx.Response:
        body = content if content is not None else dumps(json).encode()
        delivery = delivery or uuid.uuid4().hex  # one id per delivery, as a DMS sends
        signed = signed_headers(self.key_id, self.secret, body, at=at, delivery=delivery)
        return self.client.post("/api/v1" + path, content=body, headers=signed | (headers or {}))


@dataclass
class Api:
    client: TestClient
    world: World

    def as_(self, username: str) -> As:
        return As(self.client, self.world.tokens[username])

    def dms(self, letter: str) -> Dms:
        """Store `letter`'s DMS integration."""
        return Dms(self.client, *self.world.integrations[letter])


@pytest.fixture
def api(app_client: TestClient, world: World) -> Api:
    return Api(app_client, world)


@pytest.fixture
def calls(api: Api, sessions: sessionmaker[Session]) -> dict[str, int]:
    """One unmatched call per store (the world of conftest has none)."""
    ids: dict[str, int] = {}
    with sessions.begin() as session:
        for letter, store_id in api.world.stores.items():
            call = Call(
                call_uuid=f"scope-{letter}-{uuid.uuid4().hex}",
                store_id=store_id,
                direction="inbound",
                from_number="+15550209999",
                to_number="+15550300100",
                started_at=NOW - timedelta(minutes=5),
                ended_at=NOW - timedelta(minutes=4),
                disposition="missed",
                flow_path=[],
            )
            session.add(call)
            session.flush()
            ids[letter] = call.id
    return ids


@pytest.fixture
def follow_ups(api: Api, sessions: sessionmaker[Session]) -> dict[str, dict[str, int]]:
    """A declined line item per store, with its follow-up (owned by the RO's advisor)."""
    ids: dict[str, dict[str, int]] = {}
    with sessions.begin() as session:
        for letter, ro_id in api.world.ros.items():
            ro = session.get(RepairOrder, ro_id)
            assert ro is not None
            item, changes = followups.add_line_item(
                session, ro=ro, description="Brake pads", status="declined"
            )
            ids[letter] = {"line_item": item.id, "follow_up": changes.created[0].id}
    return ids
