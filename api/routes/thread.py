"""A customer's thread (newest first), notes with @mentions, and the caller's mentions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from api.deps import BusDep, CurrentUser, DbId, ScopeDep, SessionDep, not_found
from api.paging import Cursor, Limit, Offset, decode_cursor, encode_cursor, page
from api.schemas import CursorPage, MentionOut, NoteIn, Page, ThreadEntryOut
from records import queries
from records.models import Mention, ThreadEntry
from usecases import thread

router = APIRouter(tags=["thread"])


@router.get("/customers/{customer_id}/thread", response_model=CursorPage[ThreadEntryOut])
def customer_thread(
    customer_id: DbId,
    session: SessionDep,
    scope: ScopeDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CursorPage[ThreadEntryOut]:
    customer = queries.get_customer(session, scope=scope, customer_id=customer_id)
    if customer is None:
        raise not_found("customer")
    before = decode_cursor(cursor) if cursor else None
    rows = queries.thread_entries(session, customer_id=customer.id, before=before, limit=limit + 1)
    items = rows[:limit]
    next_cursor = encode_cursor(items[-1].at, items[-1].id) if len(rows) > limit else None
    return CursorPage[ThreadEntryOut](
        items=[ThreadEntryOut.model_validate(e) for e in items], next_cursor=next_cursor
    )


@router.post(
    "/customers/{customer_id}/notes",
    response_model=ThreadEntryOut,
    status_code=status.HTTP_201_CREATED,
)
def add_note(
    customer_id: DbId, note: NoteIn, session: SessionDep, user: CurrentUser, bus: BusDep
) -> ThreadEntry:
    """Post a note; every `@username` must be an active user of the customer's store (an
    unknown one is a 422 naming it)."""
    return thread.add_note(session, user, bus, customer_id=customer_id, body=note.body)


@router.get("/me/mentions", response_model=Page[MentionOut])
def my_mentions(
    session: SessionDep,
    scope: ScopeDep,
    user: CurrentUser,
    unseen: Annotated[bool, Query(description="Only mentions not marked seen.")] = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[MentionOut]:
    """Notes that mention you, newest first (only from stores you can still see)."""
    rows = queries.mentions_of(
        session, scope=scope, user_id=user.id, unseen_only=unseen, limit=limit + 1, offset=offset
    )
    return page(rows, MentionOut, limit=limit, offset=offset)


@router.post("/me/mentions/{mention_id}/seen", response_model=MentionOut)
def mark_seen(mention_id: DbId, session: SessionDep, scope: ScopeDep, user: CurrentUser) -> Mention:
    mention = queries.mark_mention_seen(
        session, scope=scope, user_id=user.id, mention_id=mention_id
    )
    if mention is None:
        raise not_found("mention")
    return mention
