"""Integrations (the DMS's credential for the webhooks): make, find, list, revoke.

A key id names the integration in each request (`X-Driveline-Key`); its secret signs the
request and is returned only by `create`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from records.models import Integration, Store, utcnow

KEY_PREFIX = "dk_"
SECRET_PREFIX = "dlwh_"


def create(session: Session, *, store: Store, name: str) -> tuple[Integration, str]:
    """A new integration for `store` and its secret (flushed; the caller commits)."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    integration = Integration(
        store_id=store.id, name=name, key_id=KEY_PREFIX + secrets.token_hex(8), secret=secret
    )
    session.add(integration)
    session.flush()
    return integration, secret


def by_name(session: Session, *, store_id: int, name: str) -> Integration | None:
    return session.scalars(
        select(Integration).where(Integration.store_id == store_id, Integration.name == name)
    ).first()


def active_by_key(session: Session, key_id: str) -> Integration | None:
    """The integration this key names, unless it was revoked."""
    return session.scalars(
        select(Integration).where(Integration.key_id == key_id, Integration.revoked_at.is_(None))
    ).first()


def list_all(session: Session, *, store_ids: frozenset[int] | None = None) -> Sequence[Integration]:
    stmt = select(Integration).order_by(Integration.store_id, Integration.name)
    if store_ids is not None:
        stmt = stmt.where(Integration.store_id.in_(store_ids))
    return session.scalars(stmt).all()


def revoke(integration: Integration, *, now: datetime | None = None) -> None:
    integration.revoked_at = integration.revoked_at or now or utcnow()
