"""The GM's morning view: what failed in a date range, per store and department, with the ids
of every call, callback and follow-up behind each number (so each figure links to them).

Figures (a range is whole local days in the store's zone, `first` to `last` inclusive):
- calls in: inbound calls started in the range; of those, answered (the flow or a person helped:
  `handled_by_ivr`, `transferred`), missed, abandoned, voicemails, failed;
- callbacks created / done in the range; overdue: due in the range and done late or still open
  past due (the weekly dashboard's rule); median time to callback, created → done, over the
  callbacks created in the range and done by now;
- avoidable: status-check calls while the caller's open ROs had sat unchanged past
  `stale_hours` (`records.reports.is_avoidable`);
- promises due in the range, by `ivr.policies.promise_state` as of the end of the range
  (or now, if earlier): kept (done by due + grace), late (done after that, even after the
  range), broken (still open past due + grace); grace is the store's
  `follow_ups["promise_grace_minutes"]` (default 15);
- declined-service follow-ups due in the range, done (closed with any outcome) in the range,
  and booked among those done.

Department: a call's `department_id`; a callback's call's department, else its owner's; a
follow-up's own. None (and a department of another store) means the store's service
department (a synthetic "Service" row if the store has none on record).

Beside the figures: the store's last retention run (usecases/retention.py), what it deleted
and up to which day, from the audit log; None when none has run.

Like records/reports.py, the arithmetic runs in Python over one store's rows for the range (a
few thousand at most), so SQLite and PostgreSQL give identical answers.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, aliased

from ivr.domain import AuditAction, DepartmentKind, Disposition, FollowUpKind, FollowUpOutcome
from ivr.policies import promise_state
from records import audit_log, followups
from records.models import Call, CallbackTask, Customer, Department, FollowUp, Store, User
from records.queries import Scope
from records.reports import (
    DEFAULT_STALE_HOURS,
    callback_overdue,
    is_avoidable,
    repair_orders_by_customer,
    week_bounds,
)

MAX_DAYS = 92  # a quarter: longer ranges are refused (the page and the JSON stay readable)
EARLIEST, LATEST = date(1970, 1, 1), date(9999, 1, 1)  # days a report may cover

# Every figure, in display order, with what its ids are ids of.
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("calls_in", "call", "Calls in"),
    ("answered", "call", "Answered"),
    ("missed", "call", "Missed"),
    ("abandoned", "call", "Abandoned"),
    ("voicemails", "call", "Voicemails"),
    ("failed", "call", "Failed"),
    ("avoidable", "call", "Avoidable status checks"),
    ("callbacks_created", "callback", "Callbacks created"),
    ("callbacks_done", "callback", "Callbacks done"),
    ("callbacks_overdue", "callback", "Callbacks overdue"),
    ("callbacks_timed", "callback", "Callbacks timed"),  # behind the median
    ("promises_kept", "follow_up", "Promises kept"),
    ("promises_late", "follow_up", "Promises late"),
    ("promises_broken", "follow_up", "Promises broken"),
    ("declined_due", "follow_up", "Declined service due"),
    ("declined_done", "follow_up", "Declined service done"),
    ("declined_booked", "follow_up", "Declined service booked"),
)
FIGURE_OF = {name: of for name, of, _ in FIGURES}
ANSWERED = frozenset({Disposition.handled_by_ivr.value, Disposition.transferred.value})
BY_DISPOSITION = {
    Disposition.missed.value: "missed",
    Disposition.abandoned.value: "abandoned",
    Disposition.voicemail.value: "voicemails",
    Disposition.failed.value: "failed",
}
KIND_ORDER = {k.value: i for i, k in enumerate(DepartmentKind)}


class RangeError(ValueError):
    """A date range the report refuses (the API answers 422 with this reason)."""


@dataclass
class DepartmentFigures:
    department_id: int | None  # None: the synthetic service row, or the store total
    kind: str
    name: str
    ids: dict[str, list[int]] = field(default_factory=lambda: {n: [] for n, _, _ in FIGURES})
    callback_minutes: list[float] = field(default_factory=list)

    def count(self, figure: str) -> int:
        return len(self.ids[figure])

    @property
    def median_callback_minutes(self) -> float | None:
        return round(statistics.median(self.callback_minutes), 1) if self.callback_minutes else None

    def to_json(self) -> dict[str, Any]:
        return {
            "department_id": self.department_id,
            "kind": self.kind,
            "name": self.name,
            "figures": {
                name: {"count": len(ids), "ids": sorted(ids), "of": FIGURE_OF[name]}
                for name, ids in self.ids.items()
            },
            "median_callback_minutes": self.median_callback_minutes,
        }


@dataclass
class MorningReport:
    store_id: int
    store_name: str
    timezone: str
    first: date
    last: date
    since: datetime
    until: datetime
    stale_hours: float
    grace_minutes: float
    departments: list[DepartmentFigures]
    total: DepartmentFigures
    retention: RetentionNote | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "store": {"id": self.store_id, "name": self.store_name, "timezone": self.timezone},
            "from": self.first.isoformat(),
            "to": self.last.isoformat(),
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "stale_hours": self.stale_hours,
            "promise_grace_minutes": self.grace_minutes,
            "departments": [d.to_json() for d in self.departments],
            "total": self.total.to_json(),
            "retention": self.retention.to_json() if self.retention else None,
        }


@dataclass(frozen=True)
class RetentionNote:
    """The store's last retention run: when, by whom, and what it deleted (its audit row)."""

    at: datetime
    by: str
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "by": self.by, **self.details}


def last_retention(session: Session, store_id: int) -> RetentionNote | None:
    row = audit_log.latest(session, store_id=store_id, action=AuditAction.retention)
    return None if row is None else RetentionNote(row.at, row.actor_name, dict(row.details))


def yesterday(store: Store, now: datetime) -> date:
    """The default range: the store's yesterday, in its own time zone."""
    return now.astimezone(ZoneInfo(store.timezone)).date() - timedelta(days=1)


def check_range(first: date, last: date) -> None:
    if first < EARLIEST or last > LATEST:  # the day's bounds in far zones would overflow
        raise RangeError(f"days lie between {EARLIEST} and {LATEST}")
    if last < first:
        raise RangeError(f"to ({last}) is before from ({first})")
    if (last - first).days + 1 > MAX_DAYS:
        raise RangeError(f"the range is {(last - first).days + 1} days; at most {MAX_DAYS}")


def morning_report(
    session: Session,
    *,
    store: Store,
    first: date,
    last: date,
    now: datetime,
    stale_hours: float = DEFAULT_STALE_HOURS,
) -> MorningReport:
    """The figures for local days `first`..`last` (inclusive) of one store; see the module."""
    check_range(first, last)
    since = week_bounds(first, store.timezone)[0]
    until = week_bounds(last + timedelta(days=1), store.timezone)[0]
    cutoff = min(until, now)
    grace = timedelta(minutes=followups.policy_for(store).promise_grace_minutes)

    departments = session.scalars(
        select(Department).where(Department.store_id == store.id).order_by(Department.id)
    ).all()
    rows = {
        d.id: DepartmentFigures(d.id, d.kind, d.name)
        for d in sorted(departments, key=lambda d: (KIND_ORDER.get(d.kind, 99), d.id))
    }
    service = next((d.id for d in departments if d.kind == DepartmentKind.service.value), None)
    if service is None:
        rows = {None: DepartmentFigures(None, DepartmentKind.service.value, "Service"), **rows}
    total = DepartmentFigures(None, "total", "All departments")

    def bucket(department_id: int | None) -> DepartmentFigures:
        """Its department's row; None, or another store's department: the service row."""
        found = rows.get(department_id) if department_id is not None else None
        return found if found is not None else rows[service]

    def add(department_id: int | None, figure: str, item_id: int) -> None:
        for target in (bucket(department_id), total):
            target.ids[figure].append(item_id)

    # Calls.
    calls = session.scalars(
        select(Call)
        .where(Call.store_id == store.id, Call.started_at >= since, Call.started_at < until)
        .order_by(Call.started_at, Call.id)
    ).all()
    ros = repair_orders_by_customer(
        session, customer_ids=[c.customer_id for c in calls if c.customer_id is not None]
    )
    stale = timedelta(hours=stale_hours)
    for call in calls:
        if call.direction != "inbound":
            continue
        add(call.department_id, "calls_in", call.id)
        if call.disposition in ANSWERED:
            add(call.department_id, "answered", call.id)
        if call.disposition in BY_DISPOSITION:
            add(call.department_id, BY_DISPOSITION[call.disposition], call.id)
        if is_avoidable(call, ros.get(call.customer_id or 0, []), stale):
            add(call.department_id, "avoidable", call.id)

    # Callbacks.
    owner = aliased(User)
    in_range = [
        and_(column >= since, column < until)
        for column in (CallbackTask.created_at, CallbackTask.done_at, CallbackTask.due_at)
    ]
    for task, call_department, owner_department in session.execute(
        select(CallbackTask, Call.department_id, owner.department_id)
        .outerjoin(Call, Call.id == CallbackTask.call_id)
        .outerjoin(owner, owner.id == CallbackTask.owner_id)
        .where(CallbackTask.store_id == store.id, or_(*in_range))
        .order_by(CallbackTask.id)
    ):
        department = call_department if call_department is not None else owner_department
        if since <= task.created_at < until:
            add(department, "callbacks_created", task.id)
            if task.done_at is not None:
                add(department, "callbacks_timed", task.id)
                minutes = (task.done_at - task.created_at).total_seconds() / 60
                for target in (bucket(department), total):
                    target.callback_minutes.append(minutes)
        if task.done_at is not None and since <= task.done_at < until:
            add(department, "callbacks_done", task.id)
        if since <= task.due_at < until and callback_overdue(task, now):
            add(department, "callbacks_overdue", task.id)

    # Follow-ups: promises and declined service.
    for item in session.scalars(
        select(FollowUp)
        .where(
            FollowUp.store_id == store.id,
            FollowUp.kind.in_([FollowUpKind.promise.value, FollowUpKind.declined_service.value]),
            or_(
                and_(FollowUp.due_at >= since, FollowUp.due_at < until),
                and_(FollowUp.done_at >= since, FollowUp.done_at < until),
            ),
        )
        .order_by(FollowUp.id)
    ):
        due_in_range = item.due_at is not None and since <= item.due_at < until
        if item.kind == FollowUpKind.promise.value:
            if due_in_range:
                state = promise_state(item, now=cutoff, grace=grace)
                if state in ("kept", "late", "broken"):
                    add(item.department_id, f"promises_{state}", item.id)
            continue
        if due_in_range:
            add(item.department_id, "declined_due", item.id)
        if item.done_at is not None and since <= item.done_at < until:
            add(item.department_id, "declined_done", item.id)
            if item.outcome == FollowUpOutcome.booked.value:
                add(item.department_id, "declined_booked", item.id)

    return MorningReport(
        store_id=store.id,
        store_name=store.name,
        timezone=store.timezone,
        first=first,
        last=last,
        since=since,
        until=until,
        stale_hours=stale_hours,
        grace_minutes=grace.total_seconds() / 60,
        departments=list(rows.values()),
        total=total,
        retention=last_retention(session, store.id),
    )


# --- the rows behind a figure (the web page's lists) ------------------------------------------


@dataclass(frozen=True)
class Item:
    """A callback or follow-up behind a figure, with what the list shows and links to."""

    id: int
    customer_id: int | None
    customer_name: str
    call_id: int | None
    what: str
    due_at: datetime | None
    done_at: datetime | None
    outcome: str | None
    owner_name: str | None


def items(session: Session, *, scope: Scope, of: str, ids: Sequence[int]) -> list[Item]:
    """Callbacks (`of="callback"`) or follow-ups (`"follow_up"`) by id, within `scope`."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    owner = aliased(User)
    out = []
    if of == "callback":
        for task, first, last, owner_name in session.execute(
            select(CallbackTask, Customer.first_name, Customer.last_name, owner.name)
            .outerjoin(Customer, Customer.id == CallbackTask.customer_id)
            .outerjoin(owner, owner.id == CallbackTask.owner_id)
            .where(CallbackTask.id.in_(wanted), scope.where(CallbackTask.store_id))
            .order_by(CallbackTask.due_at, CallbackTask.id)
        ):
            name = f"{first} {last}".strip() if first is not None else task.phone
            what = f"Callback: {task.reason}" if task.reason else "Callback"
            out.append(
                Item(
                    task.id,
                    task.customer_id,
                    name,
                    task.call_id,
                    what,
                    task.due_at,
                    task.done_at,
                    None,
                    owner_name,
                )
            )
        return out
    for row, first, last, owner_name in session.execute(
        select(FollowUp, Customer.first_name, Customer.last_name, owner.name)
        .join(Customer, Customer.id == FollowUp.customer_id)
        .outerjoin(owner, owner.id == FollowUp.owner_id)
        .where(FollowUp.id.in_(wanted), scope.where(FollowUp.store_id))
        .order_by(FollowUp.due_at, FollowUp.id)
    ):
        label = row.kind.replace("_", " ").capitalize()
        out.append(
            Item(
                row.id,
                row.customer_id,
                f"{first} {last}".strip(),
                None,
                f"{label}: {row.text}" if row.text else label,
                row.due_at,
                row.done_at,
                row.outcome,
                owner_name,
            )
        )
    return out
