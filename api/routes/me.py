"""Who am I, and which stores can I see."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter

from api.deps import CurrentUser, ScopeDep, SessionDep
from api.schemas import StoreOut, UserOut
from records import queries
from records.models import Store, User

router = APIRouter(tags=["me"])


@router.get("/me", response_model=UserOut)
def me(user: CurrentUser) -> User:
    """Your user, role and assigned stores (admins see every store via /stores)."""
    return user


@router.get("/stores", response_model=list[StoreOut])
def stores(session: SessionDep, scope: ScopeDep) -> Sequence[Store]:
    return queries.list_stores(session, scope=scope)
