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
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Select, bindparam, func, select
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.orm.interfaces import LoaderOption

from ivr.domain import (
    CLOSED_STATUSES,
    STANDARD_STATUSES,
    AdvisorInfo,
    Closure,
    CustomerInfo,
    DeclinedItemInfo,
    DepartmentInfo,
    DepartmentKind,
    LineStatus,
    PurchaseInfo,
    RelationshipInfo,
    RepairOrderInfo,
    Role,
    StatusEvent,
    StoreInfo,
    ThreadEntryInfo,
    VehicleInfo,
    parse_closures,
)
from ivr.phone import try_e164
from records.models import (
    Customer,
    Department,
    FollowUp,
    PhoneNumber,
    RepairOrder,
    RoLineItem,
    Store,
    StoreNumber,
    ThreadEntry,
    User,
    Vehicle,
    VehiclePurchase,
    user_stores,
)

RECENT_ENTRIES = 3  # thread entries shown on a screen-pop


# --- pure conversions -------------------------------------------------------------------------


def statuses_for(store: Store) -> tuple[str, ...]:
    """The standard statuses in lane order, then the store's own (duplicates dropped)."""
    extra = [s for s in (store.custom_statuses or []) if s and s not in STANDARD_STATUSES]
    return STANDARD_STATUSES + tuple(dict.fromkeys(extra))


def department_view(department: Department) -> DepartmentInfo:
    hours = department.hours
    return DepartmentInfo(
        id=department.id,
        kind=department.kind,
        name=department.name,
        hours={d: [list(s) for s in spans] for d, spans in hours.items()} if hours else None,
        flow=department.flow or "main",
    )


def _closures(store: Store) -> tuple[Closure, ...]:
    try:
        return parse_closures(store.closures or [])
    except ValueError:  # checked on the way in (import, API); a bad row must not drop calls
        return ()


def store_view(store: Store, departments: Sequence[Department] = ()) -> StoreInfo:
    """`departments`: the store's, when the caller needs them (a call: which one was dialled)."""
    return StoreInfo(
        id=store.id,
        name=store.name,
        timezone=store.timezone,
        hours={day: [list(span) for span in spans] for day, spans in (store.hours or {}).items()},
        dids=tuple(store.dids),
        recording_consent=store.recording_consent,
        statuses=statuses_for(store),
        address=store.address,
        closures=_closures(store),
        departments=tuple(department_view(d) for d in departments),
        number_departments={
            n.e164: n.department.kind for n in store.numbers if n.department is not None
        },
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


def purchase_view(purchase: VehiclePurchase) -> PurchaseInfo:
    """Needs `vehicle` and `salesperson` loaded; the user's name wins over the DMS's."""
    seller = purchase.salesperson
    return PurchaseInfo(
        id=purchase.id,
        purchased_at=purchase.purchased_at,
        salesperson=seller.name if seller is not None else purchase.salesperson_name,
        condition=purchase.condition,
        vehicle=vehicle_view(purchase.vehicle) if purchase.vehicle is not None else None,
        deal=purchase.dms_id,
        salesperson_id=purchase.salesperson_id,
    )


def customer_view(
    customer: Customer,
    open_repair_orders: Sequence[RepairOrder] = (),
    recent_entries: Sequence[ThreadEntry] = (),
    relationship: RelationshipInfo | None = None,
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
        relationship=relationship or RelationshipInfo(open_repair_orders=len(open_repair_orders)),
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
    return select(Store).options(selectinload(Store.numbers).joinedload(StoreNumber.department))


def load_departments(session: Session, store_id: int) -> list[Department]:
    query = select(Department).where(Department.store_id == store_id).order_by(Department.id)
    return list(session.scalars(query))


def load_store(session: Session, store_id: int) -> StoreInfo | None:
    store = session.scalars(_store_query().where(Store.id == store_id)).first()
    if store is None:
        return None
    return store_view(store, load_departments(session, store.id))


def load_stores(session: Session) -> list[StoreInfo]:
    """Every store with its numbers and departments (a handful of rows in a store group)."""
    stores = session.scalars(_store_query().order_by(Store.id)).all()
    departments: dict[int, list[Department]] = {}
    for department in session.scalars(select(Department).order_by(Department.id)):
        departments.setdefault(department.store_id, []).append(department)
    return [store_view(store, departments.get(store.id, [])) for store in stores]


def load_store_for_did(session: Session, did: str, region: str = "US") -> StoreInfo | None:
    """The store a dialed number rings; `did` may be in any format a trunk sends."""
    e164 = try_e164(did, region)
    if e164 is None:
        return None
    query = _store_query().join(StoreNumber, StoreNumber.store_id == Store.id)
    store = session.scalars(query.where(StoreNumber.e164 == e164)).first()
    if store is None:
        return None
    return store_view(store, load_departments(session, store.id))


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


_PURCHASES = (
    select(VehiclePurchase)
    .where(VehiclePurchase.customer_id == bindparam("customer_id"))
    .options(joinedload(VehiclePurchase.vehicle), joinedload(VehiclePurchase.salesperson))
    .order_by(VehiclePurchase.purchased_at.desc(), VehiclePurchase.id.desc())
)
# Visits and open follow-ups in one round trip: scalar subqueries, each on its own index.
_CLOSED_ROS = RepairOrder.customer_id == bindparam("customer_id")
_TALLY = select(
    select(func.count(RepairOrder.id)).where(_CLOSED_ROS, ~is_open_clause()).scalar_subquery(),
    select(func.max(func.coalesce(RepairOrder.closed_at, RepairOrder.opened_at)))
    .where(_CLOSED_ROS, ~is_open_clause())
    .scalar_subquery(),
    select(func.count(FollowUp.id))
    .where(FollowUp.customer_id == bindparam("customer_id"), FollowUp.done_at.is_(None))
    .scalar_subquery(),
)
_DECLINED = (
    select(RoLineItem, RepairOrder.number)
    .join(RepairOrder, RepairOrder.id == RoLineItem.repair_order_id)
    .where(
        RepairOrder.customer_id == bindparam("customer_id"),
        RoLineItem.status == LineStatus.declined.value,
    )
    .order_by(RepairOrder.opened_at.desc(), RoLineItem.id.desc())
)


def load_purchases(session: Session, customer_id: int) -> list[VehiclePurchase]:
    """Vehicles the customer bought here, newest first (vehicle and salesperson loaded)."""
    return list(session.scalars(_PURCHASES, {"customer_id": customer_id}).unique())


def load_relationship(
    session: Session, customer_id: int, open_repair_orders: int | None = None
) -> RelationshipInfo:
    """Vehicles bought, service visits, open ROs, declined items and open follow-ups: three
    indexed queries by customer (four when the open RO count is not given)."""
    purchases = load_purchases(session, customer_id)
    visits, last_visit, follow_ups = session.execute(_TALLY, {"customer_id": customer_id}).one()
    declined = session.execute(_DECLINED, {"customer_id": customer_id}).all()
    if open_repair_orders is None:
        open_repair_orders = len(load_open_repair_orders(session, customer_id))
    # SQLite hands back max() of a datetime column as text; read it through the column type.
    if isinstance(last_visit, str):
        last_visit = datetime.fromisoformat(last_visit).replace(tzinfo=UTC)
    return RelationshipInfo(
        purchases=tuple(purchase_view(p) for p in purchases),
        service_visits=int(visits or 0),
        last_visit_at=last_visit,
        open_repair_orders=open_repair_orders,
        declined=tuple(
            DeclinedItemInfo(
                id=item.id,
                description=item.description,
                repair_order=number,
                estimate_cents=item.estimate_cents,
                decided_at=item.decided_at,
            )
            for item, number in declined
        ),
        open_follow_ups=int(follow_ups or 0),
    )


def load_customer(
    session: Session, customer_id: int, store_id: int | None = None
) -> CustomerInfo | None:
    """The full screen-pop view of one customer; `store_id` guards against cross-store reads."""
    customer = session.scalars(_CUSTOMER, {"customer_id": customer_id}).first()
    if customer is None or (store_id is not None and customer.store_id != store_id):
        return None
    open_ros = load_open_repair_orders(session, customer.id)
    return customer_view(
        customer,
        open_ros,
        load_recent_entries(session, customer.id),
        load_relationship(session, customer.id, len(open_ros)),
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
    """Ring-group members in a stable order. "service" is every active advisor of the store
    who works in no other department; a department's kind (`sales`) is its users; any name is
    also the users whose `groups` list holds it (filtered here, not in SQL, because JSON
    containment differs between SQLite and PostgreSQL and a store has few users)."""
    users = session.scalars(_store_users(store_id)).all()
    kinds = {d.id: d.kind for d in load_departments(session, store_id)}
    other = {k for k in DepartmentKind if k != DepartmentKind.service}

    def department(user: User) -> str:
        return kinds.get(user.department_id or 0, DepartmentKind.service.value)

    if name == "service":
        members = [u for u in users if u.role == Role.advisor and department(u) not in other]
    else:
        members = [
            u
            for u in users
            if name in (u.groups or []) or (name in other and department(u) == name)
        ]
    return [advisor_view(u) for u in members]
