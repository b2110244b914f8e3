"""Request dependencies every route declares: the session, the caller, their store scope.

Routes say what they need in their signature (`user: CurrentUser, scope: ScopeDep`), so a route
that forgot authentication or scoping stands out in review. `errors` builds 4xx bodies in
FastAPI's own validation shape, so clients read every error the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from api.auth import authenticate
from events.bus import EventBus
from events.bus import publish as publish  # re-exported: routes publish after commits
from ivr.config import Settings
from ivr.domain import Role
from records.models import User
from records.queries import Scope
from usecases import errors as usecase
from usecases.access import scope_of

MAX_ID = 2**31 - 1  # PostgreSQL INTEGER; larger ids would be a database error, not a 404

# Path parameter for our integer ids.
DbId = Annotated[int, Path(ge=1, le=MAX_ID)]


def get_session(request: Request) -> Iterator[Session]:
    factory: sessionmaker[Session] = request.app.state.sessions
    with factory() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <token>`")


def get_current_user(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    user = authenticate(session, credentials.credentials)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="unknown or revoked token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_scope(user: CurrentUser) -> Scope:
    """The caller's stores, by the rule the use cases apply (`usecases.access.scope_of`)."""
    return scope_of(user)


ScopeDep = Annotated[Scope, Depends(get_scope)]


def require_admin(user: CurrentUser) -> User:
    if user.role != Role.admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="admins only")
    return user


AdminUser = Annotated[User, Depends(require_admin)]


def get_bus(request: Request) -> EventBus:
    bus: EventBus = request.app.state.bus
    return bus


BusDep = Annotated[EventBus, Depends(get_bus)]


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def not_found(what: str) -> HTTPException:
    """Out of scope and nonexistent look the same, so ids of other stores leak nothing."""
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{what} not found")


def field_error(loc: tuple[str | int, ...], msg: str, code: int = 422) -> HTTPException:
    """A 4xx naming the offending field, shaped like FastAPI's own validation errors."""
    detail: list[dict[str, Any]] = [{"loc": list(loc), "msg": msg, "type": "value_error"}]
    return HTTPException(code, detail=detail)


REFUSAL_STATUS: dict[type[usecase.UseCaseError], int] = {
    usecase.NotFound: status.HTTP_404_NOT_FOUND,
    usecase.Forbidden: status.HTTP_403_FORBIDDEN,
    usecase.Conflict: status.HTTP_409_CONFLICT,
    usecase.Invalid: status.HTTP_422_UNPROCESSABLE_CONTENT,
    usecase.TooMany: status.HTTP_429_TOO_MANY_REQUESTS,
    usecase.Unavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
}


def refusal_status(exc: usecase.UseCaseError) -> int:
    """The HTTP status of a use case's refusal, for the API's JSON and the pages alike."""
    return REFUSAL_STATUS.get(type(exc), status.HTTP_400_BAD_REQUEST)
