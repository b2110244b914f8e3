"""Call records (CDRs written by the call writer), the unmatched-calls list, and linking an
unknown caller's call to a customer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field

from api.deps import MAX_ID, BusDep, DbId, ScopeDep, SessionDep, field_error, not_found, publish
from api.paging import Limit, Offset, page
from api.schemas import Id, In, Out, Page, ThreadEntryOut, UtcTime
from events.calls import THREAD_UPDATED, Disposition, ThreadUpdated
from records import queries
from records.models import Call

router = APIRouter(tags=["calls"])


class CallLegOut(Out):
    id: int
    role: str
    party: str
    user_id: int | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None


class CallOut(Out):
    id: int
    call_uuid: str
    store_id: int
    customer_id: int | None
    advisor_id: int | None
    direction: str
    from_number: str
    to_number: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    disposition: str | None = Field(description="null while the call is still going on")
    flow_path: list[str]
    legs: list[CallLegOut]


class RecordingOut(Out):
    id: int
    leg_id: int | None
    kind: str
    path: str = Field(description="Relative to the recordings directory.")
    sha256: str
    duration_s: float
    consent_played: bool


class CallDetailOut(CallOut):
    recordings: list[RecordingOut]
    entries: list[ThreadEntryOut] = Field(description="The call's thread entries.")


class LinkIn(In):
    customer_id: Id
    add_phone: bool = Field(
        default=False,
        description="Also save the caller's number on the customer, so their next call pops.",
    )


IdFilter = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Since = Annotated[UtcTime | None, Query(description="Started at or after (ISO 8601 with zone).")]
Until = Annotated[UtcTime | None, Query(description="Started before (ISO 8601 with zone).")]


@router.get("/calls", response_model=Page[CallOut])
def list_calls(
    session: SessionDep,
    scope: ScopeDep,
    disposition: Annotated[Disposition | None, Query()] = None,
    customer_id: IdFilter = None,
    store_id: IdFilter = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[CallOut]:
    """Calls of your stores, newest first."""
    rows = queries.list_calls(
        session,
        scope=scope,
        store_id=store_id,
        disposition=disposition.value if disposition else None,
        customer_id=customer_id,
        since=since,
        until=until,
        limit=limit + 1,
        offset=offset,
    )
    return page(rows, CallOut, limit=limit, offset=offset)


@router.get("/unmatched-calls", response_model=Page[CallOut])
def unmatched_calls(
    session: SessionDep,
    scope: ScopeDep,
    store_id: IdFilter = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[CallOut]:
    """Calls from numbers no customer of the store had, newest first: link them to a customer."""
    rows = queries.list_calls(
        session,
        scope=scope,
        store_id=store_id,
        unmatched=True,
        since=since,
        until=until,
        limit=limit + 1,
        offset=offset,
    )
    return page(rows, CallOut, limit=limit, offset=offset)


def _detail(session: SessionDep, call: Call) -> CallDetailOut:
    summary = CallOut.model_validate(call)
    return CallDetailOut(
        **summary.model_dump(),
        recordings=[
            RecordingOut.model_validate(r)
            for r in queries.call_recordings(session, call_id=call.id)
        ],
        entries=[
            ThreadEntryOut.model_validate(e) for e in queries.call_entries(session, call_id=call.id)
        ],
    )


@router.get("/calls/{call_id}", response_model=CallDetailOut)
def get_call(call_id: DbId, session: SessionDep, scope: ScopeDep) -> CallDetailOut:
    """One call with its legs, recordings and thread entries."""
    call = queries.get_call(session, scope=scope, call_id=call_id)
    if call is None:
        raise not_found("call")
    return _detail(session, call)


@router.post("/calls/{call_id}/link", response_model=CallDetailOut)
def link_call(
    call_id: DbId, body: LinkIn, session: SessionDep, scope: ScopeDep, bus: BusDep
) -> CallDetailOut:
    """Put a call on a customer's thread (its entry, voicemail and callback task move with it).

    Linking an already linked call moves it: that is how a wrong link is fixed.
    """
    call = queries.get_call(session, scope=scope, call_id=call_id)
    if call is None:
        raise not_found("call")
    customer = queries.get_customer(session, scope=scope, customer_id=body.customer_id)
    if customer is None:
        raise not_found("customer")
    if customer.store_id != call.store_id:
        raise field_error(("body", "customer_id"), "the customer belongs to another store")
    if body.add_phone and not call.from_number.startswith("+"):
        raise field_error(("body", "add_phone"), "the caller's number is not a phone number")
    previous = call.customer_id
    entries = queries.link_call(session, call=call, customer=customer, add_phone=body.add_phone)
    for entry in entries:
        update = ThreadUpdated(
            customer_id=customer.id, entry_id=entry.id, kind=entry.kind, call_uuid=call.call_uuid
        )
        publish(bus, call.store_id, THREAD_UPDATED, update.model_dump(mode="json"))
        if previous is not None and previous != customer.id:  # it left that thread
            gone = update.model_copy(update={"customer_id": previous})
            publish(bus, call.store_id, THREAD_UPDATED, gone.model_dump(mode="json"))
    return _detail(session, call)
