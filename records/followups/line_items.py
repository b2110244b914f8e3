"""Repair-order line items and declined service: a declined item opens a `declined_service`
follow-up owned by the RO's advisor; approved or done later, it closes as booked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.domain import (
    FollowUpKind,
    FollowUpOutcome,
    LineStatus,
)
from records.followups.common import follow_up_entry, policy_for, service_department_id
from records.models import (
    Customer,
    FollowUp,
    RepairOrder,
    RoLineItem,
    Store,
    ThreadEntry,
    utcnow,
)

# --- line items and declined service -----------------------------------------------------------


@dataclass
class Changes:
    """What a write did: follow-ups created or closed, thread entries to announce."""

    created: list[FollowUp] = field(default_factory=list)
    closed: list[FollowUp] = field(default_factory=list)
    entries: list[ThreadEntry] = field(default_factory=list)


def set_line_item_status(
    session: Session,
    *,
    item: RoLineItem,
    status: LineStatus | str,
    at: datetime | None = None,
    now: datetime | None = None,
) -> Changes:
    """Set a line item's status (stamping `decided_at`) and keep its follow-up in step."""
    now = now or utcnow()
    status = LineStatus(status)
    if item.status != status.value:
        item.status = status.value
        item.decided_at = (at or now) if status != LineStatus.recommended else None
    elif at is not None and status != LineStatus.recommended:
        item.decided_at = at
    session.flush()
    return sync_line_item(session, item=item, now=now)


def sync_line_item(session: Session, *, item: RoLineItem, now: datetime | None = None) -> Changes:
    """A declined item gets its follow-up (once: dedupe key "declined:<item id>"); an approved
    or done item closes an open one as booked, with a line on the thread."""
    now = now or utcnow()
    changes = Changes()
    key = f"declined:{item.id}"
    existing = session.scalar(select(FollowUp).where(FollowUp.dedupe_key == key))
    ro = item.repair_order
    if item.status == LineStatus.declined and existing is None:
        store = session.get(Store, item.store_id)
        assert store is not None
        policy = policy_for(store)
        decided = item.decided_at or now
        customer = session.get(Customer, ro.customer_id)
        fu = FollowUp(
            store_id=item.store_id,
            department_id=service_department_id(session, item.store_id),
            customer_id=ro.customer_id,
            repair_order_id=ro.id,
            line_item_id=item.id,
            kind=FollowUpKind.declined_service.value,
            text=item.description,
            owner_id=ro.advisor_id or (customer.advisor_id if customer else None),
            due_at=decided + timedelta(days=policy.declined_delay_days),
            created_at=now,
            attempts=0,
            dedupe_key=key,
        )
        session.add(fu)
        session.flush()
        changes.created.append(fu)
    elif (
        item.status in (LineStatus.approved, LineStatus.done)
        and existing is not None
        and existing.done_at is None
    ):
        existing.outcome = FollowUpOutcome.booked.value
        existing.done_at = now
        changes.closed.append(existing)
        changes.entries.append(
            follow_up_entry(
                session,
                existing,
                author_id=None,
                body=f"RO {ro.number}: {item.description} {item.status}; "
                "declined-service follow-up closed as booked",
                at=now,
                extra={"reason": f"line item {item.status}"},
            )
        )
        session.flush()
    return changes


def add_line_item(
    session: Session,
    *,
    ro: RepairOrder,
    description: str,
    status: LineStatus | str = LineStatus.recommended,
    estimate_cents: int | None = None,
    dms_id: str | None = None,
    decided_at: datetime | None = None,
    now: datetime | None = None,
) -> tuple[RoLineItem, Changes]:
    now = now or utcnow()
    status = LineStatus(status)
    item = RoLineItem(
        store_id=ro.store_id,
        repair_order=ro,
        dms_id=dms_id,
        description=description,
        estimate_cents=estimate_cents,
        status=status.value,
        decided_at=(decided_at or now) if status != LineStatus.recommended else None,
    )
    session.add(item)
    session.flush()
    return item, sync_line_item(session, item=item, now=now)


def line_items(session: Session, *, ro_id: int) -> Sequence[RoLineItem]:
    return session.scalars(
        select(RoLineItem).where(RoLineItem.repair_order_id == ro_id).order_by(RoLineItem.id)
    ).all()


def line_item_by_dms_id(session: Session, *, ro_id: int, dms_id: str) -> RoLineItem | None:
    return session.scalar(
        select(RoLineItem).where(RoLineItem.repair_order_id == ro_id, RoLineItem.dms_id == dms_id)
    )
