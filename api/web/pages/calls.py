"""Calls: one call's page (an unknown caller's, with linking), the call log, click-to-call."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.deps import MAX_ID, BusDep, DbId, SessionDep, SettingsDep, refusal_status
from api.routes import calls as calls_api
from api.web import sessions as web_sessions
from api.web.deps import CsrfLogin, LoginDep
from api.web.pages.common import (
    PAGE,
    FormText,
    StoreParam,
    chosen_store,
    id_list,
    optional,
    render,
    see_other,
)
from ivr.domain import Disposition
from records import queries, reports
from usecases import calls
from usecases.errors import UseCaseError
from usecases.outbound import place_masked_call

router = APIRouter(include_in_schema=False)


def place_call(
    body: calls_api.PlaceCallIn,
    session: SessionDep,
    login: web_sessions.WebLogin,
    bus: BusDep,
    settings: SettingsDep,
) -> JSONResponse:
    """The API's masked click-to-call use case with the page's session; a refusal as JSON
    with its reason in words (the page shows it beside the button)."""
    try:
        job = place_masked_call(
            session,
            bus,
            user=login.user,
            store_ids=login.scope.store_ids,
            customer_id=body.customer_id,
            phone=body.phone,
            repair_order_id=body.repair_order_id,
            store_id=body.store_id,
            region=settings.default_region,
        )
    except UseCaseError as exc:
        session.rollback()
        return JSONResponse({"detail": exc.message}, status_code=refusal_status(exc))
    placed = calls_api.PlacedCallOut(id=job.call_id, call_uuid=job.call_uuid, state="queued")
    return JSONResponse(placed.model_dump(), status_code=status.HTTP_202_ACCEPTED)


@router.get("/calls/{call_id}")
def call_page(request: Request, call_id: DbId, session: SessionDep, login: LoginDep) -> Response:
    """A call on its customer's thread; an unlinked call on its own page (with linking)."""
    call = queries.get_call(session, scope=login.scope, call_id=call_id)
    if call is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="call not found")
    if call.customer_id is not None:
        suffix = f"?t={request.query_params['t']}" if "t" in request.query_params else ""
        return see_other(f"/customers/{call.customer_id}{suffix}#call-{call.id}")
    store = queries.get_store(session, scope=login.scope, store_id=call.store_id)
    return render(
        request,
        "call.html",
        login,
        tz=store.timezone if store else "UTC",
        call=call,
        entries=queries.call_entries(session, call_id=call.id),
        media=reports.call_media(session, call_ids=[call.id]),
    )


@router.post("/calls/{call_id}/link")
def link_call(
    call_id: DbId,
    session: SessionDep,
    login: CsrfLogin,
    bus: BusDep,
    customer_id: Annotated[int, Form(ge=1, le=MAX_ID)],
    add_phone: Annotated[bool, Form()] = False,
) -> Response:
    """The API's linking use case, with the page's session."""
    call = calls.link_call(
        session, login.user, bus, call_id=call_id, customer_id=customer_id, add_phone=add_phone
    )
    return see_other(f"/customers/{customer_id}#call-{call.id}")


@router.get("/calls")
def call_log(
    request: Request,
    session: SessionDep,
    login: LoginDep,
    store: StoreParam = None,
    disposition: Annotated[list[Disposition], Query()] = [],  # noqa: B006 - FastAPI reads it
    advisor: FormText = "",
    since: FormText = "",
    until: FormText = "",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ids: Annotated[str, Query(max_length=20_000)] = "",
) -> HTMLResponse:
    """Filters: dispositions (several), advisor, local dates (`until` inclusive), and `ids`
    (the calls behind a morning-view figure). A filter form sends its empty fields as empty
    strings: those mean "any"."""
    advisor_id = optional(int, "advisor", advisor)
    if advisor_id is not None and not 1 <= advisor_id <= MAX_ID:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="advisor: not an id")
    since_day = optional(date.fromisoformat, "since", since)
    until_day = optional(date.fromisoformat, "until", until)
    call_ids = id_list(ids)
    chosen = chosen_store(session, login, store)
    tz = chosen.timezone
    start = reports.week_bounds(since_day, tz)[0] if since_day else None
    end = reports.week_bounds(until_day + timedelta(days=1), tz)[0] if until_day else None
    rows = reports.call_log(
        session,
        scope=login.scope,
        store_id=chosen.id,
        dispositions=[d.value for d in disposition],
        advisor_id=advisor_id,
        since=start,
        until=end,
        call_ids=call_ids,
        limit=PAGE + 1,
        offset=offset,
    )
    return render(
        request,
        "calls.html",
        login,
        tz=tz,
        store=chosen,
        stores=queries.list_stores(session, scope=login.scope),
        staff=reports.store_staff(session, store_id=chosen.id),
        dispositions=list(Disposition),
        chosen=[d.value for d in disposition],
        advisor=advisor_id,
        since=since_day,
        until=until_day,
        rows=rows[:PAGE],
        offset=offset,
        more=len(rows) > PAGE,
        query=str(request.query_params),
        ids=ids if call_ids else "",
    )
