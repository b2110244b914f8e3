"""Repair orders: read by id or number, and the DMS status webhook."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy.orm import Session

from api.deps import (
    BusDep,
    CurrentUser,
    DbId,
    ScopeDep,
    SessionDep,
    field_error,
    not_found,
    publish,
)
from api.paging import NO_NUL
from api.schemas import RepairOrderOut, StatusChangeIn, StatusChangeOut
from events.bus import EventBus
from records import outbound, queries
from records.models import RepairOrder, utcnow

log = logging.getLogger(__name__)

router = APIRouter(prefix="/repair-orders", tags=["repair orders"])

RoNumber = Annotated[str, Path(min_length=1, max_length=32, pattern=NO_NUL)]
StoreFilter = Annotated[
    int | None,
    Query(ge=1, le=2**31 - 1, description="Store id; needed when the number exists in several."),
]


def _one_by_number(
    session: SessionDep, scope: ScopeDep, number: str, store_id: int | None
) -> RepairOrder:
    """RO numbers are unique per store: with several stores in scope, `store_id` decides."""
    found = queries.repair_orders_by_number(session, scope=scope, number=number, store_id=store_id)
    if not found:
        raise not_found("repair order")
    if len(found) > 1:
        raise field_error(
            ("query", "store_id"), f"RO {number} exists in several of your stores; pick one"
        )
    return found[0]


@router.get("/{ro_id}", response_model=RepairOrderOut)
def get_repair_order(ro_id: DbId, session: SessionDep, scope: ScopeDep) -> RepairOrder:
    ro = queries.get_repair_order(session, scope=scope, ro_id=ro_id)
    if ro is None:
        raise not_found("repair order")
    return ro


@router.get("/by-number/{number}", response_model=RepairOrderOut)
def get_repair_order_by_number(
    number: RoNumber, session: SessionDep, scope: ScopeDep, store_id: StoreFilter = None
) -> RepairOrder:
    return _one_by_number(session, scope, number, store_id)


@router.post("/{number}/status", response_model=StatusChangeOut)
def change_status(
    number: RoNumber,
    change: StatusChangeIn,
    session: SessionDep,
    scope: ScopeDep,
    user: CurrentUser,
    bus: BusDep,
    store_id: StoreFilter = None,
) -> StatusChangeOut:
    """The DMS status webhook: record the change, note it on the thread, tell listeners.

    Delivering the same change twice (same status and `at`) is harmless: nothing is added and
    the answer says `duplicate: true`. Without `at` the change is stamped now.
    """
    ro = _one_by_number(session, scope, number, store_id)
    store = queries.get_store(session, scope=scope, store_id=ro.store_id)
    assert store is not None  # the RO was in scope, so is its store
    allowed = queries.allowed_statuses(store)
    if change.status not in allowed:
        raise field_error(
            ("body", "status"),
            f"unknown status {change.status!r}; this store uses: {', '.join(allowed)}",
        )
    result = queries.change_ro_status(
        session,
        ro=ro,
        status=change.status,
        at=change.at or utcnow(),
        note=change.note,
        source="webhook",
        author_id=user.id,
    )
    if not result.duplicate:
        publish_status_change(bus, result)
        queue_pickup_call(session, bus, result)
    return StatusChangeOut(
        repair_order=RepairOrderOut.model_validate(result.repair_order),
        previous_status=result.previous_status,
        duplicate=result.duplicate,
    )


def queue_pickup_call(session: Session, bus: EventBus, change: queries.StatusChange) -> None:
    """Stores that opted in call the customer when the car is ready (records/outbound.py
    decides: store open, not do-not-call, once per change); the webhook never fails for it."""
    try:
        job = outbound.prepare_pickup_call(
            session, event=change.event, previous_status=change.previous_status
        )
        if job is None:
            return
        session.commit()
        outbound.enqueue(bus.redis, job)
    except Exception:  # noqa: BLE001 - the status change is saved; the call is a bonus
        session.rollback()
        log.exception("could not queue the pickup call for RO %s", change.repair_order.number)


def publish_status_change(bus: EventBus, change: queries.StatusChange) -> None:
    ro = change.repair_order
    publish(
        bus,
        ro.store_id,
        "ro.status_changed",
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
    publish(
        bus,
        ro.store_id,
        "thread.updated",
        {"customer_id": ro.customer_id, "entry_id": change.entry.id, "kind": change.entry.kind},
    )
