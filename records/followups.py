"""Follow-up queues: the calls somebody owes a customer beyond a missed call's callback.

The one place that creates and works `FollowUp` rows:

    line item declined (import, API, DMS webhook) ─▶ declined_service follow-up, due after the
        store's delay, owned by the RO's advisor; idempotent ("declined:<item id>"); the item
        approved or done later closes it as booked
    promise (API, flow) ─▶ due at a time, or waiting on a DMS event (`part_arrived`,
        `status:Ready for Pickup`) until `fire_trigger` makes it due at the event's time
    silent defectors ─▶ customers whose last visit is older than the store's window and who
        have no open RO; `create_defector_follow_ups` turns the list into work
    working one ─▶ `record_outcome`: booked / not_interested / done close it, no_answer retries
        it (closed as no_answer after `max_attempts`); every outcome is a `follow_up` entry on
        the customer's thread

Overdue is `due_at < now` while open, for owners and managers alike. Kept / late / broken
(`promise_state`) is read off `done_at` against `due_at` plus the store's grace.

Functions here flush and never commit: the importer applies each row in a savepoint, the API
commits and then publishes `thread.updated` for the entries returned (see `OutcomeResult`).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session, selectinload

from ivr.domain import (
    DepartmentKind,
    FollowUpKind,
    FollowUpOutcome,
    LineStatus,
    ThreadKind,
)
from ivr.policies import FollowUpPolicy
from records.models import (
    CallbackTask,
    Customer,
    Department,
    FollowUp,
    RepairOrder,
    RoLineItem,
    Store,
    ThreadEntry,
    User,
    utcnow,
)
from records.queries import Scope, allowed_statuses
from records.views import is_open_clause

CLOSING = frozenset({FollowUpOutcome.booked, FollowUpOutcome.not_interested, FollowUpOutcome.done})
TRIGGER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # a DMS event: part_arrived, loaner_back
STATUS_TRIGGER = "status:"  # + a status name: the RO reached that status


def policy_for(store: Store) -> FollowUpPolicy:
    """The store's policy; a bad stored value falls back to the defaults."""
    try:
        return FollowUpPolicy.model_validate(store.follow_ups or {})
    except ValidationError:
        return FollowUpPolicy()


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


# --- line items and declined service -----------------------------------------------------------


@dataclass
class Changes:
    """What a write did: follow-ups created or closed, thread entries to announce."""

    created: list[FollowUp] = field(default_factory=list)
    closed: list[FollowUp] = field(default_factory=list)
    entries: list[ThreadEntry] = field(default_factory=list)


def _service_department_id(session: Session, store_id: int) -> int | None:
    return session.scalar(
        select(Department.id).where(
            Department.store_id == store_id, Department.kind == DepartmentKind.service.value
        )
    )


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
            department_id=_service_department_id(session, item.store_id),
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
            _entry(
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


# --- promises -----------------------------------------------------------------------------------


def check_trigger(store: Store, trigger: str) -> str:
    """`part_arrived`-style names, or `status:<a status of this store>`; ValueError says why."""
    if trigger.startswith(STATUS_TRIGGER):
        wanted = trigger.removeprefix(STATUS_TRIGGER).strip()
        for status in allowed_statuses(store):
            if status.lower() == wanted.lower():
                return STATUS_TRIGGER + status
        raise ValueError(
            f"unknown status {wanted!r}; this store uses: {', '.join(allowed_statuses(store))}"
        )
    if not TRIGGER_NAME.match(trigger):
        raise ValueError(
            f"{trigger!r} is not an event name (lowercase words joined by _, like "
            "part_arrived) or status:<status>"
        )
    return trigger


def create_promise(
    session: Session,
    *,
    ro: RepairOrder,
    text: str,
    created_by_id: int | None,
    owner_id: int | None = None,
    due_at: datetime | None = None,
    trigger: str | None = None,
    department_id: int | None = None,
    now: datetime | None = None,
) -> FollowUp:
    """A promise on an RO: due at `due_at`, or waiting for `trigger` (exactly one of them).

    The owner defaults to whoever made it, else the RO's advisor (a promise made by a flow).
    """
    now = now or utcnow()
    if (due_at is None) == (trigger is None):
        raise ValueError("give either due_at or trigger")
    store = session.get(Store, ro.store_id)
    assert store is not None
    if trigger is not None:
        trigger = check_trigger(store, trigger)
    fu = FollowUp(
        store_id=ro.store_id,
        department_id=department_id or _service_department_id(session, ro.store_id),
        customer_id=ro.customer_id,
        repair_order_id=ro.id,
        kind=FollowUpKind.promise.value,
        text=text,
        owner_id=owner_id or created_by_id or ro.advisor_id,
        created_by_id=created_by_id,
        trigger=trigger,
        due_at=due_at,
        created_at=now,
        attempts=0,
    )
    session.add(fu)
    session.flush()
    return fu


def fire_trigger(session: Session, *, ro: RepairOrder, event: str, at: datetime) -> list[FollowUp]:
    """The DMS event came: the RO's promises waiting for it are due at once (at its time)."""
    waiting = session.scalars(
        select(FollowUp).where(
            FollowUp.repair_order_id == ro.id,
            FollowUp.trigger == event,
            FollowUp.due_at.is_(None),
            FollowUp.done_at.is_(None),
        )
    ).all()
    for fu in waiting:
        fu.triggered_at = at
        fu.due_at = at
    session.flush()
    return list(waiting)


def status_trigger(status: str) -> str:
    return STATUS_TRIGGER + status


# --- working a follow-up ------------------------------------------------------------------------


@dataclass(frozen=True)
class OutcomeResult:
    follow_up: FollowUp
    entry: ThreadEntry
    closed: bool


class AlreadyClosed(Exception):
    """An outcome for a follow-up that is already closed (the API answers 409)."""


def record_outcome(
    session: Session,
    *,
    follow_up: FollowUp,
    outcome: FollowUpOutcome | str,
    user_id: int | None,
    note: str | None = None,
    now: datetime | None = None,
) -> OutcomeResult:
    """One attempt at the call: booked, not_interested or done close it; no_answer makes it
    due again after the store's retry delay, and closes it as no_answer at `max_attempts`."""
    now = now or utcnow()
    outcome = FollowUpOutcome(outcome)
    if follow_up.done_at is not None:
        raise AlreadyClosed(f"this follow-up was closed ({follow_up.outcome})")
    store = session.get(Store, follow_up.store_id)
    assert store is not None
    policy = policy_for(store)
    follow_up.attempts = (follow_up.attempts or 0) + 1
    closed = outcome in CLOSING or follow_up.attempts >= policy.max_attempts
    label = outcome.value.replace("_", " ")
    if closed:
        follow_up.outcome = outcome.value
        follow_up.done_at = now
        follow_up.done_by_id = user_id
        body = f"{_title(follow_up)}: {label}"
        if outcome == FollowUpOutcome.no_answer:
            body += f" (attempt {follow_up.attempts} of {policy.max_attempts}; closed)"
    else:
        follow_up.due_at = now + timedelta(days=policy.no_answer_retry_days)
        body = (
            f"{_title(follow_up)}: {label} (attempt {follow_up.attempts} of "
            f"{policy.max_attempts}); due again {follow_up.due_at:%Y-%m-%d}"
        )
    if note:
        body += f". {note}"
    entry = _entry(session, follow_up, author_id=user_id, body=body, at=now, extra={"note": note})
    entry.data = {**entry.data, "outcome": outcome.value, "closed": closed}
    session.flush()
    return OutcomeResult(follow_up, entry, closed)


KIND_TITLES = {
    FollowUpKind.declined_service.value: "Declined service",
    FollowUpKind.promise.value: "Promise",
    FollowUpKind.defector.value: "Win-back call",
}


def _title(fu: FollowUp) -> str:
    title = KIND_TITLES.get(fu.kind, "Follow-up")
    return f"{title} ({fu.text})" if fu.text else title


def _entry(
    session: Session,
    fu: FollowUp,
    *,
    author_id: int | None,
    body: str,
    at: datetime,
    extra: dict[str, Any],
) -> ThreadEntry:
    entry = ThreadEntry(
        store_id=fu.store_id,
        customer_id=fu.customer_id,
        kind=ThreadKind.follow_up.value,
        at=at,
        author_id=author_id,
        body=body,
        data={
            "follow_up_id": fu.id,
            "follow_up_kind": fu.kind,
            "outcome": fu.outcome,
            "attempts": fu.attempts,
            "repair_order_id": fu.repair_order_id,
            "line_item_id": fu.line_item_id,
            "due_at": fu.due_at.isoformat() if fu.due_at else None,
            **extra,
        },
    )
    session.add(entry)
    return entry


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
    department_id = _service_department_id(session, store.id)
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
