"""Web pages for advisors and managers (server-rendered, a little plain JavaScript)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from api.web.deps import LoginRequired
from usecases.errors import UseCaseError

STATIC = Path(__file__).parent / "static"


def _wants_page(request: Request) -> bool:
    """A browser on a page; the API (and anything not asking for HTML) keeps JSON errors."""
    wants_html = "text/html" in request.headers.get("accept", "")
    return wants_html and not request.url.path.startswith("/api/")


def mount_web(app: FastAPI) -> None:
    """Add the pages, their static files and the "log in first" redirect to the app; after the
    API's error handlers, whose JSON refusals it keeps for everything but pages."""
    from api.deps import refusal_status
    from api.web.pages import router
    from api.web.pages.errors import error_page, login_redirect

    api_refused = app.exception_handlers[UseCaseError]  # the API's JSON answer

    async def to_login(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return login_redirect(exc.next_url)

    async def http_error(request: Request, exc: Exception) -> Response:
        """Pages get an HTML error page; the API (and anything not asking for HTML) keeps
        FastAPI's JSON body."""
        assert isinstance(exc, HTTPException)
        if not _wants_page(request):
            return await http_exception_handler(request, exc)
        return error_page(request, exc)

    async def refused(request: Request, exc: Exception) -> Response:
        """A use case's refusal on a page: the error page with its reason."""
        assert isinstance(exc, UseCaseError)
        if not _wants_page(request):
            return await api_refused(request, exc)
        return error_page(request, HTTPException(refusal_status(exc), exc.message))

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(LoginRequired, to_login)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(UseCaseError, refused)
