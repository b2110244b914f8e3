"""A repair order's status changes: the whole workflow, for the DMS webhook and the importer.

    record_status_change   status event + thread entry, waiting promises made due, the proactive
                           pickup call's row (usecases/outbound.py decides whether there is one);
                           flushed, not committed, so the importer can run it in a row's savepoint
    Announcements.send     after the commit: `ro.status_changed`, `thread.updated`,
                           `follow_up.changed` on the bus, the pickup job on the outbound queue
    change_status          both, for one change (the webhook)

The same change (same status, same time) twice is a duplicate: nothing is written, announced or
called twice, whichever way it came.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from events.bus import EventBus
from events.outbound import OutboundJob
from records import followups, queries
from records.models import FollowUp, RepairOrder, Store
from usecases.announce import Announcements
from usecases.errors import Invalid
from usecases.outbound import prepare_pickup_call

log = logging.getLogger(__name__)

STATUS_CHANGED = "ro.status_changed"


@dataclass
class StatusOutcome:
    change: queries.StatusChange
    fired: list[FollowUp] = field(default_factory=list)
    pickup: OutboundJob | None = None
    said: Announcements = field(default_factory=Announcements)

    @property
    def duplicate(self) -> bool:
        return self.change.duplicate


def check_status(store: Store, status: str) -> None:
    """A status the store uses (standard, closing, or one of its custom ones)."""
    allowed = queries.allowed_statuses(store)
    if status not in allowed:
        raise Invalid(
            f"unknown status {status!r}; this store uses: {', '.join(allowed)}",
            ("body", "status"),
        )


def record_status_change(
    session: Session,
    *,
    ro: RepairOrder,
    status: str,
    at: datetime,
    note: str | None,
    source: str,
    author_id: int | None = None,
    now: datetime | None = None,
) -> StatusOutcome:
    """Write everything a status change means, without committing; `outcome.said` holds what
    to announce once the caller has committed."""
    change = queries.change_ro_status(
        session, ro=ro, status=status, at=at, note=note, source=source, author_id=author_id
    )
    outcome = StatusOutcome(change)
    if change.duplicate:
        return outcome
    outcome.fired = followups.fire_trigger(
        session, ro=ro, event=followups.status_trigger(status), at=at
    )
    outcome.pickup = _pickup_call(session, change, now)
    said = outcome.said
    said.event(
        ro.store_id,
        STATUS_CHANGED,
        {
            "repair_order_id": ro.id,
            "number": ro.number,
            "customer_id": ro.customer_id,
            "status": change.event.status,
            "current_status": ro.status,
            "previous_status": change.previous_status,
            "at": change.event.at.isoformat(),
            "note": change.event.note,
        },
    )
    said.thread_entry(change.entry)
    said.follow_ups(ro.store_id, outcome.fired, [])
    if outcome.pickup is not None:
        said.jobs.append(outcome.pickup)
    return outcome


def _pickup_call(
    session: Session, change: queries.StatusChange, now: datetime | None
) -> OutboundJob | None:
    """The pickup call's row, in its own savepoint: the status change never fails for it."""
    try:
        with session.begin_nested():
            return prepare_pickup_call(
                session, event=change.event, previous_status=change.previous_status, now=now
            )
    except Exception:  # noqa: BLE001 - the status change stands; the call is a bonus
        log.exception("could not prepare the pickup call for RO %s", change.repair_order.number)
        return None


def change_status(
    session: Session,
    bus: EventBus,
    *,
    ro: RepairOrder,
    status: str,
    at: datetime,
    note: str | None,
    source: str,
    author_id: int | None = None,
) -> StatusOutcome:
    """One status change, committed and announced (the DMS status webhook)."""
    store = session.get(Store, ro.store_id)
    assert store is not None  # an RO's store is never missing (foreign key)
    check_status(store, status)
    outcome = record_status_change(
        session, ro=ro, status=status, at=at, note=note, source=source, author_id=author_id
    )
    session.commit()
    outcome.said.send(bus)
    return outcome
