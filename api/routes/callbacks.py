"""Callback tasks: who owes which caller a call back, overdue first."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status

from api.deps import BusDep, CurrentUser, DbId, ScopeDep, SessionDep
from api.paging import Limit, Offset, page
from api.schemas import CallbackIn, CallbackOut, Page
from ivr.domain import Role
from records import queries
from records.models import CallbackTask, utcnow
from usecases import callbacks

router = APIRouter(prefix="/callbacks", tags=["callbacks"])


@router.get("", response_model=Page[CallbackOut])
def list_callbacks(
    session: SessionDep,
    scope: ScopeDep,
    user: CurrentUser,
    mine: Annotated[
        bool | None,
        Query(description="Only yours. Advisors always get only theirs; others default to all."),
    ] = None,
    state: Annotated[Literal["open", "done", "all"], Query()] = "open",
    store_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[CallbackOut]:
    if user.role == Role.advisor and mine is False:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail="advisors see only their own callbacks"
        )
    owner_id = user.id if (mine or user.role == Role.advisor) else None
    rows = queries.list_callbacks(
        session,
        scope=scope,
        owner_id=owner_id,
        state=state,
        store_id=store_id,
        now=utcnow(),
        limit=limit + 1,
        offset=offset,
    )
    return page(rows, CallbackOut, limit=limit, offset=offset)


@router.get("/{task_id}", response_model=CallbackOut)
def get_callback(task_id: DbId, session: SessionDep, user: CurrentUser) -> CallbackTask:
    return callbacks.find_callback(session, user, task_id)


@router.post("", response_model=CallbackOut, status_code=status.HTTP_201_CREATED)
def create_callback(
    body: CallbackIn, session: SessionDep, user: CurrentUser, bus: BusDep
) -> CallbackTask:
    """The store comes from the customer, else `store_id`, else your only store."""
    return callbacks.create_callback(
        session,
        user,
        bus,
        phone=body.phone,
        customer_id=body.customer_id,
        store_id=body.store_id,
        owner_id=body.owner_id,
        reason=body.reason,
        due_at=body.due_at,
    )


@router.post("/{task_id}/done", response_model=CallbackOut)
def mark_done(task_id: DbId, session: SessionDep, user: CurrentUser, bus: BusDep) -> CallbackTask:
    """Idempotent; advisors may close only their own tasks."""
    return callbacks.complete_callback(session, user, bus, task_id)
