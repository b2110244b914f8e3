"""Logging in and out: the login form (a double-submit CSRF cookie) and the session cookie."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from api.deps import SessionDep
from api.web import sessions as web_sessions
from api.web.deps import CsrfLogin
from api.web.pages.common import render as _render
from api.web.pages.common import see_other as _see_other
from api.web.views import safe_next

router = APIRouter(include_in_schema=False)


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
