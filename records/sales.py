"""Sales data on the store's one customer record: vehicles bought, with the salesperson.

The import (`purchase` rows) and the API (`POST /customers/{id}/purchases`) both write through
`upsert_purchase`, so a deal arrives the same way from either: upserted by its deal number
(the DMS's `dms_id`), with one `purchase` entry on the customer's thread.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ivr.domain import ThreadKind
from records.models import Customer, ThreadEntry, User, Vehicle, VehiclePurchase, user_stores

CONDITIONS: tuple[str, ...] = ("new", "used", "cpo")


def find_salesperson(session: Session, store_id: int, ref: str) -> User | None:
    """A user of this store by username, else by full name (both case-insensitive); None
    when the DMS names somebody who is not (or no longer) a user here."""
    wanted = ref.strip().lower()
    query = (
        select(User)
        .join(user_stores, user_stores.c.user_id == User.id)
        .where(user_stores.c.store_id == store_id)
        .where(or_(func.lower(User.username) == wanted, func.lower(User.name) == wanted))
        .order_by(func.lower(User.username) != wanted, User.id)
    )
    return session.scalars(query).first()


def describe(purchase: VehiclePurchase) -> str:
    """The thread's line: "Bought a new 2024 Chevrolet Equinox from Sam Seller"."""
    vehicle = purchase.vehicle
    what = (
        " ".join(str(p) for p in (vehicle.year, vehicle.make, vehicle.model) if p)
        if vehicle
        else ""
    )
    condition = {"cpo": "certified pre-owned", "used": "used", "new": "new"}.get(
        purchase.condition, purchase.condition
    )
    seller = purchase.salesperson.name if purchase.salesperson else purchase.salesperson_name
    text = f"Bought a {condition} {what or 'vehicle'}"
    return f"{text} from {seller}" if seller else text


def upsert_purchase(
    session: Session,
    *,
    customer: Customer,
    purchased_at: datetime,
    dms_id: str | None = None,
    vehicle: Vehicle | None = None,
    salesperson: User | None = None,
    salesperson_name: str = "",
    condition: str = "new",
) -> tuple[VehiclePurchase, str]:
    """(purchase, "created" / "updated" / "unchanged"); the deal's thread entry follows it.

    Raises ValueError for a condition other than new / used / cpo, or a vehicle or deal of
    another customer's store.
    """
    if condition not in CONDITIONS:
        raise ValueError(f"condition: {condition!r} (use {', '.join(CONDITIONS)})")
    if vehicle is not None and vehicle.store_id != customer.store_id:
        raise ValueError("vehicle: not a vehicle of this store")
    purchase = None
    if dms_id is not None:
        purchase = session.scalars(
            select(VehiclePurchase).where(
                VehiclePurchase.store_id == customer.store_id, VehiclePurchase.dms_id == dms_id
            )
        ).first()
    created = purchase is None
    if purchase is None:
        purchase = VehiclePurchase(
            store_id=customer.store_id, dms_id=dms_id, customer_id=customer.id
        )
        session.add(purchase)
    wanted = {
        "customer_id": customer.id,
        "purchased_at": purchased_at,
        "vehicle_id": vehicle.id if vehicle else None,
        "salesperson_id": salesperson.id if salesperson else None,
        "salesperson_name": salesperson_name or (salesperson.name if salesperson else ""),
        "condition": condition,
    }
    changed = False
    for attr, value in wanted.items():
        if getattr(purchase, attr) != value:
            setattr(purchase, attr, value)
            changed = True
    session.flush()
    session.refresh(purchase, ["vehicle", "salesperson"])
    _thread_entry(session, purchase)
    return purchase, "created" if created else ("updated" if changed else "unchanged")


def _thread_entry(session: Session, purchase: VehiclePurchase) -> None:
    key = f"purchase:{purchase.id}"
    entry = session.scalars(select(ThreadEntry).where(ThreadEntry.dedupe_key == key)).first()
    if entry is None:
        entry = ThreadEntry(
            store_id=purchase.store_id, kind=ThreadKind.purchase.value, dedupe_key=key
        )
        session.add(entry)
    entry.customer_id = purchase.customer_id
    entry.at = purchase.purchased_at
    entry.body = describe(purchase)
    entry.data = {
        "purchase_id": purchase.id,
        "deal": purchase.dms_id,
        "vehicle_id": purchase.vehicle_id,
        "salesperson_id": purchase.salesperson_id,
        "condition": purchase.condition,
    }
    session.flush()
