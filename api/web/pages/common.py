"""What every page area shares: the templates, rendering, redirects and the store picker.

Page handlers stay thin: they read with `records.*` under the logged-in user's `Scope` (so
another store's objects are 404 here too), call a use case for every change (the same function
the JSON API calls, so the two cannot disagree on who may do what), render a template, and
redirect after each POST that succeeded (so a reload never repeats a form). A refused form is
rendered again by the POST handler with the reason and what was typed, never carried in a URL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from api.deps import MAX_ID, SessionDep
from api.web import sessions as web_sessions
from api.web.views import local_time
from ivr.domain import Role
from records import queries
from records.models import Store
from usecases.errors import UseCaseError

TEMPLATES = Path(__file__).parent.parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES))
templates.env.filters["local"] = local_time
templates.env.globals["Role"] = Role

PAGE = 50
UNMATCHED_DAYS = timedelta(days=7)  # unknown callers listed on the home page for linking
StoreParam = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Text = Annotated[str, Form(max_length=10_000)]
FormText = Annotated[str, Query(max_length=40)]
T = TypeVar("T")


def render(
    request: Request, name: str, login: web_sessions.WebLogin | None, code: int = 200, **ctx: Any
) -> HTMLResponse:
    ctx.setdefault("tz", "UTC")
    return templates.TemplateResponse(
        request,
        name,
        {"login": login, "user": login.user if login else None, **ctx},
        status_code=code,
    )


def sentence(exc: UseCaseError) -> str:
    """A refusal as the page shows it: "No such repair order."."""
    text = exc.message
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


def optional(parse: Callable[[str], T], name: str, value: str) -> T | None:
    """An optional filter field: empty is None, anything else must parse (else a 422)."""
    if not value.strip():
        return None
    try:
        return parse(value.strip())
    except ValueError:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"{name}: {value!r} is not valid"
        ) from None


def id_list(value: str) -> list[int]:
    """A comma-separated id list from a figure's link (`ids=3,5,8`); a bad one is a 422."""
    try:
        ids = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        ids = [0]
    if not all(1 <= i <= MAX_ID for i in ids):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="ids: not a list of ids")
    return ids


def chosen_store(session: SessionDep, login: web_sessions.WebLogin, store_id: int | None) -> Store:
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


def home_tz(session: SessionDep, login: web_sessions.WebLogin) -> str:
    stores = queries.list_stores(session, scope=login.scope)
    return stores[0].timezone if stores else "UTC"
