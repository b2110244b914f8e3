"""Silent defectors: customers whose last visit is older than the store's window and who have
no open RO; `create_defector_follow_ups` turns the list into work."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, selectinload

from ivr.domain import (
    FollowUpKind,
)
from records.followups.common import policy_for, service_department_id
from records.models import (
    Customer,
    FollowUp,
    RepairOrder,
    Store,
)
from records.views import is_open_clause

# --- silent defectors ---------------------------------------------------------------------------


def months_before(at: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (the 31st becomes the month's
    last day)."""
    index = at.year * 12 + (at.month - 1) - months
    year, month = divmod(index, 12)
    day = min(at.day, calendar.monthrange(year, month + 1)[1])
    return at.replace(year=year, month=month + 1, day=day)


@dataclass(frozen=True)
class Defector:
    customer: Customer
    last_visit_at: datetime
    last_repair_order_id: int


def silent_defectors(
    session: Session,
    *,
    store: Store,
    now: datetime,
    months: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Defector]:
    """Customers whose last visit (latest RO opened or closed) is older than the window and
    who have no open RO, most recently lapsed first. Do-not-call customers are left out: the
    list is for calling them."""
    cutoff = months_before(now, months or policy_for(store).defector_months)
    visit = func.coalesce(RepairOrder.closed_at, RepairOrder.opened_at)
    open_count = func.sum(case((is_open_clause(), 1), else_=0))
    last = (
        select(
            RepairOrder.customer_id.label("customer_id"),
            func.max(visit).label("last_visit"),
            func.max(RepairOrder.id).label("last_ro"),
        )
        .where(RepairOrder.store_id == store.id)
        .group_by(RepairOrder.customer_id)
        .having(open_count == 0)
        .having(func.max(visit) < cutoff)
        .subquery()
    )
    rows = session.execute(
        select(Customer, last.c.last_visit, last.c.last_ro)
        .join(last, last.c.customer_id == Customer.id)
        .where(Customer.store_id == store.id, Customer.do_not_call.is_(False))
        .order_by(last.c.last_visit.desc(), Customer.id)
        .options(selectinload(Customer.phones), selectinload(Customer.advisor))
        .limit(limit)
        .offset(offset)
    ).all()
    result = []
    for customer, last_visit, last_ro in rows:
        if isinstance(last_visit, str):  # SQLite gives max() of a column back as text
            last_visit = datetime.fromisoformat(last_visit)
        if last_visit.tzinfo is None:
            last_visit = last_visit.replace(tzinfo=now.tzinfo)
        result.append(Defector(customer, last_visit, last_ro))
    return result


def create_defector_follow_ups(
    session: Session,
    *,
    store: Store,
    now: datetime,
    created_by_id: int | None,
    months: int | None = None,
    limit: int = 200,
) -> list[FollowUp]:
    """One win-back follow-up per defector, due now, owned by the customer's advisor; once per
    lapse (dedupe key "defector:<customer id>:<last visit day>"): a later visit that lapses
    again makes a new one. Returns the new ones only."""
    created = []
    department_id = service_department_id(session, store.id)
    for d in silent_defectors(session, store=store, now=now, months=months, limit=limit):
        key = f"defector:{d.customer.id}:{d.last_visit_at:%Y-%m-%d}"
        if session.scalar(select(FollowUp.id).where(FollowUp.dedupe_key == key)) is not None:
            continue
        fu = FollowUp(
            store_id=store.id,
            department_id=department_id,
            customer_id=d.customer.id,
            repair_order_id=d.last_repair_order_id,
            kind=FollowUpKind.defector.value,
            text=f"last visit {d.last_visit_at:%Y-%m-%d}",
            owner_id=d.customer.advisor_id,
            created_by_id=created_by_id,
            due_at=now,
            created_at=now,
            attempts=0,
            dedupe_key=key,
        )
        session.add(fu)
        created.append(fu)
    session.flush()
    return created
