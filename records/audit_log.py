"""The audit log (records.models.AuditLog): append a row, read a store's latest of a kind."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.domain import AuditAction
from records.models import AuditLog, User, utcnow

JOB = "retention job"  # the actor name of the daily run (no user)


def actor_name(user: User | None) -> str:
    """What the row says about who did it, readable after the user is gone."""
    return JOB if user is None else f"{user.name} ({user.username})"


def record(
    session: Session,
    *,
    store_id: int,
    actor: User | None,
    action: AuditAction,
    subject: str = "",
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditLog:
    """Add one row (flushed, committed with the change it records)."""
    row = AuditLog(
        store_id=store_id,
        at=at or utcnow(),
        actor_id=actor.id if actor is not None else None,
        actor_name=actor_name(actor),
        action=action.value,
        subject=subject,
        details=details or {},
    )
    session.add(row)
    session.flush()
    return row


def latest(session: Session, *, store_id: int, action: AuditAction) -> AuditLog | None:
    """The store's most recent row of this kind (the morning view's last retention run)."""
    return session.scalar(
        select(AuditLog)
        .where(AuditLog.store_id == store_id, AuditLog.action == action.value)
        .order_by(AuditLog.at.desc(), AuditLog.id.desc())
        .limit(1)
    )


def for_subject(session: Session, *, store_id: int, subject: str) -> list[AuditLog]:
    """Every row about one subject ("customer:12"), oldest first."""
    return list(
        session.scalars(
            select(AuditLog)
            .where(AuditLog.store_id == store_id, AuditLog.subject == subject)
            .order_by(AuditLog.at, AuditLog.id)
        )
    )
