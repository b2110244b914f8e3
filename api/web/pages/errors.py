"""Errors as pages (with the menu, if the visitor is logged in), and the way to the login."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.web import sessions as web_sessions
from api.web.pages.common import render, see_other
from api.web.views import safe_next

ERROR_TITLES = {401: "Please log in", 403: "Not allowed", 404: "Not found"}


def error_page(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
    """Errors as a page (with the menu, if the visitor is logged in)."""
    factory = request.app.state.sessions
    with factory() as session:
        login = web_sessions.web_login(session, request.cookies.get(web_sessions.COOKIE))
    detail = exc.detail if isinstance(exc.detail, str) else "The request was refused."
    response = render(
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
    return see_other("/login?next=" + quote(safe_next(next_url), safe="/"))
