"""Masked outbound calls: the store's policy, the guards run before any SIP traffic, the job
queue the SIP workers take calls from, the call's live state, and sticky-callback lookups.

    API  POST /calls ─▶ prepare_click_to_call (scope, do-not-call, allowed destination, rate
                        limits) ─▶ Call row (direction outbound) ─▶ enqueue(OutboundJob)
    status change   ─▶ prepare_pickup_call (opt-in, store open, do-not-call, once per change,
                        at most `pickup_per_customer_day` a day per customer)
    SIP worker      ─▶ takes a job only with free call slots (sip/outbound.py), publishes the
                        usual call events plus `call.outbound` progress; `set_state` keeps the
                        latest for `GET /calls/{id}`

The queue is a Redis stream read through one consumer group: each job goes to exactly one
worker, and a worker reads only when it has the slots the job needs, so a worker at its 4-call
cap never takes one. A job carries everything the worker needs (who to ring, caller ID, the
whisper), so the worker reads nothing from the database for a click-to-call. Jobs expire: a
click-to-call nobody could place within `JOB_TTL_S` is dropped, not dialled minutes later.
A retry (a proactive call nobody answered) waits in a sorted set until it is due.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from redis.exceptions import ResponseError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ivr.domain import Role
from ivr.flow.records import LastContact
from ivr.hours import Hours
from ivr.phone import try_e164
from ivr.policies import OutboundPolicy
from records import views
from records.models import (
    Call,
    CallLeg,
    Customer,
    RepairOrder,
    StatusEventRow,
    Store,
    User,
    user_stores,
    utcnow,
)

log = logging.getLogger(__name__)

QUEUE = "driveline:outbound"
GROUP = "driveline:sip-workers"
DELAYED = "driveline:outbound:delayed"  # sorted set: job JSON scored by when it is due
STATE_KEY = "driveline:outbound:state:"  # + call_uuid: the latest `call.outbound` progress
STATE_TTL_S = 86_400
JOB_TTL_S = 60.0
CALL_OUTBOUND = "call.outbound"  # progress event on the store's channel (SSE)


def policy_for(store: Store) -> OutboundPolicy:
    """The store's policy; a bad stored value falls back to the defaults (the strictest)."""
    try:
        return OutboundPolicy.model_validate(store.outbound or {})
    except ValidationError:
        return OutboundPolicy()


class OutboundJob(BaseModel):
    """One call for a SIP worker to place (the queue's payload)."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["click_to_call", "pickup"]
    call_uuid: str
    call_id: int
    store_id: int
    destination: str  # E.164, already checked against the store's policy
    caller_id: str  # the store's DID: From and P-Asserted-Identity of the customer leg
    customer_id: int | None = None
    customer_name: str = ""
    advisor_id: int | None = None
    advisor_name: str = ""
    advisor_contact: str | None = None  # SIP URI or E.164: rung first (click-to-call)
    whisper: str = ""  # said to the advisor before the customer is dialled
    repair_order_id: int | None = None
    flow: str | None = None  # automated calls: the flow to run when the customer answers
    advisor_ring_s: float = 25.0
    customer_ring_s: float = 30.0
    attempt: int = 1
    retries: int = 0  # further attempts on no answer (proactive calls: 1)
    retry_after_s: float = 600.0
    expires_at: datetime
    # Not to be dialled before this (a pickup call made outside hours waits for the opening).
    not_before: datetime | None = None

    @property
    def slots(self) -> int:
        """Call slots the job takes on a worker: advisor + customer, or the customer alone."""
        return 2 if self.kind == "click_to_call" else 1


class Refused(Exception):
    """A call the guards refuse, with the HTTP status and the field to blame."""

    def __init__(self, status: int, loc: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.status, self.loc, self.message = status, loc, message


# --- guards and the call row ------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    store: Store
    customer: Customer | None
    number: str
    ro: RepairOrder | None


def _store_customer_by_phone(session: Session, store_id: int, number: str) -> Customer | None:
    customer_id = views.find_customer_id_by_phone(session, store_id, number)
    return session.get(Customer, customer_id) if customer_id is not None else None


def check_destination(session: Session, target: Target, policy: OutboundPolicy) -> None:
    """Do-not-call and the toll-fraud guard; raises `Refused`."""
    customer = target.customer or _store_customer_by_phone(session, target.store.id, target.number)
    if customer is not None and customer.do_not_call:
        raise Refused(403, ("body", "customer_id"), "the customer is flagged do-not-call")
    if not policy.allows(target.number):
        raise Refused(
            403,
            ("body", "phone"),
            f"{target.number} is not an allowed destination for {target.store.name} "
            f"(allowed: {policy.rule.describe()})",
        )


def check_rate(
    session: Session, store_id: int, advisor_id: int, policy: OutboundPolicy, *, now: datetime
) -> None:
    """At most `per_advisor_hour` / `per_store_hour` outbound calls in the last hour."""
    since = now - timedelta(hours=1)
    base = select(func.count(Call.id)).where(
        Call.store_id == store_id, Call.direction == "outbound", Call.started_at >= since
    )
    mine = session.scalar(base.where(Call.advisor_id == advisor_id)) or 0
    if mine >= policy.per_advisor_hour:
        raise Refused(
            429, ("body",), f"rate limit: {policy.per_advisor_hour} calls an hour per advisor"
        )
    store_total = session.scalar(base) or 0
    if store_total >= policy.per_store_hour:
        raise Refused(429, ("body",), f"rate limit: {policy.per_store_hour} calls an hour")


def caller_id_for(store: Store, policy: OutboundPolicy) -> str:
    if policy.caller_id:
        return policy.caller_id
    if not store.dids:
        raise Refused(409, ("body",), f"{store.name} has no phone number to show as caller ID")
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


def new_call_row(
    session: Session,
    *,
    target: Target,
    caller_id: str,
    advisor_id: int | None,
    now: datetime,
    call_uuid: str | None = None,
) -> Call:
    """The call's record, made when the call is requested so its id can be read at once; the
    call writer fills it in from the worker's events (it finds it by `call_uuid`). The customer
    is the `caller` leg, as on inbound calls, so transcripts label the customer Caller."""
    call = Call(
        call_uuid=call_uuid or str(uuid.uuid4()),
        store_id=target.store.id,
        customer_id=target.customer.id if target.customer else None,
        advisor_id=advisor_id,
        direction="outbound",
        from_number=caller_id,
        to_number=target.number,
        started_at=now,
        flow_path=[],
    )
    call.legs.append(CallLeg(role="caller", party=target.number, started_at=now))
    session.add(call)
    session.flush()
    return call


def prepare_click_to_call(
    session: Session,
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
    """Check everything, write the call row and return the job (not yet queued; the caller
    commits, then `enqueue`s). Raises `Refused` with a reason the API returns as a 4xx."""
    now = now or utcnow()

    def visible(sid: int) -> bool:
        return store_ids is None or sid in store_ids

    customer = session.get(Customer, customer_id) if customer_id is not None else None
    if customer_id is not None and (customer is None or not visible(customer.store_id)):
        raise Refused(404, ("body", "customer_id"), "customer not found")
    number: str | None = None
    if phone is not None:
        number = try_e164(phone, region)
        if number is None:
            raise Refused(422, ("body", "phone"), f"not a phone number: {phone!r}")
    elif customer is not None:
        number = customer.phones[0].e164 if customer.phones else None
        if number is None:
            raise Refused(422, ("body", "customer_id"), "the customer has no phone number")
    else:
        raise Refused(422, ("body",), "give customer_id or phone")

    if customer is not None:
        store = customer.store
        if store_id is not None and store_id != store.id:
            raise Refused(422, ("body", "store_id"), "the customer belongs to another store")
    else:
        if store_id is None:
            mine = sorted(user.store_ids)
            if len(mine) != 1:
                raise Refused(422, ("body", "store_id"), "say which store is calling")
            store_id = mine[0]
        found = session.get(Store, store_id)
        if found is None or not visible(found.id):
            raise Refused(404, ("body", "store_id"), "store not found")
        store = found
        customer = _store_customer_by_phone(session, store.id, number)

    ro = None
    if repair_order_id is not None:
        ro = session.get(RepairOrder, repair_order_id)
        if ro is None or ro.store_id != store.id:
            raise Refused(404, ("body", "repair_order_id"), "repair order not found")
        if customer is not None and ro.customer_id != customer.id:
            raise Refused(422, ("body", "repair_order_id"), "the RO is another customer's")
    contact = user.sip_contact or user.phone
    if not contact:
        raise Refused(409, ("body",), "you have no phone number or SIP contact to ring first")
    if user.role != Role.admin and store.id not in user.store_ids:
        raise Refused(404, ("body", "store_id"), "store not found")

    policy = policy_for(store)
    target = Target(store, customer, number, ro)
    check_destination(session, target, policy)
    check_rate(session, store.id, user.id, policy, now=now)
    caller_id = caller_id_for(store, policy)
    call = new_call_row(session, target=target, caller_id=caller_id, advisor_id=user.id, now=now)
    return OutboundJob(
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


PICKUP_STATUS = "Ready for Pickup"
PICKUP_FLOW = "pickup_confirm"


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
    if PICKUP_STATUS not in (event.status, ro.status) or event.status != ro.status:
        return None
    if previous_status == PICKUP_STATUS:
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


def pickup_calls_since(session: Session, customer_id: int, since: datetime) -> int:
    """Proactive calls to this customer since `since`: outbound calls no advisor placed (a
    retry reuses its call row, so each counts once)."""
    return (
        session.scalar(
            select(func.count(Call.id)).where(
                Call.customer_id == customer_id,
                Call.direction == "outbound",
                Call.advisor_id.is_(None),
                Call.started_at >= since,
            )
        )
        or 0
    )


# --- sticky callbacks -------------------------------------------------------------------------


def last_contact(
    session: Session, store_id: int, phone: str, *, now: datetime | None = None
) -> LastContact | None:
    """The active advisor of this store who last called `phone` within the store's sticky
    window (answered or not: a customer returning a missed call wants that advisor too)."""
    store = session.get(Store, store_id)
    if store is None:
        return None
    policy = policy_for(store)
    if policy.sticky_hours <= 0:
        return None
    since = (now or utcnow()) - timedelta(hours=policy.sticky_hours)
    user = session.scalar(
        select(User)
        .join(Call, Call.advisor_id == User.id)
        .join(user_stores, user_stores.c.user_id == User.id)
        .where(
            Call.store_id == store_id,
            Call.direction == "outbound",
            Call.to_number == phone,
            Call.started_at >= since,
            user_stores.c.store_id == store_id,
            User.active.is_(True),
        )
        .order_by(Call.started_at.desc(), Call.id.desc())
        .limit(1)
    )
    if user is None:
        return None
    return LastContact(views.advisor_view(user), policy.sticky_mode)


# --- the queue (Redis) ------------------------------------------------------------------------


def enqueue(redis: Any, job: OutboundJob) -> None:
    """Hand the job to the SIP workers, or (`not_before`) to the delayed set they release it
    from when it is due, and record its first state (sync Redis client)."""
    pipe = redis.pipeline(transaction=False)
    if job.not_before is not None and job.not_before > utcnow():
        pipe.zadd(DELAYED, {job.model_dump_json(): job.not_before.timestamp()})
        state = {"state": "scheduled", "detail": f"not before {job.not_before.isoformat()}"}
    else:
        pipe.xadd(QUEUE, {"job": job.model_dump_json()}, maxlen=10_000, approximate=True)
        state = {"state": "queued", "detail": ""}
    wait_s = (job.not_before - utcnow()).total_seconds() if job.not_before else 0.0
    pipe.hset(STATE_KEY + job.call_uuid, mapping=state)
    pipe.expire(STATE_KEY + job.call_uuid, STATE_TTL_S + int(max(0.0, wait_s)))
    pipe.execute()


def read_state(redis: Any, call_uuid: str) -> dict[str, str] | None:
    raw = redis.hgetall(STATE_KEY + call_uuid)
    if not raw:
        return None
    return {_text(k): _text(v) for k, v in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def set_state(redis: Any, call_uuid: str, state: str, detail: str = "") -> None:
    """The worker's side (async Redis client)."""
    pipe = redis.pipeline(transaction=False)
    pipe.hset(STATE_KEY + call_uuid, mapping={"state": state, "detail": detail})
    pipe.expire(STATE_KEY + call_uuid, STATE_TTL_S)
    await pipe.execute()


async def ensure_group(redis: Any) -> None:
    try:
        await redis.xgroup_create(QUEUE, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def take_job(redis: Any, consumer: str, block_ms: int) -> tuple[str, OutboundJob] | None:
    """One job for this worker (it has checked its free slots), or None. A job that cannot be
    read is acked and dropped: it would block nobody, but nobody could place it either."""
    reply: Any = await redis.xreadgroup(GROUP, consumer, {QUEUE: ">"}, count=1, block=block_ms)
    if not reply:
        return None
    entries = reply[0][1] if isinstance(reply, list) else next(iter(reply.values()))[0]
    if not entries:
        return None
    entry_id, fields = entries[0]
    entry = _text(entry_id)
    try:
        job = OutboundJob.model_validate_json((fields or {}).get(b"job") or b"")
    except ValidationError:
        await redis.xack(QUEUE, GROUP, entry)
        return None
    return entry, job


async def done_job(redis: Any, entry: str) -> None:
    await redis.xack(QUEUE, GROUP, entry)


async def requeue(redis: Any, job: OutboundJob, *, delay_s: float = 0.0) -> None:
    """Put a job back: at once (this worker lost its free slot) or after `delay_s` (a retry)."""
    if delay_s <= 0:
        await redis.xadd(QUEUE, {"job": job.model_dump_json()}, maxlen=10_000, approximate=True)
        return
    due = utcnow().timestamp() + delay_s
    await redis.zadd(DELAYED, {job.model_dump_json(): due})


async def release_due(redis: Any) -> int:
    """Move retries that are due into the queue; ZREM decides which worker moves each one."""
    now = utcnow().timestamp()
    moved = 0
    for raw in await redis.zrangebyscore(DELAYED, "-inf", now, start=0, num=20):
        if await redis.zrem(DELAYED, raw):
            await redis.xadd(QUEUE, {"job": raw}, maxlen=10_000, approximate=True)
            moved += 1
    return moved
