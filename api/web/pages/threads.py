"""Customers and their threads: search, the thread page, notes, the thread's Call button."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.deps import MAX_ID, BusDep, DbId, SessionDep, SettingsDep, refusal_status
from api.routes import calls as calls_api
from api.web import sessions as web_sessions
from api.web.deps import CsrfLogin, LoginDep
from api.web.pages.calls import place_call
from api.web.pages.common import PAGE, Text, home_tz, render, see_other, sentence
from ivr.phone import try_e164
from records import queries, reports, views
from usecases import thread
from usecases.errors import NotFound, UseCaseError

router = APIRouter(include_in_schema=False)


@router.get("/customers")
def customer_search(
    request: Request,
    session: SessionDep,
    login: LoginDep,
    q: Annotated[str, Query(max_length=100)] = "",
    link_call: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> HTMLResponse:
    """By name prefix, phone number (any format) or RO number."""
    q = q.strip().replace("\x00", "")
    found: list[Any] = []
    if q:
        e164 = try_e164(q) if any(c.isdigit() for c in q) else None
        for criteria in ({"ro_number": q}, {"phone_e164": e164}, {"name": q}):
            if all(v for v in criteria.values()):
                found = list(
                    queries.find_customers(
                        session, scope=login.scope, limit=PAGE, offset=0, **criteria
                    )
                )
                if found:
                    break
    call = queries.get_call(session, scope=login.scope, call_id=link_call) if link_call else None
    return render(
        request,
        "customers.html",
        login,
        tz=home_tz(session, login),
        q=q,
        customers=found,
        link_call=call,
    )


@router.get("/customers/{customer_id}")
def thread_page(
    request: Request, customer_id: DbId, session: SessionDep, login: LoginDep
) -> HTMLResponse:
    """The thread. It takes nothing to show from the query string: a refused note is shown by
    the POST that was refused, so no link can put words on this page."""
    return _thread(request, session, login, customer_id)


def _thread(
    request: Request,
    session: SessionDep,
    login: web_sessions.WebLogin,
    customer_id: int,
    refused: UseCaseError | None = None,
    draft: str = "",
) -> HTMLResponse:
    customer = queries.get_customer(session, scope=login.scope, customer_id=customer_id)
    if customer is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="customer not found")
    store = queries.get_store(session, scope=login.scope, store_id=customer.store_id)
    entries = queries.thread_entries(session, customer_id=customer.id, before=None, limit=200)
    media = reports.call_media(session, call_ids=[e.call_id for e in entries if e.call_id])
    return render(
        request,
        "thread.html",
        login,
        code=refusal_status(refused) if refused else 200,
        tz=store.timezone if store else "UTC",
        customer=customer,
        repair_orders=queries.open_repair_orders(session, customer_id=customer.id),
        relationship=views.load_relationship(session, customer.id),
        entries=entries,
        media=media,
        error=sentence(refused) if refused else "",
        draft=draft,
    )


@router.post("/customers/{customer_id}/notes")
def add_note(
    request: Request,
    customer_id: DbId,
    session: SessionDep,
    login: CsrfLogin,
    bus: BusDep,
    body: Text,
) -> Response:
    """The API's note use case (same @mention rules and event), with the page's session; a
    refused note comes back on the page with the reason and the text kept."""
    try:
        entry = thread.add_note(session, login.user, bus, customer_id=customer_id, body=body)
    except NotFound:
        raise
    except UseCaseError as exc:
        return _thread(
            request, session, login, customer_id, refused=exc, draft=body.replace("\x00", "")
        )
    return see_other(f"/customers/{customer_id}#entry-{entry.id}")


@router.post("/customers/{customer_id}/call")
def click_to_call(
    customer_id: DbId, session: SessionDep, login: CsrfLogin, bus: BusDep, settings: SettingsDep
) -> JSONResponse:
    """The page's "Call" button: the API's masked click-to-call, with the page's session."""
    body = calls_api.PlaceCallIn(customer_id=customer_id)
    return place_call(body, session, login, bus, settings)
