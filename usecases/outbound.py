"""Outbound calls as workflows: the masked click-to-call an advisor asks for, and the proactive
"your car is ready" call a status change makes. Every guard runs here, before any SIP traffic;
the SIP worker checks the destination again (sip/outbound.py).

    API / pages   ─▶ place_masked_call (scope, do-not-call, allowed destination, rate limits)
                     ─▶ Call row (direction outbound) ─▶ commit ─▶ events.outbound.enqueue
    status change ─▶ prepare_pickup_call (opt-in, store open, do-not-call, once per change, at
                     most `pickup_per_customer_day` a day per customer); usecases/status.py
                     queues it after its commit

A refusal is a use-case error (usecases/errors.py) naming the input to blame; the API maps its
kind to the HTTP status.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from events.bus import EventBus, publish
from events.outbound import CALL_OUTBOUND, JOB_TTL_S, PICKUP_FLOW, OutboundJob, enqueue
from ivr.domain import READY_FOR_PICKUP, Role
from ivr.hours import Hours
from ivr.phone import try_e164
from ivr.policies import OutboundPolicy
from records import views
from records.models import Call, Customer, RepairOrder, StatusEventRow, Store, User, utcnow
from records.outbound import (
    Target,
    customer_by_phone,
    new_call_row,
    outbound_calls_since,
    pickup_calls_since,
    policy_for,
)
from usecases.errors import Conflict, Forbidden, Invalid, NotFound, TooMany, Unavailable

log = logging.getLogger(__name__)


def place_masked_call(
    session: Session,
    bus: EventBus,
    *,
    user: User,
    store_ids: frozenset[int] | None,
    customer_id: int | None,
    phone: str | None,
    repair_order_id: int | None,
    store_id: int | None,
    region: str = "US",
    now: datetime | None = None,
) -> OutboundJob:
    """Check everything (a refusal is a use-case error naming the input to blame), write the
    call row, commit, hand the job to the SIP workers and announce it (`call.outbound`
    queued). With Redis away no worker could take it: the row goes again and the call is
    refused (`Unavailable`)."""
    now = now or utcnow()

    def visible(sid: int) -> bool:
        return store_ids is None or sid in store_ids

    customer = session.get(Customer, customer_id) if customer_id is not None else None
    if customer_id is not None and (customer is None or not visible(customer.store_id)):
        raise NotFound("customer not found")
    number: str | None = None
    if phone is not None:
        number = try_e164(phone, region)
        if number is None:
            raise Invalid(f"not a phone number: {phone!r}", ("body", "phone"))
    elif customer is not None:
        number = customer.phones[0].e164 if customer.phones else None
        if number is None:
            raise Invalid("the customer has no phone number", ("body", "customer_id"))
    else:
        raise Invalid("give customer_id or phone", ("body",))

    if customer is not None:
        store = customer.store
        if store_id is not None and store_id != store.id:
            raise Invalid("the customer belongs to another store", ("body", "store_id"))
    else:
        if store_id is None:
            mine = sorted(user.store_ids)
            if len(mine) != 1:
                raise Invalid("say which store is calling", ("body", "store_id"))
            store_id = mine[0]
        found = session.get(Store, store_id)
        if found is None or not visible(found.id):
            raise NotFound("store not found")
        store = found
        customer = customer_by_phone(session, store.id, number)

    ro = None
    if repair_order_id is not None:
        ro = session.get(RepairOrder, repair_order_id)
        if ro is None or ro.store_id != store.id:
            raise NotFound("repair order not found")
        if customer is not None and ro.customer_id != customer.id:
            raise Invalid("the RO is another customer's", ("body", "repair_order_id"))
    contact = user.sip_contact or user.phone
    if not contact:
        raise Conflict("you have no phone number or SIP contact to ring first", ("body",))
    if user.role != Role.admin and store.id not in user.store_ids:
        raise NotFound("store not found")

    policy = policy_for(store)
    target = Target(store, customer, number, ro)
    check_destination(session, target, policy)
    check_rate(session, store.id, user.id, policy, now=now)
    caller_id = caller_id_for(store, policy)
    call = new_call_row(session, target=target, caller_id=caller_id, advisor_id=user.id, now=now)
    job = OutboundJob(
        kind="click_to_call",
        call_uuid=call.call_uuid,
        call_id=call.id,
        store_id=store.id,
        destination=number,
        caller_id=caller_id,
        customer_id=customer.id if customer else None,
        customer_name=customer.name if customer else "",
        advisor_id=user.id,
        advisor_name=user.name,
        advisor_contact=contact,
        whisper=whisper_for(customer, number, ro),
        repair_order_id=ro.id if ro else None,
        advisor_ring_s=policy.advisor_ring_s,
        customer_ring_s=policy.customer_ring_s,
        expires_at=now + timedelta(seconds=JOB_TTL_S),
    )
    session.commit()
    try:
        enqueue(bus.redis, job)
    except redis.RedisError:
        session.delete(call)
        session.commit()
        raise Unavailable("no SIP worker can be reached (Redis is down)", ("body",)) from None
    publish(
        bus,
        job.store_id,
        CALL_OUTBOUND,
        {"call_uuid": job.call_uuid, "call_id": job.call_id, "state": "queued", "detail": ""},
    )
    return job


def prepare_pickup_call(
    session: Session,
    *,
    event: StatusEventRow,
    previous_status: str | None = None,
    now: datetime | None = None,
) -> OutboundJob | None:
    """The proactive "your car is ready" call for a status change, or None when it is not a
    change to Ready for Pickup (or the RO has moved on), the store has not opted in, the
    customer is do-not-call or has no allowed number, or this change already has its call (the
    call's uuid derives from the status event: once each), or the customer already had
    `pickup_per_customer_day` proactive calls in the last 24 hours. Outside store hours the
    call waits for the next opening (`not_before`); a store closed for two weeks gets none."""
    now = now or utcnow()
    ro = event.repair_order
    if READY_FOR_PICKUP not in (event.status, ro.status) or event.status != ro.status:
        return None
    if previous_status == READY_FOR_PICKUP:
        return None
    status_event_id = event.id
    store = session.get(Store, ro.store_id)
    if store is None:
        return None
    policy = policy_for(store)
    if not policy.pickup_calls:
        return None
    not_before = None
    view = views.store_view(store)
    if not view.is_open(now):
        not_before = Hours.of(view).next_open(now)
        if not_before is None:
            return None
    customer = ro.customer
    if customer.do_not_call or not customer.phones:
        return None
    number = customer.phones[0].e164
    if not policy.allows(number) or not store.dids:
        return None
    key = f"driveline:pickup:{ro.store_id}:{ro.id}:{status_event_id}"
    call_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, key))
    if session.scalar(select(Call.id).where(Call.call_uuid == call_uuid)) is not None:
        return None
    if pickup_calls_since(session, customer.id, now - timedelta(days=1)) >= (
        policy.pickup_per_customer_day
    ):
        log.info("no pickup call for RO %s: customer %s had enough today", ro.number, customer.id)
        return None
    caller_id = caller_id_for(store, policy)
    target = Target(store, customer, number, ro)
    call = new_call_row(
        session, target=target, caller_id=caller_id, advisor_id=None, now=now, call_uuid=call_uuid
    )
    return OutboundJob(
        kind="pickup",
        call_uuid=call_uuid,
        call_id=call.id,
        store_id=store.id,
        destination=number,
        caller_id=caller_id,
        customer_id=customer.id,
        customer_name=customer.name,
        repair_order_id=ro.id,
        flow=PICKUP_FLOW,
        customer_ring_s=policy.customer_ring_s,
        retries=1,
        retry_after_s=policy.pickup_retry_s,
        expires_at=(not_before or now)
        + timedelta(seconds=max(JOB_TTL_S, 3 * policy.pickup_retry_s + 60)),
        not_before=not_before,
    )


# --- the guards -------------------------------------------------------------------------------


def check_destination(session: Session, target: Target, policy: OutboundPolicy) -> None:
    """Do-not-call and the toll-fraud guard."""
    customer = target.customer or customer_by_phone(session, target.store.id, target.number)
    if customer is not None and customer.do_not_call:
        raise Forbidden("the customer is flagged do-not-call", ("body", "customer_id"))
    if not policy.allows(target.number):
        raise Forbidden(
            f"{target.number} is not an allowed destination for {target.store.name} "
            f"(allowed: {policy.rule.describe()})",
            ("body", "phone"),
        )


def check_rate(
    session: Session, store_id: int, advisor_id: int, policy: OutboundPolicy, *, now: datetime
) -> None:
    """At most `per_advisor_hour` / `per_store_hour` outbound calls in the last hour."""
    since = now - timedelta(hours=1)
    mine = outbound_calls_since(session, store_id, since, advisor_id=advisor_id)
    if mine >= policy.per_advisor_hour:
        raise TooMany(f"rate limit: {policy.per_advisor_hour} calls an hour per advisor", ("body",))
    if outbound_calls_since(session, store_id, since) >= policy.per_store_hour:
        raise TooMany(f"rate limit: {policy.per_store_hour} calls an hour", ("body",))


def caller_id_for(store: Store, policy: OutboundPolicy) -> str:
    if policy.caller_id:
        return policy.caller_id
    if not store.dids:
        raise Conflict(f"{store.name} has no phone number to show as caller ID", ("body",))
    return store.dids[0]


def whisper_for(customer: Customer | None, number: str, ro: RepairOrder | None) -> str:
    """What the advisor hears before the customer rings: `Calling Jo Smith about the 2019
    Honda Civic, repair order 1 0 0 1.` (digits one by one, as a person reads them)."""
    who = customer.name if customer is not None and customer.name else _spoken_number(number)
    text = f"Calling {who}"
    vehicle = ro.vehicle if ro is not None else None
    if vehicle is None and customer is not None and customer.vehicles:
        vehicle = customer.vehicles[0]
    if vehicle is not None:
        described = " ".join(str(p) for p in (vehicle.year, vehicle.make, vehicle.model) if p)
        if described:
            text += f" about the {described}"
    if ro is not None:
        text += f", repair order {' '.join(ro.number)}"
    return text + "."


def _spoken_number(number: str) -> str:
    return " ".join(number[2:] if number.startswith("+1") else number.lstrip("+"))
