"""Managers' pages: transcript search, the weekly audit and dashboard, the morning view, and
the flows the store's calls run."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, Response

from api.deps import MAX_ID, BusDep, DbId, SessionDep, SettingsDep, publish
from api.web.deps import CsrfLogin, LoginDep, ManagerDep
from api.web.pages.common import (
    PAGE,
    StoreParam,
    chosen_store,
    home_tz,
    id_list,
    render,
    see_other,
)
from api.web.views import bar_chart, local_time
from ivr.domain import Role
from ivr.flow.loader import FlowLoadError, load_flows
from records import morning, queries, reports
from records.models import utcnow
from records.transcripts import HIGHLIGHT, search_terms, search_transcripts

router = APIRouter(include_in_schema=False)

WeekParam = Annotated[date | None, Query()]


@router.get("/search")
def search_page(
    request: Request,
    session: SessionDep,
    login: LoginDep,
    q: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    terms = search_terms(q)
    hits = search_transcripts(session, login.scope, terms, limit=PAGE, offset=0) if terms else []
    return render(
        request,
        "search.html",
        login,
        tz=home_tz(session, login),
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
    chosen = chosen_store(session, login, store)
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
    return render(
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
    publish(
        bus,
        customer.store_id,
        "thread.updated",
        {"customer_id": customer.id, "entry_id": entry.id, "kind": entry.kind},
    )
    return see_other(
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
    chosen = chosen_store(session, login, store)
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
    return render(
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
    chosen = chosen_store(session, login, store)
    now = utcnow()
    first = first or (last if last is not None else morning.yesterday(chosen, now))
    last = last or first
    try:
        report = morning.morning_report(session, store=chosen, first=first, last=last, now=now)
    except morning.RangeError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
    days = (last - first).days + 1
    return render(
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
    rows = morning.items(session, scope=login.scope, of=of, ids=id_list(ids))
    return render(
        request,
        "morning_items.html",
        login,
        tz=home_tz(session, login),
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
    return render(
        request,
        "flows.html",
        login,
        tz=home_tz(session, login),
        flows=flows,
        problems=problems,
        flows_dir=settings.flows_dir,
    )
