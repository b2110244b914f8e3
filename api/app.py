"""The FastAPI application: every route under /api/v1 is authenticated and store-scoped.

`create_app` takes its collaborators (settings, engine, event bus) so tests and `driveline
serve` build the same app around different databases; whatever it creates itself it also
closes on shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, StatementError
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api import metrics
from api.auth import TokenExpired
from api.deps import SessionDep, get_bus, refusal_status
from api.headers import SecurityHeaders
from api.routes import (
    admin,
    callbacks,
    calls,
    customer_data,
    customers,
    events,
    followups,
    integrations,
    me,
    recordings,
    repair_orders,
    reports,
    search,
    thread,
)
from api.schemas import HealthOut
from api.web import mount_web
from events.bus import EventBus
from ivr.config import Settings, get_settings
from records.db import make_engine, session_factory
from usecases import errors as usecase

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def create_app(
    settings: Settings | None = None,
    engine: Engine | None = None,
    bus: EventBus | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    owns_engine, owns_bus = engine is None, bus is None
    engine = engine or make_engine(settings.database_url)
    bus = bus or EventBus(settings.redis_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if owns_bus:
            bus.close()
        if owns_engine:
            engine.dispose()

    app = FastAPI(
        title="Driveline",
        version="0.1.0",
        summary="IVR and call-center server for dealership service departments.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.bus = bus

    app.get("/healthz", response_model=HealthOut, tags=["health"])(healthz)
    app.include_router(metrics.router)
    api = APIRouter(prefix=API_PREFIX)
    for module in (me, customers, repair_orders, thread, callbacks, calls, events, admin, search):
        api.include_router(module.router)
    api.include_router(recordings.router)
    api.include_router(followups.router)
    api.include_router(reports.router)
    api.include_router(integrations.router)
    api.include_router(customer_data.router)
    app.include_router(api)
    app.add_middleware(SecurityHeaders, cookie_secure=settings.cookie_secure)
    if settings.forwarded_allow_ips:  # outermost: every part sees the client's own address
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    _add_error_handlers(app)
    mount_web(app)  # the web pages under / (api/web); after the API's error handlers it wraps
    return app


def healthz(request: Request, session: SessionDep) -> JSONResponse:
    """Unauthenticated liveness for load balancers: can we reach the database and Redis?"""
    checks = {"database": "ok", "redis": "ok"}
    try:
        session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        get_bus(request).redis.ping()
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    body = HealthOut(status="ok" if healthy else "unavailable", **checks)
    return JSONResponse(
        body.model_dump(), status_code=200 if healthy else status.HTTP_503_SERVICE_UNAVAILABLE
    )


def _add_error_handlers(app: FastAPI) -> None:
    """Turn errors that reach the database (or a model) into 4xx/503 instead of a 500.

    Input validation should catch bad values first; these are the safety net, and they never
    echo SQL back to the client.
    """

    async def conflict(_request: Request, exc: Exception) -> JSONResponse:
        log.info("integrity error: %s", exc)
        return JSONResponse({"detail": "conflicts with existing data"}, status_code=409)

    async def bad_value(_request: Request, exc: Exception) -> JSONResponse:
        log.info("bad value: %s", exc)
        orig = getattr(exc, "orig", None)
        reason = str(orig if isinstance(orig, ValueError) else exc).splitlines()[0]
        if isinstance(exc, StatementError) and not isinstance(orig, ValueError):
            reason = "a value is out of range or malformed for the database"
        return JSONResponse({"detail": reason}, status_code=422)

    async def unavailable(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return JSONResponse({"detail": "database unavailable"}, status_code=503)

    async def refused(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, usecase.UseCaseError)
        code = refusal_status(exc)
        if exc.field is None:
            return JSONResponse({"detail": exc.message}, status_code=code)
        detail = [{"loc": list(exc.field), "msg": exc.message, "type": "value_error"}]
        return JSONResponse({"detail": detail}, status_code=code)

    async def expired(_request: Request, _exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": "token expired"},
            status_code=status.HTTP_401_UNAUTHORIZED,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )

    async def statement(request: Request, exc: Exception) -> JSONResponse:
        # Other StatementErrors wrap a Python error raised while binding a parameter, such as
        # the naive datetime UTCDateTime refuses; anything else is a genuine bug.
        if isinstance(getattr(exc, "orig", None), (ValueError, TypeError)):
            return await bad_value(request, exc)
        raise exc

    app.add_exception_handler(IntegrityError, conflict)
    app.add_exception_handler(DataError, bad_value)
    app.add_exception_handler(OperationalError, unavailable)
    app.add_exception_handler(StatementError, statement)
    app.add_exception_handler(ValueError, bad_value)
    app.add_exception_handler(usecase.UseCaseError, refused)
    app.add_exception_handler(TokenExpired, expired)
