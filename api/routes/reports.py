"""Managers' reports over the API: the GM's morning view (records/morning.py)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import Field

from api.deps import MAX_ID, CurrentUser, ScopeDep, SessionDep, field_error, not_found
from api.schemas import Out
from ivr.domain import Role
from records import morning, queries
from records.models import utcnow
from records.reports import DEFAULT_STALE_HOURS

router = APIRouter(prefix="/reports", tags=["reports"])

FIGURE_HELP = "; ".join(f"{name} ({of} ids)" for name, of, _ in morning.FIGURES)


class FigureOut(Out):
    count: int
    ids: list[int] = Field(description="The rows behind the count.")
    of: str = Field(description="What the ids are: call, callback or follow_up.")


class DepartmentOut(Out):
    department_id: int | None = Field(
        description="null: the store's service row when it has no service department on "
        "record, or the store total."
    )
    kind: str
    name: str
    figures: dict[str, FigureOut] = Field(description=FIGURE_HELP)
    median_callback_minutes: float | None = Field(
        description="Created → done, over the callbacks created in the range and done "
        "(their ids: figures.callbacks_timed)."
    )


class StoreRef(Out):
    id: int
    name: str
    timezone: str


class RetentionOut(Out):
    at: str = Field(description="When the run deleted (UTC).")
    by: str = Field(description="Who ran it: a user, or the daily retention job.")
    retention_days: int
    cutoff: str = Field(description="Media of calls that started before this went.")
    calls: int
    recordings: int
    transcripts: int
    files_removed: int
    files_missing: int = Field(description="Files already gone; their rows were deleted.")
    bytes_freed: int
    oldest_call: str | None
    newest_call: str | None
    skipped_live: int = Field(description="Media of calls still in progress, left alone.")


class MorningOut(Out):
    store: StoreRef
    from_: date = Field(alias="from", serialization_alias="from")
    to: date
    since: str = Field(description="Start of `from` in the store's zone, as UTC.")
    until: str = Field(description="End of `to` (exclusive) in the store's zone, as UTC.")
    stale_hours: float
    promise_grace_minutes: float
    departments: list[DepartmentOut]
    total: DepartmentOut
    retention: RetentionOut | None = Field(
        description="The store's last retention run (null: none has run)."
    )


@router.get("/morning", response_model=MorningOut, response_model_by_alias=True)
def morning_report(
    session: SessionDep,
    scope: ScopeDep,
    user: CurrentUser,
    store_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Default: your first store.")
    ] = None,
    first: Annotated[
        date | None,
        Query(alias="from", description="First local day (YYYY-MM-DD); default yesterday."),
    ] = None,
    last: Annotated[
        date | None,
        Query(alias="to", description="Last local day, inclusive; default `from`."),
    ] = None,
    stale_hours: Annotated[
        float, Query(gt=0, le=24 * 30, description="Avoidable after this long unchanged.")
    ] = DEFAULT_STALE_HOURS,
) -> MorningOut:
    """Yesterday's (or a range's) calls, callbacks, avoidable calls, promises and declined-
    service follow-ups per department, each count with the ids behind it. Managers and admins;
    another store is 404."""
    if user.role not in (Role.manager, Role.admin):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="managers and admins only")
    if store_id is None:
        stores = queries.list_stores(session, scope=scope)
        if not stores:
            raise not_found("store")
        store = stores[0]
    else:
        found = queries.get_store(session, scope=scope, store_id=store_id)
        if found is None:
            raise not_found("store")
        store = found
    now = utcnow()
    if first is None:
        first = morning.yesterday(store, now) if last is None else last
    last = last or first
    try:
        report = morning.morning_report(
            session, store=store, first=first, last=last, now=now, stale_hours=stale_hours
        )
    except morning.RangeError as exc:
        raise field_error(("query", "to"), str(exc)) from None
    return MorningOut.model_validate(report.to_json())
