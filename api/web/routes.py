"""The web pages: server-rendered HTML over the same data-access functions as the API.

Routes stay thin: they read with `records.queries` / `records.reports` / `records.transcripts`
under the logged-in user's `Scope` (so another store's objects are 404 here too), render a
template, and redirect after each POST (so a reload never repeats a form).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import MAX_ID, BusDep, DbId, SessionDep, SettingsDep, publish
from api.routes import calls as calls_api
from api.routes import followups as followups_api
from api.routes import thread as thread_api
from api.schemas import NoteIn
from api.web import sessions as web_sessions
from api.web.deps import CsrfLogin, LoginDep, ManagerDep
from api.web.views import bar_chart, local_time, safe_next
from events.calls import Disposition
from ivr.domain import Role
from ivr.flow.loader import FlowLoadError, load_flows
from ivr.phone import try_e164
from records import followups, morning, queries, reports, views
from records.models import Store, ThreadEntry, utcnow
from records.transcripts import HIGHLIGHT, search_terms, search_transcripts

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["local"] = local_time
templates.env.globals["Role"] = Role

router = APIRouter(include_in_schema=False)

PAGE = 50
UNMATCHED_DAYS = timedelta(days=7)  # unknown callers listed on the home page for linking
StoreParam = Annotated[int | None, Query(ge=1, le=MAX_ID)]
WeekParam = Annotated[date | None, Query()]
Text = Annotated[str, Form(max_length=10_000)]
FormText = Annotated[str, Query(max_length=40)]
T = TypeVar("T")


def _optional(parse: Callable[[str], T], name: str, value: str) -> T | None:
    """An optional filter field: empty is None, anything else must parse (else a 422)."""
    if not value.strip():
        return None
    try:
        return parse(value.strip())
    except ValueError:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"{name}: {value!r} is not valid"
        ) from None


def _render(
    request: Request, name: str, login: web_sessions.WebLogin | None, code: int = 200, **ctx: Any
) -> HTMLResponse:
    ctx.setdefault("tz", "UTC")
    return templates.TemplateResponse(
        request,
        name,
        {"login": login, "user": login.user if login else None, **ctx},
        status_code=code,
    )


def _reason(exc: HTTPException) -> str:
    """The human part of an API error (`field_error` bodies are FastAPI-shaped lists)."""
    detail = exc.detail
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        return str(detail[0].get("msg", "refused"))
    return str(detail)


def _updated(bus: BusDep, store_id: int, customer_id: int, entry: ThreadEntry) -> None:
    publish(
        bus,
        store_id,
        "thread.updated",
        {"customer_id": customer_id, "entry_id": entry.id, "kind": entry.kind},
    )


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


def _store(session: SessionDep, login: web_sessions.WebLogin, store_id: int | None) -> Store:
    """The store a manager page shows: the one asked for (in scope), else their first."""
    stores = queries.list_stores(session, scope=login.scope)
    chosen = next((s for s in stores if s.id == store_id), None) if store_id else None
    if chosen is None and store_id is not None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="store not found")
    if chosen is None and stores:
        chosen = stores[0]
    if chosen is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="you have no store")
    return chosen


def _home_tz(session: SessionDep, login: web_sessions.WebLogin) -> str:
    stores = queries.list_stores(session, scope=login.scope)
    return stores[0].timezone if stores else "UTC"


# --- login ----------------------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request, next: str = "/") -> HTMLResponse:  # noqa: A002
    token = web_sessions.new_login_csrf()
    response = _render(request, "login.html", None, csrf=token, next=safe_next(next))
    _set_cookie(request, response, web_sessions.LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


@router.post("/login")
def login_submit(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=web_sessions.MAX_PASSWORD)],
    csrf: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",  # noqa: A002
) -> Response:
    if not web_sessions.csrf_ok(request.cookies.get(web_sessions.LOGIN_CSRF_COOKIE), csrf):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="missing or wrong CSRF token")
    secret = web_sessions.log_in(
        session,
        username=username,
        password=password,
        user_agent=request.headers.get("user-agent", ""),
    )
    if secret is None:
        return _render(
            request,
            "login.html",
            None,
            code=status.HTTP_401_UNAUTHORIZED,
            csrf=csrf,
            next=safe_next(next),
            error="Wrong username or password.",
            username=username,
        )
    response = _see_other(safe_next(next))
    _set_cookie(
        request,
        response,
        web_sessions.COOKIE,
        secret,
        max_age=int(web_sessions.SESSION_TTL.total_seconds()),
    )
    response.delete_cookie(web_sessions.LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(session: SessionDep, login: CsrfLogin) -> Response:
    web_sessions.log_out(session, login)
    response = _see_other("/login")
    response.delete_cookie(web_sessions.COOKIE, path="/")
    return response


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


# --- advisor home -----------------------------------------------------------------------------


@router.get("/")
def home(request: Request, session: SessionDep, login: LoginDep) -> HTMLResponse:
    now = utcnow()
    callbacks = queries.list_callbacks(
        session,
        scope=login.scope,
        owner_id=login.user.id,
        state="open",
        store_id=None,
        now=now,
        limit=PAGE,
        offset=0,
    )
    mentions = queries.mentions_of(
        session, scope=login.scope, user_id=login.user.id, unseen_only=False, limit=20, offset=0
    )
    unknown = queries.list_calls(
        session, scope=login.scope, unmatched=True, since=now - UNMATCHED_DAYS, limit=10, offset=0
    )
    return _render(
        request,
        "home.html",
        login,
        tz=_home_tz(session, login),
        callbacks=callbacks,
        mentions=mentions,
        unknown=unknown,
        now=now,
    )


@router.post("/callbacks/{task_id}/done")
def callback_done(task_id: DbId, session: SessionDep, login: CsrfLogin, bus: BusDep) -> Response:
    task = queries.get_callback(session, scope=login.scope, task_id=task_id)
    if task is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="callback not found")
    queries.complete_callback(session, task=task, user_id=login.user.id)
    publish(bus, task.store_id, "callback.done", {"task_id": task.id})
    return _see_other("/")


@router.post("/mentions/{mention_id}/seen")
def mention_seen(mention_id: DbId, session: SessionDep, login: CsrfLogin) -> Response:
    mention = queries.mark_mention_seen(
        session, scope=login.scope, user_id=login.user.id, mention_id=mention_id
    )
    if mention is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="mention not found")
    return _see_other("/")


# --- follow-ups: the advisor's one list of calls to make -----------------------------------------


@router.get("/follow-ups")
def follow_ups_page(request: Request, session: SessionDep, login: LoginDep) -> HTMLResponse:
    """Callbacks and follow-ups together, overdue first; managers also see their stores'
    overdue ones, whoever owns them."""
    return _follow_ups(request, session, login)


def _follow_ups(
    request: Request,
    session: SessionDep,
    login: web_sessions.WebLogin,
    error: str = "",
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    now = utcnow()
    mine = followups.work_list(session, scope=login.scope, now=now, owner_id=login.user.id)
    team = None
    if login.user.role in (Role.manager, Role.admin):
        team = followups.work_list(
            session, scope=login.scope, now=now, owner_id=None, overdue_only=True
        )
    return _render(
        request,
        "followups.html",
        login,
        code=status.HTTP_422_UNPROCESSABLE_CONTENT if error else 200,
        tz=_home_tz(session, login),
        mine=mine,
        team=team,
        error=error,
        form=form or {},
    )


PROMISE_WHEN = {"time": None, "part": "part_arrived", "ready": "status:Ready for Pickup"}


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
    """A promise: "call by 3 pm" (the store's local time) or "call when the part arrives"."""
    form = {"ro_number": ro_number, "text": text, "when": when, "due": due}
    text = text.strip().replace("\x00", "")
    found = queries.repair_orders_by_number(
        session, scope=login.scope, number=ro_number.strip().replace("\x00", "")
    )
    error = ""
    if len(found) != 1:
        error = "No such repair order." if not found else "That RO exists in several stores."
    elif not text:
        error = "Say what you promised."
    due_at = None
    if not error and when == "time":
        store = queries.get_store(session, scope=login.scope, store_id=found[0].store_id)
        try:
            local = datetime.fromisoformat(due)
            if not 1970 <= local.year <= 2200:
                raise ValueError(due)
            due_at = local.replace(tzinfo=ZoneInfo(store.timezone if store else "UTC"))
        except ValueError:
            error = "Give the date and time you promised to call."
    if error:
        return _follow_ups(request, session, login, error=error, form=form)
    ro = found[0]
    fu = followups.create_promise(
        session,
        ro=ro,
        text=text,
        created_by_id=login.user.id,
        due_at=due_at,
        trigger=PROMISE_WHEN[when],
        department_id=login.user.department_id,
    )
    session.commit()
    followups_api.publish_follow_up_changes(bus, ro.store_id, [fu], [])
    return _see_other(f"/follow-ups#follow-up-{fu.id}")


@router.post("/follow-ups/{follow_up_id}/outcome")
def follow_up_outcome(
    follow_up_id: DbId,
    session: SessionDep,
    login: CsrfLogin,
    bus: BusDep,
    outcome: Annotated[str, Form(pattern="^(booked|not_interested|no_answer|done)$")],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """The API's outcome route with the page's session; lands on the entry it wrote."""
    try:
        result = followups_api.work_follow_up(
            session,
            login.scope,
            login.user,
            bus,
            follow_up_id,
            outcome,
            note.strip().replace("\x00", "") or None,
        )
    except HTTPException as exc:
        raise HTTPException(exc.status_code, detail=_reason(exc)) from None
    return _see_other(f"/customers/{result.follow_up.customer_id}#entry-{result.entry.id}")


@router.post("/follow-ups/{follow_up_id}/call")
def follow_up_call(
    follow_up_id: DbId, session: SessionDep, login: CsrfLogin, bus: BusDep, settings: SettingsDep
) -> JSONResponse:
    """The masked click-to-call about this follow-up's customer and repair order."""
    fu = followups.get_follow_up(session, scope=login.scope, follow_up_id=follow_up_id)
    if fu is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="follow-up not found")
    body = calls_api.PlaceCallIn(customer_id=fu.customer_id, repair_order_id=fu.repair_order_id)
    return _place_call(body, session, login, bus, settings)


# --- customers and threads ----------------------------------------------------------------------


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
    return _render(
        request,
        "customers.html",
        login,
        tz=_home_tz(session, login),
        q=q,
        customers=found,
        link_call=call,
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
    call = queries.get_call(session, scope=login.scope, call_id=call_id)
    customer = queries.get_customer(session, scope=login.scope, customer_id=customer_id)
    if call is None or customer is None or customer.store_id != call.store_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="call or customer not found")
    add = add_phone and call.from_number.startswith("+")
    for entry in queries.link_call(session, call=call, customer=customer, add_phone=add):
        _updated(bus, call.store_id, customer.id, entry)
    return _see_other(f"/customers/{customer.id}#call-{call.id}")


@router.get("/customers/{customer_id}")
def thread_page(
    request: Request,
    customer_id: DbId,
    session: SessionDep,
    login: LoginDep,
    error: str = "",
    draft: str = "",
) -> HTMLResponse:
    customer = queries.get_customer(session, scope=login.scope, customer_id=customer_id)
    if customer is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="customer not found")
    store = queries.get_store(session, scope=login.scope, store_id=customer.store_id)
    entries = queries.thread_entries(session, customer_id=customer.id, before=None, limit=200)
    media = reports.call_media(session, call_ids=[e.call_id for e in entries if e.call_id])
    return _render(
        request,
        "thread.html",
        login,
        code=status.HTTP_422_UNPROCESSABLE_CONTENT if error else 200,
        tz=store.timezone if store else "UTC",
        customer=customer,
        repair_orders=queries.open_repair_orders(session, customer_id=customer.id),
        relationship=views.load_relationship(session, customer.id),
        entries=entries,
        media=media,
        error=error,
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
    """The API's note route (same @mention rules and event), with the page's session; a
    refused note comes back on the page with the reason and the text kept."""
    body = body.strip().replace("\x00", "")
    try:
        entry = thread_api.add_note(
            customer_id=customer_id,
            note=NoteIn(body=body),
            session=session,
            scope=login.scope,
            user=login.user,
            bus=bus,
        )
    except ValidationError:
        error = "Write a note first."
    except HTTPException as exc:
        if exc.status_code == status.HTTP_404_NOT_FOUND:
            raise
        error = _reason(exc)
    else:
        return _see_other(f"/customers/{customer_id}#entry-{entry.id}")
    return thread_page(request, customer_id, session, login, error=error, draft=body)


@router.post("/customers/{customer_id}/call")
def click_to_call(
    customer_id: DbId, session: SessionDep, login: CsrfLogin, bus: BusDep, settings: SettingsDep
) -> JSONResponse:
    """The page's "Call" button: the API's masked click-to-call, with the page's session."""
    body = calls_api.PlaceCallIn(customer_id=customer_id)
    return _place_call(body, session, login, bus, settings)


def _place_call(
    body: calls_api.PlaceCallIn,
    session: SessionDep,
    login: web_sessions.WebLogin,
    bus: BusDep,
    settings: SettingsDep,
) -> JSONResponse:
    """The API's masked click-to-call with the page's session; its refusals as JSON."""
    try:
        placed = calls_api.place_call(
            body=body,
            session=session,
            scope=login.scope,
            user=login.user,
            bus=bus,
            settings=settings,
        )
    except HTTPException as exc:
        return JSONResponse({"detail": _reason(exc)}, status_code=exc.status_code)
    return JSONResponse(placed.model_dump(), status_code=status.HTTP_202_ACCEPTED)


@router.get("/calls/{call_id}")
def call_page(request: Request, call_id: DbId, session: SessionDep, login: LoginDep) -> Response:
    """A call on its customer's thread; an unlinked call on its own page (with linking)."""
    call = queries.get_call(session, scope=login.scope, call_id=call_id)
    if call is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="call not found")
    if call.customer_id is not None:
        suffix = f"?t={request.query_params['t']}" if "t" in request.query_params else ""
        return _see_other(f"/customers/{call.customer_id}{suffix}#call-{call.id}")
    store = queries.get_store(session, scope=login.scope, store_id=call.store_id)
    return _render(
        request,
        "call.html",
        login,
        tz=store.timezone if store else "UTC",
        call=call,
        entries=queries.call_entries(session, call_id=call.id),
        media=reports.call_media(session, call_ids=[call.id]),
    )


# --- managers -------------------------------------------------------------------------------


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
    advisor_id = _optional(int, "advisor", advisor)
    if advisor_id is not None and not 1 <= advisor_id <= MAX_ID:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="advisor: not an id")
    since_day = _optional(date.fromisoformat, "since", since)
    until_day = _optional(date.fromisoformat, "until", until)
    call_ids = _ids(ids)
    chosen = _store(session, login, store)
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
    return _render(
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


@router.get("/search")
def search_page(
    request: Request,
    session: SessionDep,
    login: LoginDep,
    q: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    terms = search_terms(q)
    hits = search_transcripts(session, login.scope, terms, limit=PAGE, offset=0) if terms else []
    return _render(
        request,
        "search.html",
        login,
        tz=_home_tz(session, login),
        q=q,
        hits=hits[:PAGE],
        mark=HIGHLIGHT,
    )


@router.get("/audit")
def audit_page(
    request: Request,
    session: SessionDep,
    login: ManagerDep,
    store: StoreParam = None,
    week: WeekParam = None,
) -> HTMLResponse:
    chosen = _store(session, login, store)
    monday = reports.week_start(week or local_time(utcnow(), chosen.timezone, raw=True).date())
    picks = reports.audit_picks(session, store=chosen, monday=monday)
    since, until = reports.week_bounds(monday, chosen.timezone)
    suggestions = {}
    for pick in picks:
        if pick.customer is not None:
            entries = queries.thread_entries(
                session, customer_id=pick.customer.id, before=None, limit=200
            )
            suggestions[pick.customer.id] = reports.suggest_checklist(
                [e for e in entries if since <= e.at < until]
            )
    return _render(
        request,
        "audit.html",
        login,
        tz=chosen.timezone,
        store=chosen,
        stores=queries.list_stores(session, scope=login.scope),
        monday=monday,
        picks=picks,
        suggestions=suggestions,
        checklist=reports.CHECKLIST,
        saved=request.query_params.get("saved"),
    )


@router.post("/audit/{customer_id}")
async def save_audit(
    request: Request,
    customer_id: DbId,
    session: SessionDep,
    login: CsrfLogin,
    bus: BusDep,
    week: Annotated[date, Form()],
    comment: Annotated[str, Form(max_length=2000)] = "",
    advisor_id: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
) -> Response:
    if login.user.role not in (Role.manager, Role.admin):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="managers only")
    customer = queries.get_customer(session, scope=login.scope, customer_id=customer_id)
    if customer is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="customer not found")
    form = await request.form()
    checks = {key: form.get(key) == "on" for key, _ in reports.CHECKLIST}
    entry = reports.save_audit(
        session,
        customer=customer,
        author=login.user,
        monday=reports.week_start(week),
        advisor_id=advisor_id,
        checks=checks,
        comment=comment.strip().replace("\x00", ""),
    )
    _updated(bus, customer.store_id, customer.id, entry)
    return _see_other(
        f"/audit?store={customer.store_id}&week={reports.week_start(week)}&saved={customer.id}"
    )


@router.get("/dashboard")
def dashboard(
    request: Request,
    session: SessionDep,
    login: ManagerDep,
    store: StoreParam = None,
    week: WeekParam = None,
    stale: Annotated[float, Query(gt=0, le=24 * 30)] = reports.DEFAULT_STALE_HOURS,
) -> HTMLResponse:
    chosen = _store(session, login, store)
    now = utcnow()
    monday = reports.week_start(week or local_time(now, chosen.timezone, raw=True).date())
    board = reports.weekly_dashboard(
        session, store=chosen, monday=monday, stale_hours=stale, now=now
    )
    chart = bar_chart(
        [d.strftime("%a %d") for d, _ in board.days],
        {
            "calls": [t.calls for _, t in board.days],
            "missed or abandoned": [t.missed + t.abandoned for _, t in board.days],
            "avoidable": [t.avoidable for _, t in board.days],
        },
    )
    return _render(
        request,
        "dashboard.html",
        login,
        tz=chosen.timezone,
        store=chosen,
        stores=queries.list_stores(session, scope=login.scope),
        monday=monday,
        prev_week=monday - timedelta(days=7),
        next_week=monday + timedelta(days=7),
        sunday=monday + timedelta(days=6),
        board=board,
        chart=chart,
        stale=stale,
    )


def _ids(value: str) -> list[int]:
    """A comma-separated id list from a figure's link (`ids=3,5,8`); a bad one is a 422."""
    try:
        ids = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        ids = [0]
    if not all(1 <= i <= MAX_ID for i in ids):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="ids: not a list of ids")
    return ids


@router.get("/morning")
def morning_page(
    request: Request,
    session: SessionDep,
    login: ManagerDep,
    store: StoreParam = None,
    first: Annotated[date | None, Query(alias="from")] = None,
    last: Annotated[date | None, Query(alias="to")] = None,
) -> HTMLResponse:
    """The GM's morning view: yesterday (or a range) per department; each count links to the
    calls, callbacks or follow-ups behind it."""
    chosen = _store(session, login, store)
    now = utcnow()
    first = first or (last if last is not None else morning.yesterday(chosen, now))
    last = last or first
    try:
        report = morning.morning_report(session, store=chosen, first=first, last=last, now=now)
    except morning.RangeError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
    days = (last - first).days + 1
    return _render(
        request,
        "morning.html",
        login,
        tz=chosen.timezone,
        store=chosen,
        stores=queries.list_stores(session, scope=login.scope),
        report=report,
        info={name: (of, label) for name, of, label in morning.FIGURES},
        earlier=(first - timedelta(days=days), first - timedelta(days=1)),
        later=(last + timedelta(days=1), last + timedelta(days=days)),
    )


@router.get("/morning/items")
def morning_items(
    request: Request,
    session: SessionDep,
    login: ManagerDep,
    of: Annotated[str, Query(pattern="^(callback|follow_up)$")],
    ids: Annotated[str, Query(max_length=20_000)] = "",
    title: Annotated[str, Query(max_length=100)] = "",
) -> HTMLResponse:
    """The callbacks or follow-ups behind a morning figure, each linked to its thread."""
    rows = morning.items(session, scope=login.scope, of=of, ids=_ids(ids))
    return _render(
        request,
        "morning_items.html",
        login,
        tz=_home_tz(session, login),
        rows=rows,
        of=of,
        title=title or ("Callbacks" if of == "callback" else "Follow-ups"),
    )


@router.get("/flows")
def flows_page(
    request: Request, session: SessionDep, login: LoginDep, settings: SettingsDep
) -> HTMLResponse:
    """The flows the store's calls run, and whether they load (every problem, file:line)."""
    problems: list[Any] = []
    flows: list[Any] = []
    try:
        flows = sorted(load_flows(settings.flows_dir), key=lambda f: f.name)
    except FlowLoadError as exc:
        problems = list(exc.problems)
    return _render(
        request,
        "flows.html",
        login,
        tz=_home_tz(session, login),
        flows=flows,
        problems=problems,
        flows_dir=settings.flows_dir,
    )


ERROR_TITLES = {401: "Please log in", 403: "Not allowed", 404: "Not found"}


def error_page(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
    """Errors as a page (with the menu, if the visitor is logged in)."""
    factory = request.app.state.sessions
    with factory() as session:
        login = web_sessions.web_login(session, request.cookies.get(web_sessions.COOKIE))
    detail = exc.detail if isinstance(exc.detail, str) else "The request was refused."
    response = _render(
        request,
        "error.html",
        login,
        code=exc.status_code,
        title=ERROR_TITLES.get(exc.status_code, "Something went wrong"),
        detail=detail[:1].upper() + detail[1:] + ".",
    )
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


def login_redirect(next_url: str) -> RedirectResponse:
    return _see_other("/login?next=" + quote(safe_next(next_url), safe="/"))
