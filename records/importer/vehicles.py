"""The `vehicle` and `purchase` rows: a customer's vehicles, and the deals (vehicles bought
here) that put a purchase entry on the customer's thread.

Together because a purchase names its vehicle by the vehicle row's id or by VIN, read the
same way as a vehicle row's, and may create the vehicle when the deal arrives first.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from records import queries, sales
from records.importer.applying import Changes, RowType, at_store, ref, row_store, zone_of
from records.importer.fields import Row, RowError
from records.models import Customer, Store, Vehicle, VehiclePurchase


def apply_vehicle(session: Session, row: Row, now: datetime) -> str:
    store = row_store(session, row)
    dms_id = row.required("id")
    vehicle = at_store(session, Vehicle, store, dms_id)
    created = vehicle is None
    customer = ref(session, row, "customer", Customer, store)
    if vehicle is None:
        if customer is None:
            raise RowError("customer", "required")
        vehicle = Vehicle(store_id=store.id, dms_id=dms_id, customer=customer, make="", model="")
        session.add(vehicle)
    c = Changes()
    if customer is not None:
        c.link(vehicle, "customer", customer)  # sold or transferred: the DMS moved it
    c.cells(vehicle, row, year=row.model_year)
    for name in ("make", "model"):
        if row.has(name):
            c.set(vehicle, name, row.text(name) or "")
    c.cells(vehicle, row, vin=row.vin)
    if row.has("plate"):
        plate = row.text("plate")
        c.set(vehicle, "plate", plate.upper() if plate else None)
    return c.outcome(created)


def apply_purchase(session: Session, row: Row, now: datetime) -> str:
    store = row_store(session, row)
    deal = row.required("id")
    customer = ref(session, row, "customer", Customer, store)
    existing = at_store(session, VehiclePurchase, store, deal)
    if customer is None:
        if existing is None:
            raise RowError("customer", "required")
        customer = session.get(Customer, existing.customer_id)
        assert customer is not None
    purchased_at = row.when("purchased_at", zone_of(store))
    if purchased_at is None:
        if existing is None:
            raise RowError("purchased_at", "required")
        purchased_at = existing.purchased_at
    if row.has("vehicle") or row.has("vin"):
        vehicle = _purchase_vehicle(session, row, store, customer)
    else:
        vehicle = existing.vehicle if existing else None
    seller_ref = row.text("salesperson") if row.has("salesperson") else None
    if not row.has("salesperson") and existing is not None:
        seller, seller_name = existing.salesperson, existing.salesperson_name
    else:
        seller = sales.find_salesperson(session, store.id, seller_ref) if seller_ref else None
        seller_name = seller.name if seller else (seller_ref or "")
    condition = (row.text("condition") or (existing.condition if existing else "new")).lower()
    if condition not in sales.CONDITIONS:
        raise RowError("condition", f"{condition!r} (use {', '.join(sales.CONDITIONS)})")
    _, outcome = sales.upsert_purchase(
        session,
        customer=customer,
        purchased_at=purchased_at,
        dms_id=deal,
        vehicle=vehicle,
        salesperson=seller,
        salesperson_name=seller_name,
        condition=condition,
    )
    return outcome


def _purchase_vehicle(
    session: Session, row: Row, store: Store, customer: Customer
) -> Vehicle | None:
    """By the vehicle's DMS id, else by VIN (the customer's first); an unknown VIN becomes the
    customer's vehicle, so a deal can arrive before the vehicle row."""
    vehicle = ref(session, row, "vehicle", Vehicle, store)
    if vehicle is not None:
        return vehicle
    vin = row.vin("vin")
    if vin is None:
        return None
    return queries.vehicle_by_vin(
        session, customer, vin, year=row.model_year("year"),
        make=row.text("make") or "", model=row.text("model") or "",
    )  # fmt: skip


VEHICLE = RowType(
    fields=frozenset({"store", "id", "customer", "year", "make", "model", "vin", "plate"}),
    apply=apply_vehicle,
)
PURCHASE = RowType(
    fields=frozenset(
        {
            "store",
            "id",
            "customer",
            "purchased_at",
            "vehicle",
            "vin",
            "year",
            "make",
            "model",
            "salesperson",
            "condition",
        }
    ),
    apply=apply_purchase,
)
