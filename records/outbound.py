"""Outbound calls in SQL: the store's policy, the call row a masked or proactive call gets
when it is asked for, the counts the rate limits and the daily pickup cap read, and the
sticky-callback lookup (which advisor last called this number).

The workflows and their guards are usecases/outbound.py; the job queue is events/outbound.py.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ivr.flow.records import LastContact
from ivr.policies import OutboundPolicy
from records import views
from records.models import (
    Call,
    CallLeg,
    Customer,
    RepairOrder,
    Store,
    User,
    user_stores,
    utcnow,
)

log = logging.getLogger(__name__)


def policy_for(store: Store) -> OutboundPolicy:
    """The store's policy; a bad stored value falls back to the defaults (the strictest)."""
    try:
        return OutboundPolicy.model_validate(store.outbound or {})
    except ValidationError:
        return OutboundPolicy()


# --- the call row ------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    store: Store
    customer: Customer | None
    number: str
    ro: RepairOrder | None


def customer_by_phone(session: Session, store_id: int, number: str) -> Customer | None:
    customer_id = views.find_customer_id_by_phone(session, store_id, number)
    return session.get(Customer, customer_id) if customer_id is not None else None


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


def outbound_calls_since(
    session: Session, store_id: int, since: datetime, *, advisor_id: int | None = None
) -> int:
    """The store's outbound calls since `since` (this advisor's only, with `advisor_id`)."""
    query = select(func.count(Call.id)).where(
        Call.store_id == store_id, Call.direction == "outbound", Call.started_at >= since
    )
    if advisor_id is not None:
        query = query.where(Call.advisor_id == advisor_id)
    return session.scalar(query) or 0


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
