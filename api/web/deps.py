"""Dependencies of the web pages: the logged-in user (from the session cookie) and CSRF.

Pages reuse the API's scope (`api.deps.get_scope`), data-access functions and use cases; only
how the user is found differs (a cookie instead of a bearer token).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import authenticate
from api.deps import SessionDep, get_scope
from api.web.sessions import COOKIE, WebLogin, csrf_ok, web_login
from ivr.domain import Role
from records.queries import Scope


class LoginRequired(Exception):
    """Raised by page dependencies; the app answers with a redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def current_login(request: Request, session: SessionDep) -> WebLogin:
    login = web_login(session, request.cookies.get(COOKIE))
    if login is None:
        raise LoginRequired(request.url.path)
    return login


LoginDep = Annotated[WebLogin, Depends(current_login)]


def manager_login(login: LoginDep) -> WebLogin:
    if login.user.role not in (Role.manager, Role.admin):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="managers only")
    return login


ManagerDep = Annotated[WebLogin, Depends(manager_login)]


async def check_csrf(request: Request, login: LoginDep) -> WebLogin:
    """Every state-changing form carries the session's token (field `csrf` or header)."""
    given = request.headers.get("x-csrf-token")
    if given is None:
        form = await request.form()
        value = form.get("csrf")
        given = value if isinstance(value, str) else None
    if not csrf_ok(login.csrf, given):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="missing or wrong CSRF token")
    return login


CsrfLogin = Annotated[WebLogin, Depends(check_csrf)]

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <token>`")


def reader_scope(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Scope:
    """For read-only routes a page embeds (audio): a bearer token, else the session cookie.

    Read-only, so a cookie needs no CSRF token here; SameSite=Lax keeps other sites' pages
    from sending it on subresource requests anyway.
    """
    if credentials is not None and credentials.scheme.lower() == "bearer":
        user = authenticate(session, credentials.credentials)
        if user is not None:
            return get_scope(user)
    else:
        login = web_login(session, request.cookies.get(COOKIE))
        if login is not None:
            return login.scope
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail="missing or unknown token or session",
        headers={"WWW-Authenticate": "Bearer"},
    )


ReaderScope = Annotated[Scope, Depends(reader_scope)]
