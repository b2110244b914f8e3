"""Request dependencies every route declares: the session, the caller, their store scope.

Routes say what they need in their signature (`user: CurrentUser, scope: ScopeDep`), so a route
that forgot authentication or scoping stands out in review. `errors` builds 4xx bodies in
FastAPI's own validation shape, so clients read every error the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from api.auth import authenticate
from events.bus import EventBus
from ivr.config import Settings
from ivr.domain import Role
from records.models import User
from records.queries import Scope
from usecases.announce import publish as publish  # routes publish after their commit

log = logging.getLogger(__name__)

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
    """Admins see every store; everyone else only the stores they are assigned to."""
    if user.role == Role.admin:
        return Scope(store_ids=None)
    return Scope(store_ids=frozenset(user.store_ids))


ScopeDep = Annotated[Scope, Depends(get_scope)]


def require_admin(user: CurrentUser) -> User:
    if user.role != Role.admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="admins only")
    return user


AdminUser = Annotated[User, Depends(require_admin)]


def own_only(user: User) -> int | None:
    """The owner filter for work lists: advisors work their own callbacks and follow-ups;
    managers and admins see their stores'."""
    return user.id if user.role == Role.advisor else None


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
