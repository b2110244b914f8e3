"""Promises: due at a time, or waiting on a DMS event (`part_arrived`, `status:Ready for
Pickup`) until `fire_trigger` makes them due at the event's time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.domain import (
    FollowUpKind,
)
from records.followups.common import STATUS_TRIGGER, TRIGGER_NAME, service_department_id
from records.models import (
    FollowUp,
    RepairOrder,
    Store,
    utcnow,
)
from records.queries import allowed_statuses

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
        department_id=department_id or service_department_id(session, ro.store_id),
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
