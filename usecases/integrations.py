"""Integrations: an admin gives a store's DMS its own webhook credential (CLI and admin API).

The secret is returned once, here; afterwards only its key id is ever shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from records import integrations
from records.models import Integration, Store
from usecases.errors import Conflict, Invalid, NotFound


@dataclass(frozen=True)
class NewIntegration:
    integration: Integration
    secret: str  # shown to the admin this once


def add_integration(session: Session, *, store_id: int, name: str) -> NewIntegration:
    """Make and commit an integration; one name per store."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise Invalid("a name has 1 to 100 characters", ("body", "name"))
    store = session.get(Store, store_id)
    if store is None:
        raise NotFound("store not found", ("body", "store_id"))
    if integrations.by_name(session, store_id=store.id, name=name) is not None:
        raise Conflict(f"{store.name} already has an integration named {name!r}", ("body", "name"))
    integration, secret = integrations.create(session, store=store, name=name)
    session.commit()
    return NewIntegration(integration, secret)


def revoke_integration(session: Session, *, integration_id: int) -> Integration:
    integration = session.get(Integration, integration_id)
    if integration is None:
        raise NotFound("integration not found")
    integrations.revoke(integration)
    session.commit()
    return integration
