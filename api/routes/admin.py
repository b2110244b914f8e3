"""Users and tokens: admins only (advisors and managers get 403, not 404: nothing is hidden)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from fastapi import APIRouter, status

from api.auth import new_token
from api.deps import AdminUser, DbId, SessionDep, SettingsDep, field_error, not_found
from api.paging import Limit, Offset, page
from api.schemas import NewTokenOut, Page, TokenIn, TokenOut, UserIn, UserOut
from records import queries
from records.models import ApiToken, User

router = APIRouter(tags=["admin"])


@router.get("/users", response_model=Page[UserOut])
def list_users(
    session: SessionDep, admin: AdminUser, limit: Limit = 50, offset: Offset = 0
) -> Page[UserOut]:
    rows = queries.list_users(session, limit=limit + 1, offset=offset)
    return page(rows, UserOut, limit=limit, offset=offset)


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(body: UserIn, session: SessionDep, admin: AdminUser) -> User:
    """A username already taken is a 409."""
    stores = queries.stores_by_ids(session, ids=body.store_ids)
    missing = sorted(set(body.store_ids) - stores.keys())
    if missing:
        raise field_error(("body", "store_ids"), f"no such store: {missing}")
    if queries.get_user_by_username(session, username=body.username) is not None:
        raise field_error(("body", "username"), "username already taken", code=409)
    return queries.create_user(
        session,
        username=body.username,
        name=body.name,
        role=body.role.value,
        stores=[stores[i] for i in body.store_ids],
        email=body.email,
        phone=body.phone,
    )


@router.get("/users/{user_id}", response_model=UserOut)
def get_user(user_id: DbId, session: SessionDep, admin: AdminUser) -> User:
    user = queries.get_user(session, user_id=user_id)
    if user is None:
        raise not_found("user")
    return user


@router.get("/users/{user_id}/tokens", response_model=list[TokenOut])
def list_tokens(user_id: DbId, session: SessionDep, admin: AdminUser) -> Sequence[ApiToken]:
    if queries.get_user(session, user_id=user_id) is None:
        raise not_found("user")
    return queries.list_tokens(session, user_id=user_id)


@router.post(
    "/users/{user_id}/tokens", response_model=NewTokenOut, status_code=status.HTTP_201_CREATED
)
def create_token(
    user_id: DbId, body: TokenIn, session: SessionDep, settings: SettingsDep, admin: AdminUser
) -> NewTokenOut:
    """The token is in this answer only; store it now. It expires after `expires_in_days`
    (default: the api_token_days setting)."""
    user = queries.get_user(session, user_id=user_id)
    if user is None:
        raise not_found("user")
    days = body.expires_in_days or settings.api_token_days
    token, secret = new_token(session, user, body.name, timedelta(days=days))
    return NewTokenOut(**TokenOut.model_validate(token).model_dump(), token=secret)


@router.post("/tokens/{token_id}/revoke", response_model=TokenOut)
def revoke_token(token_id: DbId, session: SessionDep, admin: AdminUser) -> ApiToken:
    token = queries.revoke_token(session, token_id=token_id)
    if token is None:
        raise not_found("token")
    return token
