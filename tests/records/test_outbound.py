"""records/outbound.py on both databases: sticky-callback lookups (also through the flow
engine), the proactive pickup call's conditions, and the queue's slot-aware hand-off."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
import redis.asyncio as aioredis
from sqlalchemy.orm import Session, sessionmaker

from events import outbound
from ivr.flow import FlowEngine, load_flows
from ivr.flow.fakes import FakeChannel
from ivr.policies import OutboundPolicy
from records.flow_records import SqlRecords
from records.models import Call, RepairOrder, StatusEventRow, Store
from records.outbound import last_contact, policy_for
from tests.records.helpers import NOW, make_customer, make_store, make_user
from usecases import status as status_usecase
from usecases.outbound import prepare_pickup_call

PHONE = "+15550201234"
FLOWS = Path(__file__).resolve().parents[2] / "flows"
OPEN_WED = {"wed": [["07:00", "18:00"]]}  # NOW is a Wednesday, 10:00 in New York


def _world(session: Session, **store_kw: Any) -> dict[str, Any]:
    store = make_store(**store_kw)
    other = make_store("S2", did="+15550300200")
    session.add_all([store, other])
    session.flush()
    ann = make_user(store, "ann", sip_contact="sip:ann@10.0.0.5")
    bob = make_user(store, "bob", phone="+15550109002")
    carl = make_user(other, "carl", phone="+15550109003")
    customer = make_customer(store, "Jo", PHONE)
    session.add_all([ann, bob, carl, customer])
    session.flush()
    return {"store": store, "other": other, "ann": ann, "bob": bob, "carl": carl,
            "customer": customer}  # fmt: skip


def _outbound(
    session: Session, store: Store, advisor_id: int, at_minutes_ago: float, now: datetime = NOW
) -> Call:
    call = Call(
        call_uuid=f"out-{advisor_id}-{at_minutes_ago}",
        store_id=store.id,
        advisor_id=advisor_id,
        direction="outbound",
        from_number=store.dids[0],
        to_number=PHONE,
        started_at=now - timedelta(minutes=at_minutes_ago),
        flow_path=[],
    )
    session.add(call)
    session.flush()
    return call


def test_last_contact_is_the_latest_advisor_in_the_window(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        w = _world(session)
        _outbound(session, w["store"], w["ann"].id, 60 * 80)  # 80 hours ago: outside 72 h
        assert last_contact(session, w["store"].id, PHONE, now=NOW) is None
        _outbound(session, w["store"], w["bob"].id, 60 * 5)
        _outbound(session, w["store"], w["ann"].id, 30)
        last = last_contact(session, w["store"].id, PHONE, now=NOW)
        assert last is not None and last.advisor.username == "ann" and last.mode == "direct"
        assert last.advisor.contact == "sip:ann@10.0.0.5"
        # another store never sees it; an inactive advisor is skipped for the one before
        assert last_contact(session, w["other"].id, PHONE, now=NOW) is None
        w["ann"].active = False
        session.flush()
        last = last_contact(session, w["store"].id, PHONE, now=NOW)
        assert last is not None and last.advisor.username == "bob"


def test_the_store_sets_the_window_and_the_mode(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        w = _world(session, outbound={"sticky_hours": 1, "sticky_mode": "offer"})
        _outbound(session, w["store"], w["ann"].id, 90)
        assert last_contact(session, w["store"].id, PHONE, now=NOW) is None
        _outbound(session, w["store"], w["bob"].id, 20)
        last = last_contact(session, w["store"].id, PHONE, now=NOW)
        assert last is not None and (last.advisor.username, last.mode) == ("bob", "offer")
        w["store"].outbound = {"sticky_hours": 0}
        session.flush()
        assert last_contact(session, w["store"].id, PHONE, now=NOW) is None


def test_a_callback_flow_rings_the_advisor_who_called(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """The shipped `callback` flow over the SQL records: the customer's assigned advisor is
    bob, but ann called them a minute ago, so ann's phone rings."""
    with sessions.begin() as session:
        w = _world(session, hours=OPEN_WED)
        w["customer"].advisor_id = w["bob"].id
        _outbound(session, w["store"], w["ann"].id, 1, now=datetime.now(UTC))  # the engine's now
        store_id = w["store"].id
    records = SqlRecords(sessions.kw["bind"])
    store = asyncio.run(records.store(store_id))
    assert store is not None
    channel = FakeChannel([], recordings_dir=str(tmp_path))
    engine = FlowEngine(load_flows(FLOWS), records)
    result = asyncio.run(engine.run(channel, store=store, caller=PHONE, flow="callback"))
    transfers = [value for kind, value in channel.actions if kind == "transfer"]
    assert transfers == ["sip:ann@10.0.0.5 answered"]
    assert result.outcome.kind == "transfer"


# --- the proactive pickup call ----------------------------------------------------------------


def _ready_ro(session: Session, w: dict[str, Any], status: str = "Ready for Pickup") -> int:
    ro = RepairOrder(store_id=w["store"].id, number="77", customer_id=w["customer"].id,
                     status=status)  # fmt: skip
    ro.events.append(StatusEventRow(status=status, at=NOW))
    session.add(ro)
    session.flush()
    return ro.events[-1].id


def _pickup(session: Session, event_id: int) -> outbound.OutboundJob | None:
    row = session.get(StatusEventRow, event_id)
    assert row is not None
    return prepare_pickup_call(session, event=row, now=NOW)


def test_pickup_call_once_per_status_change_inside_hours(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        w = _world(session, hours=OPEN_WED, outbound={"pickup_calls": True})
        event_id = _ready_ro(session, w)
        job = _pickup(session, event_id)
        assert job is not None
        assert (job.kind, job.flow, job.destination) == ("pickup", "pickup_confirm", PHONE)
        assert job.retries == 1 and job.slots == 1 and job.caller_id == w["store"].dids[0]
        call = session.get(Call, job.call_id)
        assert call is not None and call.direction == "outbound" and call.advisor_id is None
        assert _pickup(session, event_id) is None  # the same change again: no second call


def test_a_car_ready_outside_hours_is_called_when_the_store_opens(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:  # NOW is 10:00 in New York; the store opens at noon
        w = _world(session, hours={"wed": [["12:00", "18:00"]]}, outbound={"pickup_calls": True})
        job = _pickup(session, _ready_ro(session, w))
        assert job is not None and job.not_before is not None
        opening = NOW.astimezone(ZoneInfo("America/New_York")).replace(hour=12, minute=0)
        assert job.not_before == opening
        assert job.expires_at > job.not_before  # its retry still fits after the opening


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"outbound": {}}, "the store has not opted in"),
        ({"hours": {}}, "the store is not open in the next two weeks"),
        ({"dnc": True}, "the customer is do-not-call"),
        ({"allow": [r"^\+1900\d{7}$"]}, "the number is not an allowed destination"),
        ({"status": "Tech Working"}, "not Ready for Pickup"),
    ],
)
def test_no_pickup_call_when(
    sessions: sessionmaker[Session], change: dict[str, Any], why: str
) -> None:
    policy: dict[str, Any] = {"pickup_calls": True}
    if "allow" in change:
        policy["allow"] = change["allow"]
    with sessions.begin() as session:
        w = _world(session, hours=change.get("hours", OPEN_WED),
                   outbound=change.get("outbound", policy))  # fmt: skip
        w["customer"].do_not_call = change.get("dnc", False)
        event_id = _ready_ro(session, w, change.get("status", "Ready for Pickup"))
        assert _pickup(session, event_id) is None, why
        assert session.query(Call).count() == 0


def test_a_flapping_status_rings_the_customer_at_most_the_daily_limit(
    sessions: sessionmaker[Session],
) -> None:
    """Ready → Tech Working → Ready ... through the status use case: each arrival at Ready is
    a new change, but the customer gets `pickup_per_customer_day` calls a day (default 2)."""
    with sessions.begin() as session:
        w = _world(session, hours=OPEN_WED, outbound={"pickup_calls": True})
        ro = RepairOrder(store_id=w["store"].id, number="77", customer_id=w["customer"].id,
                         status="Tech Working")  # fmt: skip
        session.add(ro)
        session.flush()
        jobs = []
        for n in range(4):
            for status, minute in (("Ready for Pickup", 2 * n), ("Tech Working", 2 * n + 1)):
                at = NOW - timedelta(minutes=30 - minute)
                outcome = status_usecase.record_status_change(
                    session, ro=ro, status=status, at=at, note=None, source="test", now=NOW
                )
                jobs.append(outcome.pickup)
        made = [job for job in jobs if job is not None]
        assert len(made) == 2
        assert session.query(Call).count() == 2
        # A day later the customer may be called again.
        outcome = status_usecase.record_status_change(
            session, ro=ro, status="Ready for Pickup", at=NOW + timedelta(hours=1), note=None,
            source="test", now=NOW + timedelta(days=1, minutes=1),
        )  # fmt: skip
        assert outcome.pickup is not None


def test_the_daily_pickup_limit_is_the_stores(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        w = _world(session, hours=OPEN_WED,
                   outbound={"pickup_calls": True, "pickup_per_customer_day": 0})  # fmt: skip
        assert _pickup(session, _ready_ro(session, w)) is None
        assert session.query(Call).count() == 0
    assert OutboundPolicy().pickup_per_customer_day == 2


# --- the queue --------------------------------------------------------------------------------


def _job(**kw: Any) -> outbound.OutboundJob:
    fields: dict[str, Any] = dict(kind="click_to_call", call_uuid="u1", call_id=1, store_id=1,
                                  destination=PHONE, caller_id="+15550300100",
                                  expires_at=NOW + timedelta(minutes=1))  # fmt: skip
    return outbound.OutboundJob(**(fields | kw))


def test_each_job_goes_to_one_worker_and_retries_wait_until_due(redis_url: str) -> None:
    sync = redis.Redis.from_url(redis_url)
    for key in (outbound.QUEUE, outbound.DELAYED):
        sync.delete(key)

    async def scenario() -> None:
        client = aioredis.Redis.from_url(redis_url)
        try:
            await outbound.ensure_group(client)
            await outbound.ensure_group(client)  # a second worker: BUSYGROUP is fine
            outbound.enqueue(sync, _job(call_uuid="a"))
            first = await outbound.take_job(client, "w1", 100)
            second = await outbound.take_job(client, "w2", 100)
            assert first is not None and first[1].call_uuid == "a" and second is None
            await outbound.done_job(client, first[0])
            await outbound.requeue(client, _job(call_uuid="later"), delay_s=3600)
            assert await outbound.release_due(client) == 0  # not due for an hour
            assert await outbound.take_job(client, "w1", 100) is None
            await outbound.requeue(client, _job(call_uuid="now"), delay_s=0.001)
            await asyncio.sleep(0.01)
            assert await outbound.release_due(client) == 1
            again = await outbound.take_job(client, "w2", 100)
            assert again is not None and again[1].call_uuid == "now"
        finally:
            await client.aclose()

    try:
        asyncio.run(scenario())
        assert outbound.read_state(sync, "a") == {"state": "queued", "detail": ""}
    finally:
        for key in (outbound.QUEUE, outbound.DELAYED):
            sync.delete(key)
        sync.close()


def test_bad_policies_fall_back_to_the_strict_defaults() -> None:
    store = make_store(outbound={"allow": ["("], "per_advisor_hour": 3})
    policy = policy_for(store)
    assert policy.allow == [] and policy.geographic and policy.per_advisor_hour == 20
    assert policy.allows("+12025550123") and not policy.allows("+442079460958")
    assert not policy.allows("+1202555012")  # one digit short


@pytest.mark.parametrize(
    ("number", "allowed"),
    [("+12025550123", True), ("+14165550123", True), ("+19005550123", False),
     ("+18005550123", False), ("+18765550123", False), ("+18095550123", False),
     ("+12129761234", False), ("+15005550123", False), ("+15552010001", False),
     ("+442079460958", False)],
)  # fmt: skip
def test_the_default_policy_allows_us_and_canadian_geographic_numbers_only(
    number: str, allowed: bool
) -> None:
    """Premium (900), toll-free, Jamaica and the Dominican Republic (+1 but international
    rates), a 976 exchange, personal 500 numbers and the fictional 555 area are refused."""
    assert OutboundPolicy().allows(number) is allowed
