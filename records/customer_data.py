"""One customer's data in SQL, for an export or an erasure on request (usecases/customer_data.py).

What is theirs: the customer row, phones, vehicles, repair orders (status history, line items),
purchases, thread entries, callbacks and follow-ups, and the calls linked to them; an unmatched
call (or callback) from or to one of their numbers is theirs too, one linked to another customer
who shares the number is not.

An erasure keeps counts: every row a report counts (calls, repair orders, thread entries,
callbacks, follow-ups, purchases) stays, with what names or quotes the person taken out: the
name, email, DMS ids, phones (deleted), VINs and plates, the caller's number on calls and
legs, thread text and any data key not known to be free of personal data (`KEPT_DATA`),
callback reasons, follow-up and concern text, status-event notes. Recordings and transcripts
go through records/call_media.py. The customer row stays as a nameless tombstone
(`erased_at`), so the calls still belong to "a customer" and are not unmatched calls again.
A DMS that imports the person again makes a new customer, with none of the old history.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, selectinload

from records.models import (
    Call,
    CallbackTask,
    Customer,
    FollowUp,
    Recording,
    RepairOrder,
    ThreadEntry,
    Transcript,
    VehiclePurchase,
)

ERASED = "erased"  # what an erased number reads as on a call row
# Thread-entry data keys that hold no personal data (statuses, ids, counts, dispositions).
KEPT_DATA = frozenset(
    {
        "call_uuid", "disposition", "duration", "duration_s", "status", "from", "to", "source",
        "outcome", "attempts", "follow_up_id", "follow_up_kind", "repair_order_id", "ro",
        "number", "line_item_id", "purchase_id", "vehicle_id", "salesperson_id", "deal",
        "condition", "closed", "due_at", "mentions", "week", "advisor_id", "checklist", "score",
    }
)  # fmt: skip


def customer_calls(session: Session, customer: Customer) -> list[Call]:
    """Calls linked to the customer, or unmatched calls from or to one of their numbers."""
    phones = [p.e164 for p in customer.phones]
    match = [Call.customer_id == customer.id]
    if phones:  # unmatched ones only: a number they share may be another customer's too
        number = or_(Call.from_number.in_(phones), Call.to_number.in_(phones))
        match.append(and_(Call.customer_id.is_(None), number))
    return list(
        session.scalars(
            select(Call)
            .where(Call.store_id == customer.store_id, or_(*match))
            .options(selectinload(Call.legs))
            .order_by(Call.started_at, Call.id)
        )
    )


def _entries(session: Session, customer: Customer, call_ids: Sequence[int]) -> list[ThreadEntry]:
    match = [ThreadEntry.customer_id == customer.id]
    if call_ids:
        match.append(ThreadEntry.call_id.in_(call_ids))
    return list(
        session.scalars(
            select(ThreadEntry)
            .where(ThreadEntry.store_id == customer.store_id, or_(*match))
            .options(selectinload(ThreadEntry.author))
            .order_by(ThreadEntry.at, ThreadEntry.id)
        )
    )


def _callbacks(session: Session, customer: Customer) -> list[CallbackTask]:
    phones = [p.e164 for p in customer.phones]
    match = [CallbackTask.customer_id == customer.id]
    if phones:
        match.append(and_(CallbackTask.customer_id.is_(None), CallbackTask.phone.in_(phones)))
    return list(
        session.scalars(
            select(CallbackTask)
            .where(CallbackTask.store_id == customer.store_id, or_(*match))
            .order_by(CallbackTask.id)
        )
    )


def _repair_orders(session: Session, customer: Customer) -> list[RepairOrder]:
    return list(
        session.scalars(
            select(RepairOrder)
            .where(RepairOrder.customer_id == customer.id)
            .options(
                selectinload(RepairOrder.events),
                selectinload(RepairOrder.line_items),
                selectinload(RepairOrder.advisor),
            )
            .order_by(RepairOrder.opened_at, RepairOrder.id)
        )
    )


def _follow_ups(session: Session, customer: Customer) -> list[FollowUp]:
    return list(
        session.scalars(
            select(FollowUp).where(FollowUp.customer_id == customer.id).order_by(FollowUp.id)
        )
    )


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def export_document(
    session: Session,
    customer: Customer,
    calls: Sequence[Call],
    recordings: Sequence[Recording],
    files: dict[int, str | None],
    transcripts: Sequence[Transcript],
) -> dict[str, Any]:
    """Everything Driveline keeps about the customer, as JSON; `files` maps a recording's id
    to its name in the export (None: the file is gone)."""
    by_call: dict[int, list[Recording]] = {}
    for rec in recordings:
        by_call.setdefault(rec.call_id, []).append(rec)
    transcript_of = {t.call_id: t for t in transcripts}
    purchases = session.scalars(
        select(VehiclePurchase)
        .where(VehiclePurchase.customer_id == customer.id)
        .order_by(VehiclePurchase.purchased_at, VehiclePurchase.id)
    ).all()
    return {
        "customer": {
            "id": customer.id,
            "store": customer.store.name,
            "dms_id": customer.dms_id,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "email": customer.email,
            "advisor": customer.advisor.name if customer.advisor else None,
            "do_not_call": customer.do_not_call,
            "created_at": _iso(customer.created_at),
            "erased_at": _iso(customer.erased_at),
        },
        "phones": [{"e164": p.e164, "label": p.label} for p in customer.phones],
        "vehicles": [
            {
                "id": v.id,
                "dms_id": v.dms_id,
                "year": v.year,
                "make": v.make,
                "model": v.model,
                "vin": v.vin,
                "plate": v.plate,
            }
            for v in customer.vehicles
        ],  # fmt: skip
        "repair_orders": [_ro(ro) for ro in _repair_orders(session, customer)],
        "purchases": [
            {
                "dms_id": p.dms_id,
                "purchased_at": _iso(p.purchased_at),
                "vehicle_id": p.vehicle_id,
                "salesperson": p.salesperson_name,
                "condition": p.condition,
            }
            for p in purchases
        ],  # fmt: skip
        "calls": [_call(c, by_call.get(c.id, []), files, transcript_of.get(c.id)) for c in calls],
        "thread": [
            {
                "id": e.id,
                "kind": e.kind,
                "at": _iso(e.at),
                "call_id": e.call_id,
                "author": e.author.name if e.author else None,
                "body": e.body,
                "data": e.data,
            }
            for e in _entries(session, customer, [c.id for c in calls])
        ],  # fmt: skip
        "callbacks": [
            {
                "id": t.id,
                "phone": t.phone,
                "reason": t.reason,
                "due_at": _iso(t.due_at),
                "created_at": _iso(t.created_at),
                "done_at": _iso(t.done_at),
                "call_id": t.call_id,
            }
            for t in _callbacks(session, customer)
        ],  # fmt: skip
        "follow_ups": [
            {
                "id": f.id,
                "kind": f.kind,
                "text": f.text,
                "due_at": _iso(f.due_at),
                "done_at": _iso(f.done_at),
                "outcome": f.outcome,
            }
            for f in _follow_ups(session, customer)
        ],  # fmt: skip
    }


def _ro(ro: RepairOrder) -> dict[str, Any]:
    return {
        "number": ro.number,
        "status": ro.status,
        "vehicle_id": ro.vehicle_id,
        "advisor": ro.advisor.name if ro.advisor else None,
        "opened_at": _iso(ro.opened_at),
        "promised_at": _iso(ro.promised_at),
        "closed_at": _iso(ro.closed_at),
        "concern": ro.concern,
        "status_history": [
            {"status": e.status, "at": _iso(e.at), "source": e.source, "note": e.note}
            for e in ro.events
        ],
        "line_items": [
            {
                "description": i.description,
                "estimate_cents": i.estimate_cents,
                "status": i.status,
                "decided_at": _iso(i.decided_at),
            }
            for i in ro.line_items
        ],  # fmt: skip
    }


def _call(
    call: Call,
    recordings: Sequence[Recording],
    files: dict[int, str | None],
    transcript: Transcript | None,
) -> dict[str, Any]:
    return {
        "id": call.id,
        "call_uuid": call.call_uuid,
        "direction": call.direction,
        "from": call.from_number,
        "to": call.to_number,
        "started_at": _iso(call.started_at),
        "answered_at": _iso(call.answered_at),
        "ended_at": _iso(call.ended_at),
        "disposition": call.disposition,
        "legs": [
            {
                "role": leg.role,
                "party": leg.party,
                "started_at": _iso(leg.started_at),
                "answered_at": _iso(leg.answered_at),
                "ended_at": _iso(leg.ended_at),
            }
            for leg in call.legs
        ],  # fmt: skip
        "recordings": [
            {
                "id": r.id,
                "kind": r.kind,
                "file": files.get(r.id),
                "sha256": r.sha256,
                "duration_s": r.duration_s,
                "consent_played": r.consent_played,
                "created_at": _iso(r.created_at),
            }
            for r in recordings
        ],  # fmt: skip
        "transcript": None
        if transcript is None
        else {
            "model": transcript.model,
            "language": transcript.language,
            "text": transcript.text,
            "segments": [
                {
                    "speaker": s.speaker,
                    "start_s": s.start_s,
                    "end_s": s.end_s,
                    "text": s.text,
                    "confidence": s.confidence,
                }
                for s in transcript.segments
            ],  # fmt: skip
        },
    }


def erase_rows(
    session: Session, customer: Customer, calls: Sequence[Call], *, now: datetime
) -> dict[str, int]:
    """Take the person out of every row that stays (see the module); returns what was touched.
    Their recordings and transcripts must be deleted first (records/call_media.py)."""
    phones = {p.e164 for p in customer.phones}
    for call in calls:
        customer_side = "to_number" if call.direction == "outbound" else "from_number"
        for column in ("from_number", "to_number"):
            if getattr(call, column) in phones or column == customer_side:
                setattr(call, column, ERASED)
        for leg in call.legs:
            if leg.role == "caller" or leg.party in phones:
                leg.party = ERASED
        call.customer_id = customer.id  # an unmatched call from their number: theirs now
    entries = _entries(session, customer, [c.id for c in calls])
    for entry in entries:
        entry.customer_id = customer.id  # an unmatched call's entry moves with its call
        entry.body = ""
        entry.data = {k: v for k, v in (entry.data or {}).items() if k in KEPT_DATA} | {
            "erased": True
        }
    callbacks = _callbacks(session, customer)
    for task in callbacks:
        task.customer_id = customer.id
        task.phone, task.reason = "", ""
    follow_ups = _follow_ups(session, customer)
    for fu in follow_ups:
        fu.text = ""
    ros = _repair_orders(session, customer)
    for ro in ros:
        ro.concern = None
        for event in ro.events:
            event.note = None
    for vehicle in customer.vehicles:
        vehicle.vin = vehicle.plate = vehicle.dms_id = None
    counts = {
        "calls": len(calls),
        "thread_entries": len(entries),
        "phones": len(phones),
        "vehicles": len(customer.vehicles),
        "repair_orders": len(ros),
        "callbacks": len(callbacks),
        "follow_ups": len(follow_ups),
    }
    customer.phones.clear()  # delete-orphan: the rows go
    customer.first_name = customer.last_name = ""
    customer.email = customer.dms_id = None
    customer.do_not_call = True
    customer.erased_at = now
    session.flush()
    return counts
