"""`POST /calls` (masked click-to-call): every guard answers a 4xx with its reason before
anything reaches the SIP workers' queue, and an accepted call has a readable record at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from api.deps import refusal_status
from events import outbound
from events.bus import EventBus
from ivr.phone import FICTIONAL
from records.models import Call, Customer, Store, StoreNumber, User
from tests.api.conftest import SHARED_PHONE, Api
from usecases.errors import Unavailable
from usecases.outbound import place_masked_call

DID_A = "+15550300100"
ANN_SIP = "sip:ann@10.0.0.5:5062"


@pytest.fixture
def queue(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.delete(outbound.QUEUE)
    yield client
    client.delete(outbound.QUEUE)
    client.close()


@pytest.fixture
def ready(api: Api, sessions: sessionmaker[Session]) -> Api:
    """Store A has a number to show; ann has a SIP phone; alex has nothing to ring."""
    with sessions.begin() as session:
        session.add(StoreNumber(store_id=api.world.stores["A"], e164=DID_A))
        session.get(User, api.world.users["ann"]).sip_contact = ANN_SIP  # type: ignore[union-attr]
    return api


def jobs(client: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(fields[b"job"]) for _, fields in client.xrange(outbound.QUEUE)]


def set_policy(sessions: sessionmaker[Session], store_id: int, **policy: Any) -> None:
    with sessions.begin() as session:
        policy.setdefault("allow", [FICTIONAL])  # the tests' +1 555 numbers are fictional
        session.get(Store, store_id).outbound = policy  # type: ignore[union-attr]


def outbound_calls(sessions: sessionmaker[Session]) -> list[Call]:
    with sessions() as session:
        return list(session.query(Call).filter(Call.direction == "outbound"))


def test_a_call_is_queued_with_its_whisper_and_readable_at_once(
    ready: Api, queue: redis.Redis
) -> None:
    w = ready.world
    response = ready.as_("ann").post(
        "/calls", json={"customer_id": w.customers["A"], "repair_order_id": w.ros["A"]}
    )
    assert response.status_code == 202, response.text
    placed = response.json()
    assert placed["state"] == "queued"
    (job,) = jobs(queue)
    assert job["call_uuid"] == placed["call_uuid"] and job["call_id"] == placed["id"]
    assert job["destination"] == SHARED_PHONE and job["caller_id"] == DID_A
    assert job["advisor_contact"] == ANN_SIP and job["advisor_id"] == w.users["ann"]
    assert job["whisper"] == "Calling Jo Smith about the 2019 Honda Civic, repair order 1 0 0 1."
    assert job["kind"] == "click_to_call"

    call = ready.as_("ann").get(f"/calls/{placed['id']}").json()
    assert call["direction"] == "outbound" and call["state"] == "queued"
    assert (call["from_number"], call["to_number"]) == (DID_A, SHARED_PHONE)
    assert call["advisor_id"] == w.users["ann"] and call["customer_id"] == w.customers["A"]
    assert call["disposition"] is None
    assert [leg["role"] for leg in call["legs"]] == ["caller"]


def test_a_number_alone_finds_the_customer_and_the_store(ready: Api, queue: redis.Redis) -> None:
    response = ready.as_("ann").post("/calls", json={"phone": "(555) 020-0001"})
    assert response.status_code == 202, response.text
    (job,) = jobs(queue)
    assert job["customer_id"] == ready.world.customers["A"]  # not store B's customer
    assert job["store_id"] == ready.world.stores["A"]


@pytest.mark.parametrize(
    ("phone", "reason"),
    [
        ("+442079460958", "not an allowed destination"),  # London: outside North America
        ("+19005550100", "not an allowed destination"),  # premium rate
        ("+18765550100", "US/Canadian geographic numbers"),  # Jamaica: +1, international rates
        ("+12025550100", None),  # Washington DC: the control case
    ],
)
def test_destinations_outside_the_patterns_are_refused(
    ready: Api, queue: redis.Redis, sessions: sessionmaker[Session], phone: str, reason: str | None
) -> None:
    set_policy(sessions, ready.world.stores["A"])  # the default rule (and the fictional 555s)
    response = ready.as_("ann").post("/calls", json={"phone": phone})
    if reason is None:
        assert response.status_code == 202, response.text
        assert len(jobs(queue)) == 1
        return
    assert response.status_code == 403, response.text
    assert reason in response.json()["detail"][0]["msg"]
    assert jobs(queue) == [] and outbound_calls(sessions) == []


def test_a_store_can_narrow_the_patterns(
    ready: Api, queue: redis.Redis, sessions: sessionmaker[Session]
) -> None:
    set_policy(sessions, ready.world.stores["A"], allow=[r"^\+1555\d{7}$"])
    assert ready.as_("ann").post("/calls", json={"phone": "+19005550100"}).status_code == 403
    assert ready.as_("ann").post("/calls", json={"phone": "+15550209999"}).status_code == 202
    assert len(jobs(queue)) == 1


def test_do_not_call_customers_are_refused_by_id_and_by_number(
    ready: Api, queue: redis.Redis, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:
        session.get(Customer, ready.world.customers["A"]).do_not_call = True  # type: ignore[union-attr]
    by_id = ready.as_("ann").post("/calls", json={"customer_id": ready.world.customers["A"]})
    by_number = ready.as_("ann").post("/calls", json={"phone": SHARED_PHONE})
    for response in (by_id, by_number):
        assert response.status_code == 403, response.text
        assert "do-not-call" in response.json()["detail"][0]["msg"]
    assert jobs(queue) == [] and outbound_calls(sessions) == []


def test_rate_limits_per_advisor_and_per_store(
    ready: Api, queue: redis.Redis, sessions: sessionmaker[Session]
) -> None:
    set_policy(sessions, ready.world.stores["A"], per_advisor_hour=1, per_store_hour=2)
    with sessions.begin() as session:
        session.get(User, ready.world.users["alex"]).phone = "+15550109002"  # type: ignore[union-attr]
    assert ready.as_("ann").post("/calls", json={"phone": "+15550209991"}).status_code == 202
    again = ready.as_("ann").post("/calls", json={"phone": "+15550209992"})
    assert again.status_code == 429 and "per advisor" in again.json()["detail"][0]["msg"]
    assert ready.as_("alex").post("/calls", json={"phone": "+15550209993"}).status_code == 202
    with sessions.begin() as session:
        session.get(User, ready.world.users["mary"]).phone = "+15550109003"  # type: ignore[union-attr]
    full = ready.as_("mary").post("/calls", json={"phone": "+15550209994"})
    assert full.status_code == 429 and "2 calls an hour" in full.json()["detail"][0]["msg"]
    assert len(jobs(queue)) == 2


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({}, 422, "give customer_id or phone"),
        ({"phone": "not a number"}, 422, ""),
        ({"customer_id": 999999}, 404, "customer not found"),
        ({"phone": "+15550209999", "store_id": 999999}, 404, "store not found"),
    ],
)
def test_bad_requests_say_why(
    ready: Api, queue: redis.Redis, body: dict[str, Any], status: int, words: str
) -> None:
    response = ready.as_("ann").post("/calls", json=body)
    assert response.status_code == status, response.text
    assert words in json.dumps(response.json())
    assert jobs(queue) == []


def test_an_advisor_without_a_phone_is_told_so(ready: Api, queue: redis.Redis) -> None:
    response = ready.as_("alex").post("/calls", json={"phone": "+15550209999"})
    assert response.status_code == 409
    assert "no phone number or SIP contact" in response.json()["detail"][0]["msg"]
    assert jobs(queue) == []


def test_state_follows_the_worker_then_the_record(
    ready: Api, queue: redis.Redis, sessions: sessionmaker[Session], redis_url: str
) -> None:
    placed = ready.as_("ann").post("/calls", json={"phone": "+15550209999"}).json()
    queue.hset(outbound.STATE_KEY + placed["call_uuid"], mapping={"state": "calling_customer"})
    assert ready.as_("ann").get(f"/calls/{placed['id']}").json()["state"] == "calling_customer"
    queue.delete(outbound.STATE_KEY + placed["call_uuid"])
    with sessions.begin() as session:
        session.get(Call, placed["id"]).disposition = "missed"  # type: ignore[union-attr]
    call = ready.as_("ann").get(f"/calls/{placed['id']}").json()
    assert (call["state"], call["state_detail"]) == ("ended", "missed")


@pytest.mark.parametrize(
    "body",
    [{"customer_id": "B"}, {"phone": "555-020-0009", "store_id": "B"}],
    ids=["customer", "store"],
)
def test_another_stores_customer_or_store_is_404(
    ready: Api, queue: redis.Redis, sessions: sessionmaker[Session], body: dict[str, Any]
) -> None:
    """ann and mary (store A) get 404 for store B's customer or store; bob (store B, once his
    store has a number and he a phone) gets the very same request through."""
    w = ready.world
    filled = {k: (w.customers[v] if k == "customer_id" else w.stores[v]) if v == "B" else v
              for k, v in body.items()}  # fmt: skip
    with sessions.begin() as session:
        session.get(User, w.users["mary"]).phone = "+15550109003"  # type: ignore[union-attr]
        session.get(User, w.users["bob"]).phone = "+15550109004"  # type: ignore[union-attr]
        session.add(StoreNumber(store_id=w.stores["B"], e164="+15550300200"))
    for outsider in ("ann", "mary"):
        response = ready.as_(outsider).post("/calls", json=filled)
        assert response.status_code == 404, (outsider, response.text)
        assert "Joan" not in response.text
    assert jobs(queue) == []
    response = ready.as_("bob").post("/calls", json=filled)
    assert response.status_code == 202, response.text
    (job,) = jobs(queue)
    assert job["store_id"] == w.stores["B"] and job["caller_id"] == "+15550300200"
    call_id = response.json()["id"]
    assert ready.as_("ann").get(f"/calls/{call_id}").status_code == 404
    assert ready.as_("bob").get(f"/calls/{call_id}").json()["state"] == "queued"


ALL_DAY = {
    day: [["00:00", "23:59:59"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


def _open(sessions: sessionmaker[Session], store_id: int, hours: dict[str, Any]) -> None:
    with sessions.begin() as session:
        store = session.get(Store, store_id)
        assert store is not None
        store.hours, store.timezone = hours, "UTC"
        store.outbound = {"pickup_calls": True, "allow": [FICTIONAL]}


def _ready(api: Api, at: str) -> Any:
    response = api.dms("A").post(
        "/repair-orders/1001/status", json={"status": "Ready for Pickup", "at": at}
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_ready_for_pickup_queues_one_automated_call(
    ready: Api, queue: redis.Redis, sessions: sessionmaker[Session]
) -> None:
    _open(sessions, ready.world.stores["A"], ALL_DAY)
    now = datetime.now(UTC).replace(microsecond=0)
    _ready(ready, now.isoformat())  # after the RO's last status (In Shop, 2 hours ago)
    (job,) = jobs(queue)
    assert (job["kind"], job["flow"], job["destination"]) == ("pickup", "pickup_confirm",
                                                             SHARED_PHONE)  # fmt: skip
    assert job["advisor_id"] is None and job["retries"] == 1
    assert _ready(ready, now.isoformat())["duplicate"] is True  # the webhook again
    _ready(ready, (now + timedelta(seconds=1)).isoformat())  # Ready from Ready: no change
    assert len(jobs(queue)) == 1
    (call,) = outbound_calls(sessions)
    assert call.call_uuid == job["call_uuid"] and call.advisor_id is None


def test_a_car_ready_after_hours_is_called_at_the_opening(
    ready: Api, queue: redis.Redis, sessions: sessionmaker[Session]
) -> None:
    now = datetime.now(UTC)
    later = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    opens = {day: [[later.strftime("%H:%M"), "23:59:59"]] for day in ALL_DAY}
    if later.date() != now.date():  # near midnight: open only tomorrow morning
        opens = {day: [[later.strftime("%H:%M"), (later + timedelta(hours=1)).strftime("%H:%M")]]
                 for day in ALL_DAY}  # fmt: skip
    _open(sessions, ready.world.stores["A"], opens)
    queue.delete(outbound.DELAYED)
    try:
        _ready(ready, now.isoformat())
        assert jobs(queue) == []  # nothing dialled now
        [(raw, due)] = queue.zrange(outbound.DELAYED, 0, -1, withscores=True)
        job = json.loads(raw)
        assert due == later.timestamp() and job["not_before"].startswith(
            later.strftime("%Y-%m-%dT%H:%M")
        )
        state = outbound.read_state(queue, job["call_uuid"])
        assert state is not None and state["state"] == "scheduled"
    finally:
        queue.delete(outbound.DELAYED)


def test_no_automated_call_outside_store_hours(
    ready: Api, queue: redis.Redis, sessions: sessionmaker[Session]
) -> None:
    _open(sessions, ready.world.stores["A"], {})  # never open
    _ready(ready, datetime.now(UTC).isoformat())
    assert jobs(queue) == [] and outbound_calls(sessions) == []


def test_with_redis_away_the_call_is_refused_and_leaves_no_row(
    ready: Api, sessions: sessionmaker[Session]
) -> None:
    """No SIP worker could take the job: 503 with the reason, and no half-made call row."""
    w = ready.world
    with sessions() as session:
        ann = session.get(User, w.users["ann"])
        assert ann is not None
        away = EventBus("redis://127.0.0.1:1/0")  # nothing listens on port 1
        with pytest.raises(Unavailable, match="Redis is down"):
            place_masked_call(
                session,
                away,
                user=ann,
                store_ids=frozenset(ann.store_ids),
                customer_id=w.customers["A"],
                phone=None,
                repair_order_id=None,
                store_id=None,
            )
        away.close()
    assert outbound_calls(sessions) == []
    assert refusal_status(Unavailable("x")) == 503
