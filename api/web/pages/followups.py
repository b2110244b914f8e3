"""Follow-ups: the advisor's one list of calls to make, promises, and each call's outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.deps import BusDep, DbId, SessionDep, SettingsDep, refusal_status
from api.routes import calls as calls_api
from api.web import sessions as web_sessions
from api.web.deps import CsrfLogin, LoginDep
from api.web.pages.calls import place_call
from api.web.pages.common import home_tz, render, see_other, sentence
from ivr.domain import Role
from records import followups, queries
from records.models import utcnow
from usecases import followups as usecase
from usecases.errors import Invalid, UseCaseError

router = APIRouter(include_in_schema=False)

PROMISE_WHEN = {"time": None, "part": "part_arrived", "ready": "status:Ready for Pickup"}


@router.get("/follow-ups")
def follow_ups_page(request: Request, session: SessionDep, login: LoginDep) -> HTMLResponse:
    """Callbacks and follow-ups together, overdue first; managers also see their stores'
    overdue ones, whoever owns them."""
    return _follow_ups(request, session, login)


def _follow_ups(
    request: Request,
    session: SessionDep,
    login: web_sessions.WebLogin,
    refused: UseCaseError | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    now = utcnow()
    mine = followups.work_list(session, scope=login.scope, now=now, owner_id=login.user.id)
    team = None
    if login.user.role in (Role.manager, Role.admin):
        team = followups.work_list(
            session, scope=login.scope, now=now, owner_id=None, overdue_only=True
        )
    return render(
        request,
        "followups.html",
        login,
        code=refusal_status(refused) if refused else 200,
        tz=home_tz(session, login),
        mine=mine,
        team=team,
        error=sentence(refused) if refused else "",
        form=form or {},
    )


@router.post("/follow-ups/promise")
def record_promise(
    request: Request,
    session: SessionDep,
    login: CsrfLogin,
    bus: BusDep,
    ro_number: Annotated[str, Form(max_length=32)],
    text: Annotated[str, Form(max_length=2000)],
    when: Annotated[str, Form(pattern="^(time|part|ready)$")] = "time",
    due: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """A promise: "call by 3 pm" (the store's local time) or "call when the part arrives".
    A refusal comes back on the page with the reason and the form as it was typed."""
    try:
        ro = usecase.repair_order_by_number(session, login.user, ro_number)
        due_at = None
        if when == "time":
            store = queries.get_store(session, scope=login.scope, store_id=ro.store_id)
            due_at = _local(due, store.timezone if store else "UTC")
        fu = usecase.record_promise(
            session,
            login.user,
            bus,
            repair_order_id=ro.id,
            text=text,
            due_at=due_at,
            trigger=PROMISE_WHEN[when],
        )
    except UseCaseError as exc:
        form = {"ro_number": ro_number, "text": text, "when": when, "due": due}
        return _follow_ups(request, session, login, refused=exc, form=form)
    return see_other(f"/follow-ups#follow-up-{fu.id}")


def _local(value: str, tz: str) -> datetime:
    """The form's `datetime-local` value in the store's zone."""
    try:
        local = datetime.fromisoformat(value)
        if not 1970 <= local.year <= 2200:
            raise ValueError(value)
    except ValueError:
        raise Invalid("give the date and time you promised to call", ("body", "due")) from None
    return local.replace(tzinfo=ZoneInfo(tz))


@router.post("/follow-ups/{follow_up_id}/outcome")
def follow_up_outcome(
    follow_up_id: DbId,
    session: SessionDep,
    login: CsrfLogin,
    bus: BusDep,
    outcome: Annotated[str, Form(pattern="^(booked|not_interested|no_answer|done)$")],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """The API's outcome use case with the page's session; lands on the entry it wrote."""
    result = usecase.record_outcome(
        session, login.user, bus, follow_up_id=follow_up_id, outcome=outcome, note=note
    )
    return see_other(f"/customers/{result.follow_up.customer_id}#entry-{result.entry.id}")


@router.post("/follow-ups/{follow_up_id}/call")
def follow_up_call(
    follow_up_id: DbId, session: SessionDep, login: CsrfLogin, bus: BusDep, settings: SettingsDep
) -> JSONResponse:
    """The masked click-to-call about this follow-up's customer and repair order (a follow-up
    the caller may work: an advisor's own, or in a manager's stores)."""
    fu = usecase.find_follow_up(session, login.user, follow_up_id)
    body = calls_api.PlaceCallIn(customer_id=fu.customer_id, repair_order_id=fu.repair_order_id)
    return place_call(body, session, login, bus, settings)
