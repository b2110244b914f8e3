"""Integrations: the DMS's own webhook credentials (admins only; the secret is shown once)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, status

from api.deps import AdminUser, DbId, SessionDep
from api.schemas import IntegrationIn, IntegrationOut, NewIntegrationOut
from records import integrations
from records.models import Integration
from usecases import integrations as integration_usecase

router = APIRouter(tags=["admin"])


@router.post("/integrations", response_model=NewIntegrationOut, status_code=status.HTTP_201_CREATED)
def add_integration(
    body: IntegrationIn, session: SessionDep, admin: AdminUser
) -> NewIntegrationOut:
    """A key id and secret for one store's DMS to sign webhook requests with (README "DMS
    webhooks"). A name the store already uses is 409."""
    made = integration_usecase.add_integration(session, store_id=body.store_id, name=body.name)
    out = IntegrationOut.model_validate(made.integration)
    return NewIntegrationOut(**out.model_dump(), secret=made.secret)


@router.get("/integrations", response_model=list[IntegrationOut])
def list_integrations(session: SessionDep, admin: AdminUser) -> Sequence[Integration]:
    return integrations.list_all(session)


@router.post("/integrations/{integration_id}/revoke", response_model=IntegrationOut)
def revoke_integration(integration_id: DbId, session: SessionDep, admin: AdminUser) -> Integration:
    """Its signatures are refused from now on; the row stays for the record."""
    return integration_usecase.revoke_integration(session, integration_id=integration_id)
