"""What every follow-up concern shares: the store's policy, the outcomes that close one, trigger
names, the service department, and the thread entry a follow-up writes."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.domain import (
    DepartmentKind,
    FollowUpKind,
    FollowUpOutcome,
    ThreadKind,
)
from ivr.policies import FollowUpPolicy
from records.models import (
    Department,
    FollowUp,
    Store,
    ThreadEntry,
)

CLOSING = frozenset({FollowUpOutcome.booked, FollowUpOutcome.not_interested, FollowUpOutcome.done})
TRIGGER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # a DMS event: part_arrived, loaner_back
STATUS_TRIGGER = "status:"  # + a status name: the RO reached that status


def policy_for(store: Store) -> FollowUpPolicy:
    """The store's policy; a bad stored value falls back to the defaults."""
    try:
        return FollowUpPolicy.model_validate(store.follow_ups or {})
    except ValidationError:
        return FollowUpPolicy()


def service_department_id(session: Session, store_id: int) -> int | None:
    return session.scalar(
        select(Department.id).where(
            Department.store_id == store_id, Department.kind == DepartmentKind.service.value
        )
    )


KIND_TITLES = {
    FollowUpKind.declined_service.value: "Declined service",
    FollowUpKind.promise.value: "Promise",
    FollowUpKind.defector.value: "Win-back call",
}


def follow_up_title(fu: FollowUp) -> str:
    title = KIND_TITLES.get(fu.kind, "Follow-up")
    return f"{title} ({fu.text})" if fu.text else title


def follow_up_entry(
    session: Session,
    fu: FollowUp,
    *,
    author_id: int | None,
    body: str,
    at: datetime,
    extra: dict[str, Any],
) -> ThreadEntry:
    entry = ThreadEntry(
        store_id=fu.store_id,
        customer_id=fu.customer_id,
        kind=ThreadKind.follow_up.value,
        at=at,
        author_id=author_id,
        body=body,
        data={
            "follow_up_id": fu.id,
            "follow_up_kind": fu.kind,
            "outcome": fu.outcome,
            "attempts": fu.attempts,
            "repair_order_id": fu.repair_order_id,
            "line_item_id": fu.line_item_id,
            "due_at": fu.due_at.isoformat() if fu.due_at else None,
            **extra,
        },
    )
    session.add(entry)
    return entry
