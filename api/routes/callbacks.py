"""Callback tasks: who owes which caller a call back, overdue first."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status

from api.deps import (
    BusDep,
    CurrentUser,
    DbId,
    ScopeDep,
    SessionDep,
    field_error,
    not_found,
    own_only,
    publish,
)
from api.paging import Limit, Offset, page
from api.schemas import CallbackIn, CallbackOut, Page
from ivr.domain import Role
from records import queries
from records.models import CallbackTask, utcnow

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
def get_callback(
    task_id: DbId, session: SessionDep, scope: ScopeDep, user: CurrentUser
) -> CallbackTask:
    task = queries.get_callback(session, scope=scope, task_id=task_id, owner_id=own_only(user))
    if task is None:
        raise not_found("callback")
    return task


@router.post("", response_model=CallbackOut, status_code=status.HTTP_201_CREATED)
def create_callback(
    body: CallbackIn, session: SessionDep, scope: ScopeDep, user: CurrentUser, bus: BusDep
) -> CallbackTask:
    """The store comes from the customer, else `store_id`, else your only store."""
    store_id = body.store_id
    if body.customer_id is not None:
        customer = queries.get_customer(session, scope=scope, customer_id=body.customer_id)
        if customer is None:
            raise not_found("customer")
        if store_id is not None and store_id != customer.store_id:
            raise field_error(("body", "store_id"), "the customer belongs to another store")
        store_id = customer.store_id
    if store_id is None:
        if len(user.store_ids) != 1:
            raise field_error(
                ("body", "store_id"), "required without customer_id when you have several stores"
            )
        store_id = user.store_ids[0]
    if queries.get_store(session, scope=scope, store_id=store_id) is None:
        raise not_found("store")
    owner_id = body.owner_id if body.owner_id is not None else user.id
    if queries.user_in_store(session, store_id=store_id, user_id=owner_id) is None:
        raise field_error(("body", "owner_id"), "the owner must be an active user of the store")
    task = queries.create_callback(
        session,
        store_id=store_id,
        customer_id=body.customer_id,
        phone_e164=body.phone,
        owner_id=owner_id,
        reason=body.reason,
        due_at=body.due_at or utcnow(),
    )
    publish(
        bus,
        task.store_id,
        "callback.created",
        {"callback_id": task.id, "customer_id": task.customer_id, "owner_id": task.owner_id},
    )
    return task


@router.post("/{task_id}/done", response_model=CallbackOut)
def mark_done(
    task_id: DbId, session: SessionDep, scope: ScopeDep, user: CurrentUser, bus: BusDep
) -> CallbackTask:
    """Idempotent; advisors may close only their own tasks."""
    task = queries.get_callback(session, scope=scope, task_id=task_id, owner_id=own_only(user))
    if task is None:
        raise not_found("callback")
    was_open = task.done_at is None
    task = queries.complete_callback(session, task=task, user_id=user.id)
    if was_open:
        publish(bus, task.store_id, "callback.done", {"callback_id": task.id, "by": user.id})
    return task
