"""The API's data access: every query the HTTP routes run lives here, as keyword-only functions.

Store scope is enforced here, not in the routes: every read of a store-owned row takes a `Scope`
and filters by it, so an object outside the caller's stores is simply "not found". Writes flush
and commit; the caller publishes events only after the commit, so a listener never hears about
a row it cannot read yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload

from ivr.domain import CLOSED_STATUSES, STANDARD_STATUSES, ThreadKind
from records.models import (
    ApiToken,
    Call,
    CallbackTask,
    Customer,
    Mention,
    PhoneNumber,
    Recording,
    RepairOrder,
    StatusEventRow,
    Store,
    ThreadEntry,
    User,
    Vehicle,
    user_stores,
    utcnow,
)

# Writing last_used_at on every request would make each GET a write (one writer at a time on
# SQLite); a few minutes of precision is plenty to spot unused tokens.
TOKEN_TOUCH_INTERVAL = timedelta(minutes=5)


@dataclass(frozen=True)
class Scope:
    """The stores a request may see; `store_ids=None` means every store (admins)."""

    store_ids: frozenset[int] | None

    def allows(self, store_id: int) -> bool:
        return self.store_ids is None or store_id in self.store_ids

    def where(self, column: InstrumentedAttribute[int] | Any) -> ColumnElement[bool]:
        if self.store_ids is None:
            return true()
        return column.in_(sorted(self.store_ids))


def _page(stmt: Select[Any], *, limit: int, offset: int) -> Select[Any]:
    return stmt.limit(limit).offset(offset)


def _like_prefix(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


# --- tokens and users ---------------------------------------------------------------------


def live_token(session: Session, *, token_sha256: str) -> tuple[ApiToken, User] | None:
    """A token that is not revoked, and its active user; expiry is the caller's rule
    (api/auth.py), so an expired token can be told from an unknown one."""
    row = session.execute(
        select(ApiToken, User)
        .join(User, ApiToken.user_id == User.id)
        .where(
            ApiToken.token_sha256 == token_sha256,
            ApiToken.revoked_at.is_(None),
            User.active.is_(True),
        )
        .options(selectinload(User.stores))
    ).first()
    if row is None:
        return None
    token, user = row
    return token, user


def touch_token(session: Session, token: ApiToken) -> None:
    """Note the token's use, at most every TOKEN_TOUCH_INTERVAL (a write per request would
    queue every API call on SQLite's one writer)."""
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > TOKEN_TOUCH_INTERVAL:
        token.last_used_at = now
        session.commit()


def add_token(
    session: Session, *, user: User, name: str, token_sha256: str, expires_at: datetime
) -> ApiToken:
    token = ApiToken(user_id=user.id, name=name, token_sha256=token_sha256, expires_at=expires_at)
    session.add(token)
    session.commit()
    return token


def revoke_token(session: Session, *, token_id: int) -> ApiToken | None:
    token = session.get(ApiToken, token_id)
    if token is not None and token.revoked_at is None:
        token.revoked_at = utcnow()
        session.commit()
    return token


def list_tokens(session: Session, *, user_id: int) -> Sequence[ApiToken]:
    return session.scalars(
        select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)
    ).all()


def get_user(session: Session, *, user_id: int) -> User | None:
    return session.get(User, user_id, options=[selectinload(User.stores)])


def get_user_by_username(session: Session, *, username: str) -> User | None:
    return session.scalar(
        select(User).where(User.username == username).options(selectinload(User.stores))
    )


def first_user_with_role(session: Session, *, role: str) -> User | None:
    """The oldest active user with `role` (the demo picks whom to hand a token to)."""
    return session.scalar(
        select(User).where(User.role == role, User.active.is_(True)).order_by(User.id).limit(1)
    )


def list_users(session: Session, *, limit: int, offset: int) -> Sequence[User]:
    stmt = select(User).order_by(User.id).options(selectinload(User.stores))
    return session.scalars(_page(stmt, limit=limit, offset=offset)).all()


def create_user(
    session: Session,
    *,
    username: str,
    name: str,
    role: str,
    stores: Sequence[Store],
    email: str | None = None,
    phone: str | None = None,
) -> User:
    """Raises IntegrityError (→ 409) when the username is taken."""
    user = User(
        username=username, name=name, role=role, email=email, phone=phone, stores=list(stores)
    )
    session.add(user)
    session.commit()
    return user


def users_in_store(session: Session, *, store_id: int, usernames: Iterable[str]) -> list[User]:
    """Active users of one store, matched case-insensitively by username (for @mentions)."""
    wanted = sorted({u.lower() for u in usernames})
    if not wanted:
        return []
    return list(
        session.scalars(
            select(User)
            .join(user_stores, user_stores.c.user_id == User.id)
            .where(
                user_stores.c.store_id == store_id,
                User.active.is_(True),
                func.lower(User.username).in_(wanted),
            )
        ).all()
    )


def user_in_store(session: Session, *, store_id: int, user_id: int) -> User | None:
    return session.scalar(
        select(User)
        .join(user_stores, user_stores.c.user_id == User.id)
        .where(user_stores.c.store_id == store_id, User.id == user_id, User.active.is_(True))
    )


# --- stores -------------------------------------------------------------------------------


def list_stores(session: Session, *, scope: Scope) -> Sequence[Store]:
    return session.scalars(select(Store).where(scope.where(Store.id)).order_by(Store.id)).all()


def get_store(session: Session, *, scope: Scope, store_id: int) -> Store | None:
    return session.scalar(select(Store).where(Store.id == store_id, scope.where(Store.id)))


def stores_by_ids(session: Session, *, ids: Iterable[int]) -> dict[int, Store]:
    wanted = sorted(set(ids))
    rows = session.scalars(select(Store).where(Store.id.in_(wanted))).all() if wanted else []
    return {s.id: s for s in rows}


def stores_by_dms_ids(session: Session, *, dms_ids: Iterable[str]) -> dict[str, Store]:
    wanted = sorted(set(dms_ids))
    rows = session.scalars(select(Store).where(Store.dms_id.in_(wanted))).all() if wanted else []
    return {s.dms_id: s for s in rows}


def any_store(session: Session) -> bool:
    return session.scalar(select(Store.id).limit(1)) is not None


def allowed_statuses(store: Store) -> tuple[str, ...]:
    """What a repair order of this store may be set to: the lane's steps, closing, custom."""
    return STANDARD_STATUSES + CLOSED_STATUSES + tuple(store.custom_statuses or ())


# --- customers and vehicles ---------------------------------------------------------------

_CUSTOMER_SUMMARY = (selectinload(Customer.phones), selectinload(Customer.advisor))


def find_customers(
    session: Session,
    *,
    scope: Scope,
    phone_e164: str | None = None,
    name: str | None = None,
    ro_number: str | None = None,
    limit: int,
    offset: int,
) -> Sequence[Customer]:
    """Customers matching every given criterion; name is a case-insensitive prefix of the
    first name, the last name or "first last". Erased customers (nameless tombstones kept
    for the reports' counts) are never found."""
    stmt = select(Customer).where(scope.where(Customer.store_id), Customer.erased_at.is_(None))
    if phone_e164 is not None:
        # The ids first, as a list: given a subquery, SQLite without planner statistics walked
        # the store's customers in name order testing each (bench/api_lookup.py at 100k
        # customers: 54 ms → 6 ms); a literal id list makes it fetch those rows by key.
        ids = session.scalars(
            select(PhoneNumber.customer_id).where(
                PhoneNumber.e164 == phone_e164, scope.where(PhoneNumber.store_id)
            )
        ).all()
        stmt = stmt.where(Customer.id.in_(sorted(set(ids))))
    if name:
        pattern = _like_prefix(name.strip())
        full = func.lower(Customer.first_name + " " + Customer.last_name)
        stmt = stmt.where(
            or_(
                func.lower(Customer.first_name).like(pattern, escape="\\"),
                func.lower(Customer.last_name).like(pattern, escape="\\"),
                full.like(pattern, escape="\\"),
            )
        )
    if ro_number is not None:
        stmt = stmt.where(
            Customer.id.in_(
                select(RepairOrder.customer_id).where(
                    RepairOrder.number == ro_number, scope.where(RepairOrder.store_id)
                )
            )
        )
    stmt = stmt.order_by(Customer.last_name, Customer.first_name, Customer.id).options(
        *_CUSTOMER_SUMMARY
    )
    return session.scalars(_page(stmt, limit=limit, offset=offset)).all()


def get_customer(session: Session, *, scope: Scope, customer_id: int) -> Customer | None:
    return session.scalar(
        select(Customer)
        .where(Customer.id == customer_id, scope.where(Customer.store_id))
        .options(*_CUSTOMER_SUMMARY, selectinload(Customer.vehicles))
    )


_RO_LOADS = (
    selectinload(RepairOrder.events),
    selectinload(RepairOrder.vehicle),
    selectinload(RepairOrder.advisor),
)


def open_repair_orders(session: Session, *, customer_id: int) -> Sequence[RepairOrder]:
    """Open ROs oldest first, with their status history (what a screen-pop shows)."""
    return session.scalars(
        select(RepairOrder)
        .where(
            RepairOrder.customer_id == customer_id,
            RepairOrder.closed_at.is_(None),
            RepairOrder.status.not_in(CLOSED_STATUSES),
        )
        .order_by(RepairOrder.opened_at, RepairOrder.id)
        .options(*_RO_LOADS)
    ).all()


# --- repair orders ------------------------------------------------------------------------


def get_repair_order(session: Session, *, scope: Scope, ro_id: int) -> RepairOrder | None:
    return session.scalar(
        select(RepairOrder)
        .where(RepairOrder.id == ro_id, scope.where(RepairOrder.store_id))
        .options(*_RO_LOADS)
    )


def repair_orders_by_number(
    session: Session, *, scope: Scope, number: str, store_id: int | None = None
) -> Sequence[RepairOrder]:
    """RO numbers are unique per store only, so an admin may get one per store."""
    stmt = select(RepairOrder).where(
        RepairOrder.number == number, scope.where(RepairOrder.store_id)
    )
    if store_id is not None:
        stmt = stmt.where(RepairOrder.store_id == store_id)
    return session.scalars(stmt.order_by(RepairOrder.store_id).options(*_RO_LOADS)).all()


@dataclass(frozen=True)
class StatusChange:
    repair_order: RepairOrder
    event: StatusEventRow
    entry: ThreadEntry
    previous_status: str
    duplicate: bool  # the same status at the same time was already recorded: nothing changed


def change_ro_status(
    session: Session,
    *,
    ro: RepairOrder,
    status: str,
    at: datetime,
    note: str | None,
    source: str,
    author_id: int | None,
) -> StatusChange:
    """Append a status event, move the RO to its latest status and note it on the thread
    (flushed, not committed: `usecases.status` owns the transaction).

    A repeated webhook (same status and time) changes nothing: the thread entry carries a
    dedupe key, so even two deliveries racing each other add one entry. The RO takes the status
    of its latest event by time, so a late, out-of-order webhook does not roll it back.
    """
    dedupe_key = f"ro-status:{ro.id}:{status}:{at.isoformat()}"
    existing = session.scalar(select(ThreadEntry).where(ThreadEntry.dedupe_key == dedupe_key))
    if existing is not None:
        event = next((e for e in ro.events if e.status == status and e.at == at), ro.events[-1])
        return StatusChange(ro, event, existing, ro.status, duplicate=True)

    previous = ro.status
    event = StatusEventRow(repair_order=ro, status=status, at=at, source=source, note=note)
    session.add(event)
    session.flush()
    latest = session.scalars(
        select(StatusEventRow)
        .where(StatusEventRow.repair_order_id == ro.id)
        .order_by(StatusEventRow.at.desc(), StatusEventRow.id.desc())
        .limit(1)
    ).one()
    ro.status = latest.status
    if latest.status in CLOSED_STATUSES:
        ro.closed_at = ro.closed_at or latest.at
    else:
        ro.closed_at = None
    body = f"RO {ro.number}: {previous} → {status}" + (f" ({note})" if note else "")
    entry = ThreadEntry(
        store_id=ro.store_id,
        customer_id=ro.customer_id,
        kind=ThreadKind.status_change.value,
        at=at,
        author_id=author_id,
        body=body,
        data={
            "repair_order_id": ro.id,
            "number": ro.number,
            "from": previous,
            "to": status,
            "note": note,
            "source": source,
        },
        dedupe_key=dedupe_key,
    )
    session.add(entry)
    session.flush()
    session.refresh(ro, attribute_names=["events"])
    return StatusChange(ro, event, entry, previous, duplicate=False)


# --- thread, notes and mentions -----------------------------------------------------------

_ENTRY_LOADS = (
    selectinload(ThreadEntry.author),
    selectinload(ThreadEntry.mentions).selectinload(Mention.user),
)


def thread_entries(
    session: Session,
    *,
    customer_id: int,
    before: tuple[datetime, int] | None,
    limit: int,
) -> Sequence[ThreadEntry]:
    """Newest first; `before` is the (at, id) of the last entry of the previous page."""
    stmt = select(ThreadEntry).where(ThreadEntry.customer_id == customer_id)
    if before is not None:
        at, entry_id = before
        stmt = stmt.where(
            or_(ThreadEntry.at < at, and_(ThreadEntry.at == at, ThreadEntry.id < entry_id))
        )
    stmt = stmt.order_by(ThreadEntry.at.desc(), ThreadEntry.id.desc()).limit(limit)
    return session.scalars(stmt.options(*_ENTRY_LOADS)).all()


def add_note(
    session: Session, *, customer: Customer, author: User, body: str, mentioned: Sequence[User]
) -> ThreadEntry:
    entry = ThreadEntry(
        store_id=customer.store_id,
        customer_id=customer.id,
        kind=ThreadKind.note.value,
        author=author,
        body=body,
        data={"mentions": [u.username for u in mentioned]},
        mentions=[Mention(user=u) for u in {u.id: u for u in mentioned}.values()],
    )
    session.add(entry)
    session.commit()
    return entry


def mentions_of(
    session: Session, *, scope: Scope, user_id: int, unseen_only: bool, limit: int, offset: int
) -> Sequence[Mention]:
    stmt = (
        select(Mention)
        .join(ThreadEntry, Mention.entry_id == ThreadEntry.id)
        .where(Mention.user_id == user_id, scope.where(ThreadEntry.store_id))
    )
    if unseen_only:
        stmt = stmt.where(Mention.seen_at.is_(None))
    stmt = stmt.order_by(ThreadEntry.at.desc(), Mention.id.desc()).options(
        selectinload(Mention.entry).options(*_ENTRY_LOADS)
    )
    return session.scalars(_page(stmt, limit=limit, offset=offset)).all()


def mark_mention_seen(
    session: Session, *, scope: Scope, user_id: int, mention_id: int
) -> Mention | None:
    mention = session.scalar(
        select(Mention)
        .join(ThreadEntry, Mention.entry_id == ThreadEntry.id)
        .where(
            Mention.id == mention_id,
            Mention.user_id == user_id,
            scope.where(ThreadEntry.store_id),
        )
        .options(selectinload(Mention.entry).options(*_ENTRY_LOADS))
    )
    if mention is not None and mention.seen_at is None:
        mention.seen_at = utcnow()
        session.commit()
    return mention


# --- callback tasks -----------------------------------------------------------------------


def list_callbacks(
    session: Session,
    *,
    scope: Scope,
    owner_id: int | None,
    state: str,
    store_id: int | None,
    now: datetime,
    limit: int,
    offset: int,
) -> Sequence[CallbackTask]:
    """Overdue open tasks first, then by due time; `state` is open, done or all."""
    stmt = select(CallbackTask).where(scope.where(CallbackTask.store_id))
    if owner_id is not None:
        stmt = stmt.where(CallbackTask.owner_id == owner_id)
    if store_id is not None:
        stmt = stmt.where(CallbackTask.store_id == store_id)
    if state == "open":
        stmt = stmt.where(CallbackTask.done_at.is_(None))
    elif state == "done":
        stmt = stmt.where(CallbackTask.done_at.is_not(None))
    overdue = case((and_(CallbackTask.done_at.is_(None), CallbackTask.due_at < now), 0), else_=1)
    stmt = stmt.order_by(overdue, CallbackTask.due_at, CallbackTask.id).options(
        selectinload(CallbackTask.owner)
    )
    return session.scalars(_page(stmt, limit=limit, offset=offset)).all()


def get_callback(
    session: Session, *, scope: Scope, task_id: int, owner_id: int | None = None
) -> CallbackTask | None:
    stmt = select(CallbackTask).where(
        CallbackTask.id == task_id, scope.where(CallbackTask.store_id)
    )
    if owner_id is not None:
        stmt = stmt.where(CallbackTask.owner_id == owner_id)
    return session.scalar(stmt.options(selectinload(CallbackTask.owner)))


def create_callback(
    session: Session,
    *,
    store_id: int,
    customer_id: int | None,
    phone_e164: str,
    owner_id: int | None,
    reason: str,
    due_at: datetime,
) -> CallbackTask:
    task = CallbackTask(
        store_id=store_id,
        customer_id=customer_id,
        phone=phone_e164,
        owner_id=owner_id,
        reason=reason,
        due_at=due_at,
    )
    session.add(task)
    session.commit()
    session.refresh(task, attribute_names=["owner"])
    return task


def complete_callback(session: Session, *, task: CallbackTask, user_id: int) -> CallbackTask:
    """Idempotent: a task already done keeps who did it and when."""
    if task.done_at is None:
        task.done_at = utcnow()
        task.done_by_id = user_id
        session.commit()
    return task


# --- calls --------------------------------------------------------------------------------

_CALL_LOADS = (selectinload(Call.legs),)


def list_calls(
    session: Session,
    *,
    scope: Scope,
    store_id: int | None = None,
    disposition: str | None = None,
    customer_id: int | None = None,
    unmatched: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int,
    offset: int,
) -> Sequence[Call]:
    """Newest first (the `(store_id, started_at)` index); `since` inclusive, `until` exclusive.
    `unmatched`: calls from numbers no customer had, waiting to be linked."""
    stmt = select(Call).where(scope.where(Call.store_id))
    if store_id is not None:
        stmt = stmt.where(Call.store_id == store_id)
    if disposition is not None:
        stmt = stmt.where(Call.disposition == disposition)
    if customer_id is not None:
        stmt = stmt.where(Call.customer_id == customer_id)
    if unmatched:
        stmt = stmt.where(Call.customer_id.is_(None))
    if since is not None:
        stmt = stmt.where(Call.started_at >= since)
    if until is not None:
        stmt = stmt.where(Call.started_at < until)
    stmt = stmt.order_by(Call.started_at.desc(), Call.id.desc()).options(*_CALL_LOADS)
    return session.scalars(_page(stmt, limit=limit, offset=offset)).all()


def get_call(session: Session, *, scope: Scope, call_id: int) -> Call | None:
    return session.scalar(
        select(Call).where(Call.id == call_id, scope.where(Call.store_id)).options(*_CALL_LOADS)
    )


def call_recordings(session: Session, *, call_id: int) -> Sequence[Recording]:
    return session.scalars(
        select(Recording).where(Recording.call_id == call_id).order_by(Recording.id)
    ).all()


def call_entries(session: Session, *, call_id: int) -> Sequence[ThreadEntry]:
    """The call's own entry and any the flow wrote during it (voicemail), oldest first."""
    return session.scalars(
        select(ThreadEntry)
        .where(ThreadEntry.call_id == call_id)
        .order_by(ThreadEntry.at, ThreadEntry.id)
        .options(*_ENTRY_LOADS)
    ).all()


def link_call(
    session: Session, *, call: Call, customer: Customer, add_phone: bool
) -> list[ThreadEntry]:
    """Put a call (its thread entries and callback tasks too) on a customer's thread.

    Relinking moves everything to the new customer: fixing a wrong link is the same action.
    With `add_phone` the caller's number joins the customer's phones, so the next call from it
    pops their record. Returns the entries that moved.
    """
    if customer.store_id != call.store_id:
        raise ValueError("the customer belongs to another store")
    call.customer_id = customer.id
    entries = list(session.scalars(select(ThreadEntry).where(ThreadEntry.call_id == call.id)))
    for entry in entries:
        entry.customer_id = customer.id
    for task in session.scalars(select(CallbackTask).where(CallbackTask.call_id == call.id)):
        task.customer_id = customer.id
    if add_phone and call.from_number.startswith("+") and len(call.from_number) <= 20:
        known = session.scalar(
            select(PhoneNumber.id).where(
                PhoneNumber.customer_id == customer.id, PhoneNumber.e164 == call.from_number
            )
        )
        if known is None:
            session.add(
                PhoneNumber(
                    store_id=customer.store_id,
                    customer_id=customer.id,
                    e164=call.from_number,
                    label="linked call",
                )
            )
    session.commit()
    return entries


def vehicle_by_vin(
    session: Session,
    customer: Customer,
    vin: str,
    *,
    year: int | None = None,
    make: str = "",
    model: str = "",
) -> Vehicle:
    """The store's vehicle with this VIN (the customer's own first), or a new one of theirs:
    a deal or an RO may name a car before the DMS sent its vehicle row."""
    found = session.scalars(
        select(Vehicle)
        .where(Vehicle.store_id == customer.store_id, Vehicle.vin == vin)
        .order_by(Vehicle.customer_id != customer.id, Vehicle.id)
    ).first()
    if found is not None:
        return found
    vehicle = Vehicle(
        store_id=customer.store_id, customer=customer, vin=vin, year=year, make=make, model=model
    )
    session.add(vehicle)
    session.flush()
    return vehicle
