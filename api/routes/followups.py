"""Follow-ups: declined service offered again, promises kept, silent defectors won back.

The rules live in records/followups/, the workflows in usecases/followups.py; these routes
parse and render. Advisors
work their own list; managers and admins see their stores' (with `overdue=true`: what is
late, whoever owns it).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy.orm import Session

from api.deps import MAX_ID, BusDep, CurrentUser, DbId, ScopeDep, SessionDep, field_error, not_found
from api.paging import Limit, Offset, page
from api.schemas import (
    DefectorOut,
    FollowUpOut,
    OutcomeIn,
    OutcomeOut,
    Page,
    PromiseIn,
    ThreadEntryOut,
)
from ivr.domain import FollowUpKind, Role
from records import followups, queries
from records.models import FollowUp, User, utcnow
from usecases import followups as usecase
from usecases.followups import publish_follow_up_changes

router = APIRouter(tags=["follow-ups"])

StoreFilter = Annotated[int | None, Query(ge=1, le=MAX_ID)]


@router.get("/follow-ups", response_model=Page[FollowUpOut])
def list_follow_ups(
    session: SessionDep,
    scope: ScopeDep,
    user: CurrentUser,
    mine: Annotated[
        bool | None,
        Query(description="Only yours. Advisors always get only theirs; others default to all."),
    ] = None,
    kind: Annotated[FollowUpKind | None, Query()] = None,
    state: Annotated[Literal["open", "done", "all"], Query()] = "open",
    overdue: Annotated[
        bool | None, Query(description="Only overdue (true) or not (false).")
    ] = None,
    store_id: StoreFilter = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[FollowUpOut]:
    """Overdue first, then by due time; promises waiting for their DMS event last."""
    if user.role == Role.advisor and mine is False:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail="advisors see only their own follow-ups"
        )
    rows = followups.list_follow_ups(
        session,
        scope=scope,
        now=utcnow(),
        owner_id=user.id if (mine or user.role == Role.advisor) else None,
        store_id=store_id,
        kind=kind.value if kind else None,
        state=state,
        overdue=overdue,
        limit=limit + 1,
        offset=offset,
    )
    return page(rows, FollowUpOut, limit=limit, offset=offset)


@router.get("/follow-ups/{follow_up_id}", response_model=FollowUpOut)
def get_follow_up(follow_up_id: DbId, session: SessionDep, user: CurrentUser) -> FollowUp:
    return usecase.find_follow_up(session, user, follow_up_id)


@router.post("/follow-ups", response_model=FollowUpOut, status_code=status.HTTP_201_CREATED)
def create_promise(
    body: PromiseIn, session: SessionDep, user: CurrentUser, bus: BusDep
) -> FollowUp:
    """Record a promise on a repair order: `due_at` ("call by 3 pm") or `trigger` ("call when
    the part arrives": `part_arrived`; `status:Ready for Pickup`), exactly one of them."""
    return usecase.record_promise(
        session,
        user,
        bus,
        repair_order_id=body.repair_order_id,
        text=body.text,
        due_at=body.due_at,
        trigger=body.trigger,
        owner_id=body.owner_id,
    )


@router.post("/follow-ups/{follow_up_id}/outcome", response_model=OutcomeOut)
def record_outcome(
    follow_up_id: DbId, body: OutcomeIn, session: SessionDep, user: CurrentUser, bus: BusDep
) -> OutcomeOut:
    """The result of a call: booked, not_interested and done close the follow-up; no_answer
    makes it due again later (closed as no_answer after the store's max attempts). Each is
    written on the customer's thread. A closed follow-up is 409."""
    result = usecase.record_outcome(
        session, user, bus, follow_up_id=follow_up_id, outcome=body.outcome, note=body.note
    )
    return OutcomeOut(
        follow_up=FollowUpOut.model_validate(result.follow_up),
        entry=ThreadEntryOut.model_validate(result.entry),
        closed=result.closed,
    )


def _store_for(session: Session, scope: queries.Scope, user: User, store_id: int | None) -> int:
    if store_id is None:
        if len(user.store_ids) != 1:
            raise field_error(("query", "store_id"), "required when you have several stores")
        store_id = user.store_ids[0]
    if queries.get_store(session, scope=scope, store_id=store_id) is None:
        raise not_found("store")
    return store_id


Months = Annotated[
    int | None, Query(ge=1, le=120, description="The window; default the store's setting.")
]


@router.get("/defectors", response_model=Page[DefectorOut])
def list_defectors(
    session: SessionDep,
    scope: ScopeDep,
    user: CurrentUser,
    store_id: StoreFilter = None,
    months: Months = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[DefectorOut]:
    """Silent defectors: customers whose last visit is older than the window (default the
    store's `defector_months`) and who have no open RO, most recently lapsed first."""
    store = queries.get_store(
        session, scope=scope, store_id=_store_for(session, scope, user, store_id)
    )
    assert store is not None
    rows = followups.silent_defectors(
        session, store=store, now=utcnow(), months=months, limit=limit + 1, offset=offset
    )
    return page(rows, DefectorOut, limit=limit, offset=offset)


@router.post(
    "/defectors/follow-ups",
    response_model=list[FollowUpOut],
    status_code=status.HTTP_201_CREATED,
)
def create_defector_follow_ups(
    session: SessionDep,
    scope: ScopeDep,
    user: CurrentUser,
    bus: BusDep,
    store_id: StoreFilter = None,
    months: Months = None,
) -> list[FollowUp]:
    """Managers: one win-back follow-up per defector, owned by the customer's advisor and due
    now; running it again adds only customers who lapsed since. Returns the new ones."""
    if user.role == Role.advisor:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="managers only")
    store = queries.get_store(
        session, scope=scope, store_id=_store_for(session, scope, user, store_id)
    )
    assert store is not None
    made = followups.create_defector_follow_ups(
        session, store=store, now=utcnow(), created_by_id=user.id, months=months
    )
    session.commit()
    for fu in made:
        session.refresh(fu, attribute_names=["owner"])
    publish_follow_up_changes(bus, store.id, made, [])
    return made
