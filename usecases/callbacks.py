"""Callback tasks: a caller who is owed a call back, created by hand and completed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from events.bus import EventBus, publish
from records import queries
from records.models import CallbackTask, User, utcnow
from usecases.access import own_only, scope_of
from usecases.errors import Invalid, NotFound


def find_callback(session: Session, actor: User, task_id: int) -> CallbackTask:
    """One the actor may work: in their stores and, for an advisor, their own."""
    task = queries.get_callback(
        session, scope=scope_of(actor), task_id=task_id, owner_id=own_only(actor)
    )
    if task is None:
        raise NotFound("callback not found")
    return task


def create_callback(
    session: Session,
    actor: User,
    bus: EventBus,
    *,
    phone: str,
    customer_id: int | None = None,
    store_id: int | None = None,
    owner_id: int | None = None,
    reason: str = "",
    due_at: datetime | None = None,
) -> CallbackTask:
    """The store comes from the customer, else `store_id`, else the actor's only store; the
    owner (default the actor) must be an active user of that store."""
    scope = scope_of(actor)
    if customer_id is not None:
        customer = queries.get_customer(session, scope=scope, customer_id=customer_id)
        if customer is None:
            raise NotFound("customer not found")
        if store_id is not None and store_id != customer.store_id:
            raise Invalid("the customer belongs to another store", ("body", "store_id"))
        store_id = customer.store_id
    if store_id is None:
        if len(actor.store_ids) != 1:
            raise Invalid(
                "required without customer_id when you have several stores", ("body", "store_id")
            )
        store_id = actor.store_ids[0]
    if queries.get_store(session, scope=scope, store_id=store_id) is None:
        raise NotFound("store not found")
    owner_id = owner_id if owner_id is not None else actor.id
    if queries.user_in_store(session, store_id=store_id, user_id=owner_id) is None:
        raise Invalid("the owner must be an active user of the store", ("body", "owner_id"))
    task = queries.create_callback(
        session,
        store_id=store_id,
        customer_id=customer_id,
        phone_e164=phone,
        owner_id=owner_id,
        reason=reason,
        due_at=due_at or utcnow(),
    )
    publish(
        bus,
        task.store_id,
        "callback.created",
        {"callback_id": task.id, "customer_id": task.customer_id, "owner_id": task.owner_id},
    )
    return task


def complete_callback(session: Session, actor: User, bus: EventBus, task_id: int) -> CallbackTask:
    """Idempotent (a task already done keeps who did it); announced only when it closes."""
    task = find_callback(session, actor, task_id)
    was_open = task.done_at is None
    task = queries.complete_callback(session, task=task, user_id=actor.id)
    if was_open:
        publish(bus, task.store_id, "callback.done", {"callback_id": task.id, "by": actor.id})
    return task
