"""Reading follow-ups: open and overdue (one rule for Python and SQL), the lists, one by id, and
the advisor's one work list (callbacks and follow-ups together)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, and_, case, select
from sqlalchemy.orm import Session, selectinload

from records.models import (
    CallbackTask,
    Customer,
    FollowUp,
    RepairOrder,
    RoLineItem,
    User,
)
from records.queries import Scope

# --- reading follow-ups --------------------------------------------------------------------------


def is_open(fu: FollowUp) -> bool:
    return fu.done_at is None


def is_overdue(fu: FollowUp, now: datetime) -> bool:
    return fu.done_at is None and fu.due_at is not None and fu.due_at < now


def overdue_clause(now: datetime) -> ColumnElement[bool]:
    """SQL twin of `is_overdue`, for filters and counts."""
    return and_(FollowUp.done_at.is_(None), FollowUp.due_at.is_not(None), FollowUp.due_at < now)


_LOADS = (
    selectinload(FollowUp.customer).selectinload(Customer.phones),
    selectinload(FollowUp.owner),
)


def list_follow_ups(
    session: Session,
    *,
    scope: Scope,
    now: datetime,
    owner_id: int | None = None,
    store_id: int | None = None,
    kind: str | None = None,
    state: Literal["open", "done", "all"] = "open",
    overdue: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Sequence[FollowUp]:
    """Overdue first, then by due time; promises still waiting for their event last."""
    stmt = select(FollowUp).where(scope.where(FollowUp.store_id))
    if owner_id is not None:
        stmt = stmt.where(FollowUp.owner_id == owner_id)
    if store_id is not None:
        stmt = stmt.where(FollowUp.store_id == store_id)
    if kind is not None:
        stmt = stmt.where(FollowUp.kind == kind)
    if state == "open":
        stmt = stmt.where(FollowUp.done_at.is_(None))
    elif state == "done":
        stmt = stmt.where(FollowUp.done_at.is_not(None))
    if overdue is True:
        stmt = stmt.where(overdue_clause(now))
    elif overdue is False:
        stmt = stmt.where(~overdue_clause(now))
    rank = case((overdue_clause(now), 0), (FollowUp.due_at.is_(None), 2), else_=1)
    stmt = stmt.order_by(rank, FollowUp.due_at, FollowUp.id).options(*_LOADS)
    return session.scalars(stmt.limit(limit).offset(offset)).all()


def get_follow_up(
    session: Session, *, scope: Scope, follow_up_id: int, owner_id: int | None = None
) -> FollowUp | None:
    stmt = select(FollowUp).where(FollowUp.id == follow_up_id, scope.where(FollowUp.store_id))
    if owner_id is not None:
        stmt = stmt.where(FollowUp.owner_id == owner_id)
    return session.scalar(stmt.options(*_LOADS))


def details(session: Session, rows: Sequence[FollowUp]) -> dict[int, tuple[str | None, str | None]]:
    """follow-up id → (RO number, line item description), in two queries for a whole list."""
    ro_ids = {fu.repair_order_id for fu in rows if fu.repair_order_id}
    item_ids = {fu.line_item_id for fu in rows if fu.line_item_id}
    numbers = dict(
        session.execute(
            select(RepairOrder.id, RepairOrder.number).where(RepairOrder.id.in_(sorted(ro_ids)))
        ).all()
        if ro_ids
        else []
    )
    items = dict(
        session.execute(
            select(RoLineItem.id, RoLineItem.description).where(RoLineItem.id.in_(sorted(item_ids)))
        ).all()
        if item_ids
        else []
    )
    return {
        fu.id: (numbers.get(fu.repair_order_id or 0), items.get(fu.line_item_id or 0))
        for fu in rows
    }


# --- the advisor's one list --------------------------------------------------------------------


@dataclass(frozen=True)
class WorkItem:
    """A callback or a follow-up, as the advisor's one list shows it."""

    kind: str  # "callback" or a FollowUpKind
    id: int
    store_id: int
    customer: Customer | None
    phone: str | None
    ro_number: str | None
    repair_order_id: int | None
    reason: str
    due_at: datetime | None
    overdue: bool
    trigger: str | None = None
    attempts: int = 0
    owner: User | None = None


def work_list(
    session: Session,
    *,
    scope: Scope,
    now: datetime,
    owner_id: int | None,
    overdue_only: bool = False,
    limit: int = 200,
) -> list[WorkItem]:
    """Open callbacks and follow-ups together: overdue first (oldest due first), then due,
    then promises waiting for their event. `owner_id=None`: everyone's (managers)."""
    cb_stmt = (
        select(CallbackTask)
        .where(scope.where(CallbackTask.store_id), CallbackTask.done_at.is_(None))
        .options(
            selectinload(CallbackTask.customer).selectinload(Customer.phones),
            selectinload(CallbackTask.owner),
        )
    )
    if owner_id is not None:
        cb_stmt = cb_stmt.where(CallbackTask.owner_id == owner_id)
    if overdue_only:
        cb_stmt = cb_stmt.where(CallbackTask.due_at < now)
    callbacks = session.scalars(cb_stmt.order_by(CallbackTask.due_at).limit(limit)).all()
    follow_ups = list_follow_ups(
        session,
        scope=scope,
        now=now,
        owner_id=owner_id,
        overdue=True if overdue_only else None,
        limit=limit,
    )
    info = details(session, follow_ups)
    items = [
        WorkItem(
            kind="callback",
            id=t.id,
            store_id=t.store_id,
            customer=t.customer,
            phone=t.phone,
            ro_number=None,
            repair_order_id=None,
            reason=t.reason or "call back",
            due_at=t.due_at,
            overdue=t.due_at < now,
            owner=t.owner,
        )
        for t in callbacks
    ]
    for fu in follow_ups:
        number, item = info[fu.id]
        items.append(
            WorkItem(
                kind=fu.kind,
                id=fu.id,
                store_id=fu.store_id,
                customer=fu.customer,
                phone=fu.customer.phones[0].e164 if fu.customer.phones else None,
                ro_number=number,
                repair_order_id=fu.repair_order_id,
                reason=item or fu.text,
                due_at=fu.due_at,
                overdue=is_overdue(fu, now),
                trigger=fu.trigger if fu.due_at is None else None,
                attempts=fu.attempts,
                owner=fu.owner,
            )
        )

    def order(w: WorkItem) -> tuple[int, datetime, str, int]:
        rank = 0 if w.overdue else (2 if w.due_at is None else 1)
        return rank, w.due_at or now, w.kind, w.id

    return sorted(items, key=order)[:limit]
