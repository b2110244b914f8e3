"""Managers' reports: the call log, the weekly dashboard, the weekly thread audit.

Every function takes a store (already checked against the caller's scope by the route) or a
`Scope`, and reads in a handful of queries; the per-call arithmetic (which advisor a call
counts for, whether it was avoidable) runs in Python over one week of one store's calls, which
is a few thousand rows at most and keeps SQLite and PostgreSQL answers identical.

Attribution: a call counts for the advisor who took it (`Call.advisor_id`), else for the
customer's assigned advisor (the one who owed the update), else for nobody ("unassigned").

Avoidable call: an inbound call that ran the status-check flow (a `status_check.` step in its
flow path) while none of the customer's open repair orders had changed status for more than
`stale_hours`: a proactive update would have answered the question before the phone rang.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased, selectinload

from ivr.domain import STANDARD_STATUSES, ThreadKind
from records.models import (
    Call,
    CallbackTask,
    Customer,
    Recording,
    RepairOrder,
    Store,
    ThreadEntry,
    Transcript,
    TranscriptSegment,
    User,
    user_stores,
)
from records.queries import Scope

STATUS_CHECK_PREFIX = "status_check."
DEFAULT_STALE_HOURS = 4

# The weekly audit's checklist, in the words service managers use.
CHECKLIST: tuple[tuple[str, str], ...] = (
    ("status_flow", "Clean status flow"),
    ("notes", "Notes on the thread"),
    ("approvals", "Approval paper trail"),
    ("handoffs", "@ handoffs"),
    ("follow_up", "Closing follow-up message"),
)


# --- weeks --------------------------------------------------------------------------------


def week_start(day: date) -> date:
    """The Monday of `day`'s week."""
    return day - timedelta(days=day.weekday())


def week_bounds(monday: date, timezone: str) -> tuple[datetime, datetime]:
    """Monday 00:00 to the next Monday 00:00 in the store's zone, as UTC instants."""
    tz = ZoneInfo(timezone)
    start = datetime.combine(monday, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(monday + timedelta(days=7), datetime.min.time(), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


# --- call log -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CallRow:
    call: Call
    customer_name: str | None
    advisor_name: str | None


def call_log(
    session: Session,
    *,
    scope: Scope,
    store_id: int | None = None,
    dispositions: Sequence[str] = (),
    advisor_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    call_ids: Sequence[int] = (),
    limit: int,
    offset: int = 0,
) -> list[CallRow]:
    """Calls newest first; `since` inclusive, `until` exclusive; `limit + 1` for paging;
    `call_ids` narrows to those calls (the calls behind a figure of the morning view)."""
    advisor = aliased(User)
    stmt = (
        select(Call, Customer.first_name, Customer.last_name, advisor.name)
        .outerjoin(Customer, Customer.id == Call.customer_id)
        .outerjoin(advisor, advisor.id == Call.advisor_id)
        .where(scope.where(Call.store_id))
    )
    if store_id is not None:
        stmt = stmt.where(Call.store_id == store_id)
    if dispositions:
        stmt = stmt.where(Call.disposition.in_(sorted(set(dispositions))))
    if advisor_id is not None:
        stmt = stmt.where(Call.advisor_id == advisor_id)
    if call_ids:
        stmt = stmt.where(Call.id.in_(sorted(set(call_ids))))
    if since is not None:
        stmt = stmt.where(Call.started_at >= since)
    if until is not None:
        stmt = stmt.where(Call.started_at < until)
    stmt = stmt.order_by(Call.started_at.desc(), Call.id.desc()).limit(limit).offset(offset)
    return [
        CallRow(call, f"{first} {last}".strip() if first is not None else None, adv)
        for call, first, last, adv in session.execute(stmt)
    ]


def store_staff(session: Session, *, store_id: int) -> list[User]:
    """Active users of one store, advisors first, by name (filters and dashboards)."""
    users = session.scalars(
        select(User)
        .join(user_stores, user_stores.c.user_id == User.id)
        .where(user_stores.c.store_id == store_id, User.active.is_(True))
    ).all()
    return sorted(users, key=lambda u: (u.role != "advisor", u.name, u.id))


# --- dashboard ----------------------------------------------------------------------------


@dataclass
class Tally:
    calls: int = 0
    missed: int = 0
    abandoned: int = 0
    callbacks_done: int = 0
    callbacks_overdue: int = 0
    avoidable: int = 0


@dataclass
class AdvisorWeek:
    advisor_id: int | None  # None: calls nobody owns
    name: str
    tally: Tally = field(default_factory=Tally)


@dataclass
class Dashboard:
    since: datetime
    until: datetime
    stale_hours: float
    advisors: list[AdvisorWeek]
    total: Tally
    days: list[tuple[date, Tally]]  # per local day of the week: calls, missed, avoidable


def is_status_check(call: Call) -> bool:
    return call.direction == "inbound" and any(
        step.startswith(STATUS_CHECK_PREFIX) for step in call.flow_path or []
    )


def _last_change_before(ro: RepairOrder, at: datetime) -> datetime | None:
    """When the RO last changed status before `at`; None if it was not open then."""
    if ro.opened_at > at or (ro.closed_at is not None and ro.closed_at <= at):
        return None
    changes = [e.at for e in ro.events if e.at <= at]
    return max(changes) if changes else ro.opened_at


def callback_overdue(task: CallbackTask, now: datetime) -> bool:
    """Done late, or still open past its due time: the dashboard's and the morning view's rule
    (each counts the callbacks due in its range)."""
    if task.done_at is None:
        return task.due_at < now
    return task.done_at > task.due_at


def is_avoidable(call: Call, repair_orders: Sequence[RepairOrder], stale: timedelta) -> bool:
    """A status-check call while every open RO of the caller had sat unchanged past `stale`."""
    if not is_status_check(call):
        return False
    changes = [c for ro in repair_orders if (c := _last_change_before(ro, call.started_at))]
    return bool(changes) and call.started_at - max(changes) > stale


def repair_orders_by_customer(
    session: Session, *, customer_ids: Sequence[int]
) -> dict[int, list[RepairOrder]]:
    """Every RO (with its status events) of these customers, for `is_avoidable`, in one query."""
    wanted = sorted(set(customer_ids))
    ros_by_customer: dict[int, list[RepairOrder]] = {}
    if wanted:
        for ro in session.scalars(
            select(RepairOrder)
            .where(RepairOrder.customer_id.in_(wanted))
            .options(selectinload(RepairOrder.events))
        ):
            ros_by_customer.setdefault(ro.customer_id, []).append(ro)
    return ros_by_customer


def weekly_dashboard(
    session: Session,
    *,
    store: Store,
    monday: date,
    stale_hours: float = DEFAULT_STALE_HOURS,
    now: datetime,
) -> Dashboard:
    since, until = week_bounds(monday, store.timezone)
    tz = ZoneInfo(store.timezone)
    staff = [u for u in store_staff(session, store_id=store.id) if u.role == "advisor"]
    rows: dict[int | None, AdvisorWeek] = {u.id: AdvisorWeek(u.id, u.name) for u in staff}

    def row(advisor_id: int | None) -> AdvisorWeek:
        if advisor_id not in rows:
            name = "Unassigned"
            if advisor_id is not None:
                user = session.get(User, advisor_id)
                name = user.name if user is not None else f"user {advisor_id}"
            rows[advisor_id] = AdvisorWeek(advisor_id, name)
        return rows[advisor_id]

    calls = session.execute(
        select(Call, Customer.advisor_id)
        .outerjoin(Customer, Customer.id == Call.customer_id)
        .where(Call.store_id == store.id, Call.started_at >= since, Call.started_at < until)
        .order_by(Call.started_at, Call.id)
    ).all()
    ros_by_customer = repair_orders_by_customer(
        session, customer_ids=[c.customer_id for c, _ in calls if c.customer_id is not None]
    )

    days = {(monday + timedelta(days=i)): Tally() for i in range(7)}
    total = Tally()
    stale = timedelta(hours=stale_hours)
    for call, customer_advisor in calls:
        tallies = [row(call.advisor_id or customer_advisor).tally, total]
        tallies.append(days[call.started_at.astimezone(tz).date()])
        avoidable = is_avoidable(call, ros_by_customer.get(call.customer_id or 0, []), stale)
        for t in tallies:
            t.calls += 1
            t.missed += call.disposition == "missed"
            t.abandoned += call.disposition == "abandoned"
            t.avoidable += avoidable

    done = session.scalars(
        select(CallbackTask).where(
            CallbackTask.store_id == store.id,
            CallbackTask.done_at >= since,
            CallbackTask.done_at < until,
        )
    ).all()
    for task in done:
        for t in (row(task.owner_id).tally, total):
            t.callbacks_done += 1
    due = session.scalars(
        select(CallbackTask).where(
            CallbackTask.store_id == store.id,
            CallbackTask.due_at >= since,
            CallbackTask.due_at < until,
        )
    ).all()
    for task in (t for t in due if callback_overdue(t, now)):
        for t in (row(task.owner_id).tally, total):
            t.callbacks_overdue += 1

    ordered = [rows[u.id] for u in staff] + [
        r for key, r in rows.items() if key not in {u.id for u in staff}
    ]
    return Dashboard(since, until, stale_hours, ordered, total, sorted(days.items()))


# --- weekly thread audit ------------------------------------------------------------------


@dataclass(frozen=True)
class AuditPick:
    advisor: User
    customer: Customer | None
    entries: int  # thread entries that week
    audit: ThreadEntry | None  # this week's audit, if already saved


def audit_picks(session: Session, *, store: Store, monday: date) -> list[AuditPick]:
    """One thread per advisor for the week: their customer with the busiest thread that week
    (ties: the most recent activity, then the lowest id), and the audit saved for it, if any."""
    since, until = week_bounds(monday, store.timezone)
    staff = [u for u in store_staff(session, store_id=store.id) if u.role == "advisor"]
    counts: dict[int, tuple[int, datetime]] = {}
    for customer_id, at in session.execute(
        select(ThreadEntry.customer_id, ThreadEntry.at).where(
            ThreadEntry.store_id == store.id,
            ThreadEntry.customer_id.is_not(None),
            ThreadEntry.kind != ThreadKind.audit.value,
            ThreadEntry.at >= since,
            ThreadEntry.at < until,
        )
    ):
        n, last = counts.get(customer_id, (0, at))
        counts[customer_id] = (n + 1, max(last, at))
    customers = (
        session.scalars(select(Customer).where(Customer.id.in_(sorted(counts)))).all()
        if counts
        else []
    )
    audits = _audits_for_week(session, store_id=store.id, monday=monday)
    picks = []
    for advisor in staff:
        mine = [c for c in customers if c.advisor_id == advisor.id]
        mine.sort(key=lambda c: (-counts[c.id][0], -counts[c.id][1].timestamp(), c.id))
        chosen = mine[0] if mine else None
        audit = audits.get(chosen.id) if chosen is not None else None
        picks.append(AuditPick(advisor, chosen, counts[chosen.id][0] if chosen else 0, audit))
    return picks


def _audits_for_week(session: Session, *, store_id: int, monday: date) -> dict[int, ThreadEntry]:
    rows = session.scalars(
        select(ThreadEntry)
        .where(ThreadEntry.store_id == store_id, ThreadEntry.kind == ThreadKind.audit.value)
        .order_by(ThreadEntry.at, ThreadEntry.id)
    ).all()
    week = monday.isoformat()
    return {e.customer_id: e for e in rows if e.customer_id and (e.data or {}).get("week") == week}


def suggest_checklist(entries: Sequence[ThreadEntry]) -> dict[str, bool]:
    """What the thread itself shows for each checklist item; the manager confirms or corrects.

    - status flow: status changes only move forward along the lane (no going back);
    - notes: at least one note;
    - approvals: a note that records an approval ("approved", "approval", "authorized");
    - handoffs: a note with an @mention;
    - follow-up: a note or outbound call after the RO reached Ready for Pickup or closed.
    """
    ordered = sorted(entries, key=lambda e: (e.at, e.id))
    lane = {s: i for i, s in enumerate(STANDARD_STATUSES)}
    positions = [
        lane[_new_status(e)]
        for e in ordered
        if e.kind == ThreadKind.status_change.value and _new_status(e) in lane
    ]
    notes = [e for e in ordered if e.kind == ThreadKind.note.value]
    words = ("approved", "approval", "authorized", "authorised")
    ready_at = next(
        (
            e.at
            for e in ordered
            if e.kind in (ThreadKind.status_change.value, ThreadKind.pickup.value)
            and _new_status(e) in ("Ready for Pickup", "Picked Up", "Closed")
        ),
        None,
    )
    follow_up = ready_at is not None and any(
        e.at >= ready_at
        and (
            e.kind == ThreadKind.note.value
            or (e.kind == ThreadKind.call.value and (e.data or {}).get("direction") == "outbound")
        )
        for e in ordered
    )
    return {
        "status_flow": bool(positions) and positions == sorted(positions),
        "notes": bool(notes),
        "approvals": any(any(w in e.body.lower() for w in words) for e in notes),
        "handoffs": any(e.mentions or (e.data or {}).get("mentions") for e in notes),
        "follow_up": follow_up,
    }


def _new_status(entry: ThreadEntry) -> str:
    """The status a status-change entry moved to (`to` from the API, `status` from imports)."""
    data = entry.data or {}
    return str(data.get("to") or data.get("status") or "")


def audit_score(checks: Mapping[str, bool]) -> int:
    """Percent of the checklist met."""
    return round(100 * sum(bool(checks.get(key)) for key, _ in CHECKLIST) / len(CHECKLIST))


def save_audit(
    session: Session,
    *,
    customer: Customer,
    author: User,
    monday: date,
    advisor_id: int | None,
    checks: Mapping[str, bool],
    comment: str,
) -> ThreadEntry:
    """The audit as an entry on the thread (kind `audit`), so it reads in the timeline."""
    passed = {key: bool(checks.get(key)) for key, _ in CHECKLIST}
    score = audit_score(passed)
    missing = [label for key, label in CHECKLIST if not passed[key]]
    body = f"Weekly audit ({monday.isoformat()}): {score}%"
    body += f"; missing: {', '.join(missing)}" if missing else "; all items met"
    if comment:
        body += f". {comment}"
    data: dict[str, Any] = {
        "week": monday.isoformat(),
        "advisor_id": advisor_id,
        "checklist": passed,
        "score": score,
        "comment": comment,
    }
    entry = ThreadEntry(
        store_id=customer.store_id,
        customer_id=customer.id,
        kind=ThreadKind.audit.value,
        author_id=author.id,
        body=body,
        data=data,
    )
    session.add(entry)
    session.commit()
    return entry


# --- what a thread page plays -------------------------------------------------------------


@dataclass
class CallMedia:
    recordings: list[Recording] = field(default_factory=list)
    segments: list[TranscriptSegment] = field(default_factory=list)


def call_media(session: Session, *, call_ids: Sequence[int]) -> dict[int, CallMedia]:
    """Recordings and transcript lines per call, in two queries for a whole thread page."""
    wanted = sorted(set(call_ids))
    media: dict[int, CallMedia] = {call_id: CallMedia() for call_id in wanted}
    if not wanted:
        return media
    for rec in session.scalars(
        select(Recording).where(Recording.call_id.in_(wanted)).order_by(Recording.id)
    ):
        media[rec.call_id].recordings.append(rec)
    for call_id, segment in session.execute(
        select(Transcript.call_id, TranscriptSegment)
        .join(Transcript, Transcript.id == TranscriptSegment.transcript_id)
        .where(Transcript.call_id.in_(wanted))
        .order_by(TranscriptSegment.start_s, TranscriptSegment.id)
    ):
        media[call_id].segments.append(segment)
    return media
