"""ORM rows → the immutable `ivr.domain` views the flow engine, templates and events read.

Two layers:
- `*_view(row)` functions convert already-loaded rows; they never query, so callers decide
  what to load.
- `load_*(session, ...)` functions run the few indexed queries a live call needs. The customer
  lookup runs on every incoming call (screen-pop), so it goes phone → customer through the
  `(store_id, e164)` index and eager-loads everything with `selectinload` (a fixed handful of
  queries, never one per repair order or vehicle).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Select, bindparam, func, select
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.orm.interfaces import LoaderOption

from ivr.domain import (
    CLOSED_STATUSES,
    STANDARD_STATUSES,
    AdvisorInfo,
    CustomerInfo,
    RepairOrderInfo,
    Role,
    StatusEvent,
    StoreInfo,
    ThreadEntryInfo,
    VehicleInfo,
)
from ivr.phone import try_e164
from records.models import (
    Customer,
    PhoneNumber,
    RepairOrder,
    Store,
    StoreNumber,
    ThreadEntry,
    User,
    Vehicle,
    user_stores,
)

RECENT_ENTRIES = 3  # thread entries shown on a screen-pop


# --- pure conversions -------------------------------------------------------------------------


def statuses_for(store: Store) -> tuple[str, ...]:
    """The standard statuses in lane order, then the store's own (duplicates dropped)."""
    extra = [s for s in (store.custom_statuses or []) if s and s not in STANDARD_STATUSES]
    return STANDARD_STATUSES + tuple(dict.fromkeys(extra))


def store_view(store: Store) -> StoreInfo:
    return StoreInfo(
        id=store.id,
        name=store.name,
        timezone=store.timezone,
        hours={day: [list(span) for span in spans] for day, spans in (store.hours or {}).items()},
        dids=tuple(store.dids),
        recording_consent=store.recording_consent,
        statuses=statuses_for(store),
    )


def advisor_view(user: User) -> AdvisorInfo:
    """`contact` is what the worker rings: the SIP contact if the user has one, else the phone."""
    return AdvisorInfo(
        id=user.id,
        name=user.name,
        username=user.username,
        contact=user.sip_contact or user.phone,
        groups=tuple(user.groups or ()),
    )


def vehicle_view(vehicle: Vehicle) -> VehicleInfo:
    return VehicleInfo(
        id=vehicle.id,
        year=vehicle.year,
        make=vehicle.make,
        model=vehicle.model,
        vin=vehicle.vin,
        plate=vehicle.plate,
    )


def repair_order_view(ro: RepairOrder) -> RepairOrderInfo:
    """Needs `ro.events`, `ro.vehicle` and `ro.advisor` loaded (see `_ro_options`)."""
    return RepairOrderInfo(
        id=ro.id,
        number=ro.number,
        status=ro.status,
        opened_at=ro.opened_at,
        promised_at=ro.promised_at,
        vehicle=vehicle_view(ro.vehicle) if ro.vehicle is not None else None,
        advisor=advisor_view(ro.advisor) if ro.advisor is not None else None,
        history=tuple(StatusEvent(status=e.status, at=e.at, note=e.note) for e in ro.events),
        customer_id=ro.customer_id,
    )


def thread_entry_view(entry: ThreadEntry) -> ThreadEntryInfo:
    return ThreadEntryInfo(
        id=entry.id,
        kind=entry.kind,
        at=entry.at,
        body=entry.body,
        author=entry.author.name if entry.author is not None else None,
    )


def customer_view(
    customer: Customer,
    open_repair_orders: Sequence[RepairOrder] = (),
    recent_entries: Sequence[ThreadEntry] = (),
) -> CustomerInfo:
    """The assigned advisor is the customer's own (if still active), else the advisor of the
    newest open repair order, so "transfer to my advisor" has somebody to ring."""
    advisor: User | None = (
        customer.advisor if customer.advisor and customer.advisor.active else None
    )
    if advisor is None:
        for ro in reversed(open_repair_orders):
            if ro.advisor is not None and ro.advisor.active:
                advisor = ro.advisor
                break
    return CustomerInfo(
        id=customer.id,
        first_name=customer.first_name,
        last_name=customer.last_name,
        phones=tuple(p.e164 for p in customer.phones),
        vehicles=tuple(vehicle_view(v) for v in customer.vehicles),
        open_repair_orders=tuple(repair_order_view(ro) for ro in open_repair_orders),
        advisor=advisor_view(advisor) if advisor is not None else None,
        recent_entries=tuple(thread_entry_view(e) for e in recent_entries),
    )


def ro_number_key(number: str) -> str:
    """How a keyed RO number compares: digits only, leading zeros dropped ("RO-004512" → "4512")."""
    return re.sub(r"\D", "", number or "").lstrip("0")


# --- loaders ----------------------------------------------------------------------------------


def _ro_options() -> tuple[LoaderOption, ...]:
    return (
        selectinload(RepairOrder.events),
        joinedload(RepairOrder.vehicle),
        joinedload(RepairOrder.advisor),
    )


def is_open_clause() -> ColumnElement[bool]:
    """SQL for "this repair order is still in the shop" (not closed, not picked up)."""
    return RepairOrder.closed_at.is_(None) & RepairOrder.status.not_in(CLOSED_STATUSES)


def _store_query() -> Select[Store]:
    return select(Store).options(selectinload(Store.numbers))


def load_store(session: Session, store_id: int) -> StoreInfo | None:
    store = session.scalars(_store_query().where(Store.id == store_id)).first()
    return store_view(store) if store is not None else None


def load_store_for_did(session: Session, did: str, region: str = "US") -> StoreInfo | None:
    """The store a dialed number rings; `did` may be in any format a trunk sends."""
    e164 = try_e164(did, region)
    if e164 is None:
        return None
    query = _store_query().join(StoreNumber, StoreNumber.store_id == Store.id)
    store = session.scalars(query.where(StoreNumber.e164 == e164)).first()
    return store_view(store) if store is not None else None


# The screen-pop path runs these on every incoming call. Built once with bind parameters: at
# this size most of a lookup's time is SQLAlchemy building statements, not the database
# (measured on SQLite at 100k customers: ~2.5 ms a lookup instead of ~4.5 ms).
_PHONE_OWNERS = (
    select(PhoneNumber.customer_id)
    .where(PhoneNumber.store_id == bindparam("store_id"), PhoneNumber.e164 == bindparam("e164"))
    .order_by(PhoneNumber.customer_id)
)
_CUSTOMER = (
    select(Customer)
    .where(Customer.id == bindparam("customer_id"))
    .options(
        selectinload(Customer.phones),
        selectinload(Customer.vehicles),
        joinedload(Customer.advisor),
    )
)
_OPEN_ROS = (
    select(RepairOrder)
    .where(RepairOrder.customer_id == bindparam("customer_id"), is_open_clause())
    .options(*_ro_options())
    .order_by(RepairOrder.opened_at, RepairOrder.id)
)
_RECENT_ENTRIES = (
    select(ThreadEntry)
    .where(ThreadEntry.customer_id == bindparam("customer_id"))
    .options(joinedload(ThreadEntry.author))
    .order_by(ThreadEntry.at.desc(), ThreadEntry.id.desc())
    .limit(RECENT_ENTRIES)
)


def load_open_repair_orders(session: Session, customer_id: int) -> list[RepairOrder]:
    """Open repair orders, oldest first (the one a caller most likely asks about first)."""
    return list(session.scalars(_OPEN_ROS, {"customer_id": customer_id}).unique())


def load_recent_entries(session: Session, customer_id: int) -> list[ThreadEntry]:
    """The newest `RECENT_ENTRIES` thread entries, newest first."""
    return list(session.scalars(_RECENT_ENTRIES, {"customer_id": customer_id}))


def load_customer(
    session: Session, customer_id: int, store_id: int | None = None
) -> CustomerInfo | None:
    """The full screen-pop view of one customer; `store_id` guards against cross-store reads."""
    customer = session.scalars(_CUSTOMER, {"customer_id": customer_id}).first()
    if customer is None or (store_id is not None and customer.store_id != store_id):
        return None
    return customer_view(
        customer,
        load_open_repair_orders(session, customer.id),
        load_recent_entries(session, customer.id),
    )


def find_customer_id_by_phone(session: Session, store_id: int, e164: str) -> int | None:
    """Several customers may share a number (a family): prefer one with an open repair order,
    then the one created first, so the same caller always pops the same record."""
    ids = list(session.scalars(_PHONE_OWNERS, {"store_id": store_id, "e164": e164}))
    if len(ids) <= 1:
        return ids[0] if ids else None
    with_open = session.scalars(
        select(RepairOrder.customer_id)
        .where(RepairOrder.customer_id.in_(ids), is_open_clause())
        .order_by(RepairOrder.customer_id)
        .limit(1)
    ).first()
    return with_open if with_open is not None else ids[0]


def load_customer_by_phone(
    session: Session, store_id: int, phone: str, region: str = "US"
) -> CustomerInfo | None:
    """The caller by caller ID, in any format; None for unknown or unreadable numbers."""
    e164 = try_e164(phone, region)
    if e164 is None:
        return None
    customer_id = find_customer_id_by_phone(session, store_id, e164)
    return load_customer(session, customer_id) if customer_id is not None else None


def find_repair_order(session: Session, store_id: int, number: str) -> RepairOrder | None:
    """A repair order by the number as typed or keyed: "RO-4512", "004512" and "4512" all match
    RO number "4512" (or "RO-004512"). Several matches: the open one, then the newest."""
    key = ro_number_key(number)
    raw = (number or "").strip()
    if not key and not raw:
        return None
    candidates = {raw, key, re.sub(r"\D", "", raw)} - {""}
    query = select(RepairOrder).where(RepairOrder.store_id == store_id).options(*_ro_options())
    # Exact hits use the (store_id, number) unique index; the suffix scan below only runs for
    # numbers the DMS prints with a prefix or zero padding.
    found = list(session.scalars(query.where(RepairOrder.number.in_(candidates))).unique())
    if not found and key:
        like = query.where(RepairOrder.number.like(f"%{key}"))
        found = [ro for ro in session.scalars(like).unique() if ro_number_key(ro.number) == key]
    found = [ro for ro in found if ro_number_key(ro.number) == key or ro.number == raw]
    if not found:
        return None
    found.sort(
        key=lambda ro: (
            ro.closed_at is None and ro.status not in CLOSED_STATUSES,
            ro.opened_at,
            ro.id,
        )
    )
    return found[-1]


def load_repair_order(session: Session, store_id: int, number: str) -> RepairOrderInfo | None:
    ro = find_repair_order(session, store_id, number)
    return repair_order_view(ro) if ro is not None else None


def _store_users(store_id: int) -> Select[User]:
    return (
        select(User)
        .join(user_stores, user_stores.c.user_id == User.id)
        .where(user_stores.c.store_id == store_id, User.active.is_(True))
        .order_by(User.id)
    )


def load_user(session: Session, store_id: int, username: str) -> AdvisorInfo | None:
    """An active user of this store by username (case-insensitive)."""
    query = _store_users(store_id).where(func.lower(User.username) == username.strip().lower())
    user = session.scalars(query).first()
    return advisor_view(user) if user is not None else None


def load_group(session: Session, store_id: int, name: str) -> list[AdvisorInfo]:
    """Ring-group members in a stable order. "service" is every active advisor of the store;
    any other name is the users whose `groups` list holds it (filtered here, not in SQL,
    because JSON containment differs between SQLite and PostgreSQL and a store has few users)."""
    users = session.scalars(_store_users(store_id)).all()
    if name == "service":
        members = [u for u in users if u.role == Role.advisor]
    else:
        members = [u for u in users if name in (u.groups or [])]
    return [advisor_view(u) for u in members]
