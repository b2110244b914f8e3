"""The `repair_order` and `line_item` rows: a repair order with its status, and the repairs
recommended on it.

A changed status of a known repair order is a status change like the webhook's: it goes
through `usecases.status` (status event, thread entry, promises, the pickup call), and what
it announces waits for the file's commit (`applying.announcements`). A declined line item
becomes a follow-up through records/followups/.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.domain import CLOSED_STATUSES, STANDARD_STATUSES, LineStatus
from records import followups
from records.importer.applying import (
    Changes,
    RowType,
    announcements,
    ref,
    row_store,
    user_ref,
    zone_of,
)
from records.importer.fields import Row, RowError
from records.models import Customer, RepairOrder, StatusEventRow, Store, Vehicle
from usecases import status as status_usecase


def apply_repair_order(session: Session, row: Row, now: datetime) -> str:
    """A changed status of a known RO goes through `usecases.status`, as the webhook's does:
    status event, thread entry, promises, the pickup call; the same file twice changes nothing."""
    store = row_store(session, row)
    tz = zone_of(store)
    number = row.required("number")
    ro = _by_number(session, store, number)
    created = ro is None
    customer = ref(session, row, "customer", Customer, store)
    status = _status(store, row.required("status")) if (created or row.has("status")) else None
    status_at = row.when("status_at", tz) or now
    if ro is None:
        if customer is None:
            raise RowError("customer", "required")
        ro = RepairOrder(
            store_id=store.id,
            number=number,
            customer=customer,
            status=status,
            opened_at=row.when("opened_at", tz) or now,
        )
        session.add(ro)
    c = Changes()
    if customer is not None:
        c.link(ro, "customer", customer)
    if row.has("vehicle"):
        c.link(ro, "vehicle", ref(session, row, "vehicle", Vehicle, store))
    if row.has("advisor"):
        c.link(ro, "advisor", user_ref(session, row, "advisor", store))
    if row.has("opened_at") and row.text("opened_at") is not None:
        c.set(ro, "opened_at", row.when("opened_at", tz))
    if row.has("promised_at"):
        c.set(ro, "promised_at", row.when("promised_at", tz))
    c.cells(ro, row, concern=row.text)
    if status is not None:
        if created:  # its first status is where it starts: no thread entry, nobody called
            ro.events.append(StatusEventRow(status=status, at=status_at, source="import"))
        elif ro.status != status:
            outcome = status_usecase.record_status_change(
                session, ro=ro, status=status, at=status_at, note=None, source="import", now=now
            )
            announcements(session).extend(outcome.said)
            c.changed = c.changed or not outcome.duplicate
        closed_at = row.when("closed_at", tz)
        if status in CLOSED_STATUSES:
            c.set(ro, "closed_at", closed_at or ro.closed_at or status_at)
        else:
            c.set(ro, "closed_at", closed_at)
    elif row.has("closed_at"):
        c.set(ro, "closed_at", row.when("closed_at", tz))
    return c.outcome(created)


def apply_line_item(session: Session, row: Row, now: datetime) -> str:
    """A recommended repair on an RO, keyed by its line code; declined, it becomes a
    follow-up (records/followups/), approved or done closes that follow-up."""
    store = row_store(session, row)
    number = row.required("repair_order")
    ro = _by_number(session, store, number)
    if ro is None:
        raise RowError("repair_order", f"no repair order {number!r} at store {store.dms_id!r}")
    dms_id = row.required("id")
    status_text = (row.text("status") or "").lower().replace(" ", "_")
    if status_text and status_text not in {s.value for s in LineStatus}:
        raise RowError(
            "status",
            f"unknown line status {row.text('status')!r} (use "
            + ", ".join(s.value for s in LineStatus)
            + ")",
        )
    decided_at = row.when("decided_at", zone_of(store))
    item = followups.line_item_by_dms_id(session, ro_id=ro.id, dms_id=dms_id)
    if item is None:
        followups.add_line_item(
            session,
            ro=ro,
            description=row.required("description"),
            status=status_text or LineStatus.recommended,
            estimate_cents=row.cents("estimate"),
            dms_id=dms_id,
            decided_at=decided_at,
            now=now,
        )
        return "created"
    c = Changes()
    c.cells(item, row, description=row.required)
    if row.has("estimate"):
        c.set(item, "estimate_cents", row.cents("estimate"))
    if status_text and (
        status_text != item.status or (decided_at and decided_at != item.decided_at)
    ):
        followups.set_line_item_status(
            session, item=item, status=status_text, at=decided_at, now=now
        )
        c.changed = True
    return c.outcome(created=False)


def _by_number(session: Session, store: Store, number: str) -> RepairOrder | None:
    return session.scalars(
        select(RepairOrder).where(RepairOrder.store_id == store.id, RepairOrder.number == number)
    ).first()


def _status(store: Store, raw: str) -> str:
    """The canonical spelling of a status this store knows, matched case-insensitively."""
    known = [*STANDARD_STATUSES, *(store.custom_statuses or []), *CLOSED_STATUSES]
    for status in known:
        if status.lower() == raw.strip().lower():
            return status
    raise RowError(
        "status", f"unknown status {raw!r} (store {store.dms_id!r} knows: {', '.join(known)})"
    )


REPAIR_ORDER = RowType(
    fields=frozenset(
        {
            "store",
            "number",
            "customer",
            "status",
            "vehicle",
            "advisor",
            "opened_at",
            "promised_at",
            "closed_at",
            "concern",
            "status_at",
        }
    ),
    apply=apply_repair_order,
)
LINE_ITEM = RowType(
    fields=frozenset(
        {"store", "repair_order", "id", "description", "status", "estimate", "decided_at"}
    ),
    apply=apply_line_item,
)
