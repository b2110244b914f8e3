"""Call records (CDRs written by the call writer), the unmatched-calls list, and linking an
unknown caller's call to a customer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import redis
from fastapi import APIRouter, Query, status
from pydantic import Field

from api.deps import (
    MAX_ID,
    BusDep,
    CurrentUser,
    DbId,
    ScopeDep,
    SessionDep,
    SettingsDep,
    not_found,
)
from api.paging import Limit, Offset, page
from api.schemas import Id, In, Out, Page, Phone, ThreadEntryOut, UtcTime
from events.bus import EventBus
from events.outbound import read_state
from ivr.domain import Disposition
from records import queries
from records.models import Call
from usecases import calls as usecase
from usecases.outbound import place_masked_call

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
    state: str | None = Field(
        default=None,
        description="Outbound calls: queued, calling_advisor, advisor_no_answer, "
        "calling_customer, connected, customer_busy, customer_no_answer, ended, failed.",
    )
    state_detail: str | None = None


class PlaceCallIn(In):
    """Whom to call: a customer (their first number, or `phone`) or just a `phone`."""

    customer_id: Id | None = None
    phone: Phone | None = None
    repair_order_id: Id | None = Field(default=None, description="What the call is about.")
    store_id: Id | None = Field(
        default=None, description="The calling store, when you have several and no customer."
    )


class PlacedCallOut(Out):
    id: int = Field(description="The call's id: GET /calls/{id} for its state and record.")
    call_uuid: str
    state: str


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


def _live_state(bus: EventBus, call: Call) -> dict[str, str] | None:
    """An outbound call's latest progress from its worker (Redis), else from its record."""
    if call.direction != "outbound":
        return None
    try:
        live = read_state(bus.redis, call.call_uuid)
    except redis.RedisError:
        live = None
    if call.disposition is not None and (live is None or live["state"] == "queued"):
        return {"state": "ended", "detail": call.disposition}
    return live


def _detail(session: SessionDep, call: Call, bus: EventBus) -> CallDetailOut:
    summary = CallOut.model_validate(call)
    live = _live_state(bus, call)
    return CallDetailOut(
        **summary.model_dump(),
        state=live["state"] if live else None,
        state_detail=(live["detail"] or None) if live else None,
        recordings=[
            RecordingOut.model_validate(r)
            for r in queries.call_recordings(session, call_id=call.id)
        ],
        entries=[
            ThreadEntryOut.model_validate(e) for e in queries.call_entries(session, call_id=call.id)
        ],
    )


@router.get("/calls/{call_id}", response_model=CallDetailOut)
def get_call(call_id: DbId, session: SessionDep, scope: ScopeDep, bus: BusDep) -> CallDetailOut:
    """One call with its legs, recordings and thread entries (and an outbound call's state)."""
    call = queries.get_call(session, scope=scope, call_id=call_id)
    if call is None:
        raise not_found("call")
    return _detail(session, call, bus)


@router.post("/calls", response_model=PlacedCallOut, status_code=status.HTTP_202_ACCEPTED)
def place_call(
    body: PlaceCallIn,
    session: SessionDep,
    scope: ScopeDep,
    user: CurrentUser,
    bus: BusDep,
    settings: SettingsDep,
) -> PlacedCallOut:
    """Masked click-to-call: your phone rings first, you hear whom you are calling, then the
    customer's phone rings showing the store's number; the call is recorded onto the thread.

    Refused before any call is placed: a do-not-call customer or a destination outside the
    store's allowed patterns (403), too many calls in the last hour (429), no contact of yours
    to ring (409). Progress comes as `call.outbound` events on the event stream.
    """
    job = place_masked_call(
        session,
        bus,
        user=user,
        store_ids=scope.store_ids,
        customer_id=body.customer_id,
        phone=body.phone,
        repair_order_id=body.repair_order_id,
        store_id=body.store_id,
        region=settings.default_region,
    )
    return PlacedCallOut(id=job.call_id, call_uuid=job.call_uuid, state="queued")


@router.post("/calls/{call_id}/link", response_model=CallDetailOut)
def link_call(
    call_id: DbId, body: LinkIn, session: SessionDep, user: CurrentUser, bus: BusDep
) -> CallDetailOut:
    """Put a call on a customer's thread (its entry, voicemail and callback task move with it).

    Linking an already linked call moves it: that is how a wrong link is fixed.
    """
    call = usecase.link_call(
        session, user, bus, call_id=call_id, customer_id=body.customer_id, add_phone=body.add_phone
    )
    return _detail(session, call, bus)
