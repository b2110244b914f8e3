"""Repair orders: read by id or number, line items, and the DMS status and event webhooks."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from sqlalchemy.orm import Session

from api.deps import (
    BusDep,
    DbId,
    ScopeDep,
    SessionDep,
    field_error,
    not_found,
)
from api.paging import NO_NUL
from api.routes.followups import publish_follow_up_changes
from api.schemas import (
    DmsEventIn,
    DmsEventOut,
    FollowUpOut,
    LineItemIn,
    LineItemOut,
    LineItemUpdate,
    RepairOrderOut,
    StatusChangeIn,
    StatusChangeOut,
)
from api.webhook_auth import WebhookCaller, WebhookScope
from records import followups, queries
from records.models import RepairOrder, RoLineItem, utcnow
from usecases import status as status_usecase

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
    integration: WebhookCaller,
    scope: WebhookScope,
    bus: BusDep,
    store_id: StoreFilter = None,
) -> StatusChangeOut:
    """The DMS status webhook (signed by an integration: README "DMS webhooks"): record the
    change, note it on the thread, fire waiting promises, queue the pickup call, tell listeners.

    Delivering the same change twice (same status and `at`) is harmless: nothing is added and
    the answer says `duplicate: true`. Without `at` the change is stamped now.
    """
    ro = _one_by_number(session, scope, number, store_id)
    outcome = status_usecase.change_status(
        session,
        bus,
        ro=ro,
        status=change.status,
        at=change.at or utcnow(),
        note=change.note,
        source="webhook",
    )
    return StatusChangeOut(
        repair_order=RepairOrderOut.model_validate(outcome.change.repair_order),
        previous_status=outcome.change.previous_status,
        duplicate=outcome.duplicate,
    )


# --- line items and DMS events (declined service and promises: records/followups/) -------


def _ro(session: Session, scope: ScopeDep, ro_id: int) -> RepairOrder:
    ro = queries.get_repair_order(session, scope=scope, ro_id=ro_id)
    if ro is None:
        raise not_found("repair order")
    return ro


@router.get("/{ro_id}/line-items", response_model=list[LineItemOut])
def list_line_items(ro_id: DbId, session: SessionDep, scope: ScopeDep) -> list[RoLineItem]:
    return list(followups.line_items(session, ro_id=_ro(session, scope, ro_id).id))


@router.post("/{ro_id}/line-items", response_model=LineItemOut, status_code=status.HTTP_201_CREATED)
def add_line_item(
    ro_id: DbId, body: LineItemIn, session: SessionDep, scope: ScopeDep, bus: BusDep
) -> RoLineItem:
    """A recommended repair on the RO; declined, it becomes a follow-up for the RO's advisor
    after the store's delay. A `dms_id` the RO already has is 409."""
    ro = _ro(session, scope, ro_id)
    if body.dms_id and followups.line_item_by_dms_id(session, ro_id=ro.id, dms_id=body.dms_id):
        raise field_error(("body", "dms_id"), "the RO already has a line with this dms_id", 409)
    item, changes = followups.add_line_item(
        session,
        ro=ro,
        description=body.description,
        status=body.status,
        estimate_cents=body.estimate_cents,
        dms_id=body.dms_id,
        decided_at=body.decided_at,
    )
    session.commit()
    publish_follow_up_changes(bus, ro.store_id, changes.created, changes.entries)
    return item


@router.post("/{ro_id}/line-items/{item_id}", response_model=LineItemOut)
def update_line_item(
    ro_id: DbId,
    item_id: DbId,
    body: LineItemUpdate,
    session: SessionDep,
    scope: ScopeDep,
    bus: BusDep,
) -> RoLineItem:
    """Change a line: declined makes its follow-up (once), approved or done closes it."""
    ro = _ro(session, scope, ro_id)
    item = session.get(RoLineItem, item_id)
    if item is None or item.repair_order_id != ro.id:
        raise not_found("line item")
    if body.description is not None:
        item.description = body.description
    if "estimate_cents" in body.model_fields_set:
        item.estimate_cents = body.estimate_cents
    changes = followups.Changes()
    if body.status is not None:
        changes = followups.set_line_item_status(
            session, item=item, status=body.status, at=body.decided_at
        )
    session.commit()
    publish_follow_up_changes(bus, ro.store_id, changes.created + changes.closed, changes.entries)
    return item


@router.post("/{number}/events", response_model=DmsEventOut)
def dms_event(
    number: RoNumber,
    body: DmsEventIn,
    session: SessionDep,
    integration: WebhookCaller,
    scope: WebhookScope,
    bus: BusDep,
    store_id: StoreFilter = None,
) -> DmsEventOut:
    """The DMS event webhook (signed like the status webhook): line-item updates (matched by
    `dms_id`, new ones created) and a named event such as `part_arrived`, which makes the RO's
    promises waiting for it due.

    Delivering it twice is harmless: a line keeps one follow-up, and promises fire once.
    """
    if body.event is None and not body.line_items:
        raise field_error(("body", "event"), "give an event or line_items")
    if body.event is not None and not followups.TRIGGER_NAME.match(body.event):
        raise field_error(
            ("body", "event"), "an event name is lowercase words joined by _ (part_arrived)"
        )
    ro = _one_by_number(session, scope, number, store_id)
    at = body.at or utcnow()
    changes = followups.Changes()
    touched: list[RoLineItem] = []
    for n, line in enumerate(body.line_items):
        item = followups.line_item_by_dms_id(session, ro_id=ro.id, dms_id=line.dms_id)
        if item is None:
            if line.description is None:
                session.rollback()
                raise field_error(
                    ("body", "line_items", n, "description"), "required for a new line"
                )
            item, made = followups.add_line_item(
                session,
                ro=ro,
                description=line.description,
                status=line.status,
                estimate_cents=line.estimate_cents,
                dms_id=line.dms_id,
                decided_at=line.decided_at or at,
            )
        else:
            if line.description is not None:
                item.description = line.description
            if "estimate_cents" in line.model_fields_set:
                item.estimate_cents = line.estimate_cents
            changed = item.status != line.status  # decided when the event says, unless given
            made = followups.set_line_item_status(
                session,
                item=item,
                status=line.status,
                at=line.decided_at or (at if changed else None),
            )
        touched.append(item)
        changes.created += made.created
        changes.closed += made.closed
        changes.entries += made.entries
    fired = followups.fire_trigger(session, ro=ro, event=body.event, at=at) if body.event else []
    session.commit()
    publish_follow_up_changes(
        bus, ro.store_id, changes.created + changes.closed + fired, changes.entries
    )
    return DmsEventOut(
        line_items=[LineItemOut.model_validate(i) for i in touched],
        triggered=[FollowUpOut.model_validate(f) for f in fired],
        follow_ups_created=[FollowUpOut.model_validate(f) for f in changes.created],
    )
