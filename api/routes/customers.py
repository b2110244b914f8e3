"""Customer lookup (by phone in any format, name prefix, RO number), detail and vehicles; the
whole relationship (vehicles bought, service visits, declined items, open follow-ups) and the
customer's purchases (sales data: managers and admins record them, everyone in scope reads)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import CurrentUser, DbId, ScopeDep, SessionDep, field_error, not_found
from api.paging import NO_NUL, Limit, Offset, page
from api.schemas import (
    CustomerOut,
    CustomerSummary,
    Page,
    PurchaseIn,
    PurchaseOut,
    RepairOrderOut,
    VehicleOut,
)
from events.calls import RelationshipCtx
from ivr.domain import Role
from ivr.phone import BadPhoneNumber, to_e164
from records import queries, sales, views
from records.models import Customer, User, Vehicle, VehiclePurchase
from records.queries import Scope

router = APIRouter(prefix="/customers", tags=["customers"])


@router.get("", response_model=Page[CustomerSummary])
def find_customers(
    session: SessionDep,
    scope: ScopeDep,
    phone: Annotated[str | None, Query(max_length=40, description="Any format.")] = None,
    name: Annotated[
        str | None,
        Query(min_length=1, max_length=200, pattern=NO_NUL, description="Case-insensitive prefix."),
    ] = None,
    ro: Annotated[
        str | None, Query(min_length=1, max_length=32, pattern=NO_NUL, description="RO number.")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[CustomerSummary]:
    """Customers of your stores matching every given filter (none: all, by name)."""
    e164 = None
    if phone is not None:
        try:
            e164 = to_e164(phone)
        except BadPhoneNumber as exc:
            raise field_error(("query", "phone"), str(exc)) from None
    rows = queries.find_customers(
        session,
        scope=scope,
        phone_e164=e164,
        name=name,
        ro_number=ro,
        limit=limit + 1,
        offset=offset,
    )
    return page(rows, CustomerSummary, limit=limit, offset=offset)


@router.get("/{customer_id}", response_model=CustomerOut)
def get_customer(customer_id: DbId, session: SessionDep, scope: ScopeDep) -> CustomerOut:
    """The screen-pop view: phones, vehicles, open ROs with status history, advisor."""
    customer = queries.get_customer(session, scope=scope, customer_id=customer_id)
    if customer is None:
        raise not_found("customer")
    open_ros = queries.open_repair_orders(session, customer_id=customer.id)
    summary = CustomerSummary.model_validate(customer)
    return CustomerOut(
        **summary.model_dump(),
        email=customer.email,
        vehicles=[VehicleOut.model_validate(v) for v in customer.vehicles],
        open_repair_orders=[RepairOrderOut.model_validate(ro) for ro in open_ros],
    )


@router.get("/{customer_id}/vehicles", response_model=list[VehicleOut])
def customer_vehicles(customer_id: DbId, session: SessionDep, scope: ScopeDep) -> list[VehicleOut]:
    customer = queries.get_customer(session, scope=scope, customer_id=customer_id)
    if customer is None:
        raise not_found("customer")
    return [VehicleOut.model_validate(v) for v in customer.vehicles]


def _customer(session: Session, scope: Scope, customer_id: int) -> Customer:
    customer = queries.get_customer(session, scope=scope, customer_id=customer_id)
    if customer is None:
        raise not_found("customer")
    return customer


@router.get("/{customer_id}/relationship", response_model=RelationshipCtx)
def customer_relationship(
    customer_id: DbId, session: SessionDep, scope: ScopeDep
) -> RelationshipCtx:
    """The whole relationship, as every department's screen-pop shows it: vehicles bought
    (date, salesperson), service visits, open ROs, declined items, open follow-ups."""
    customer = _customer(session, scope, customer_id)
    relationship = views.load_relationship(session, customer.id)
    return RelationshipCtx.model_validate(relationship, from_attributes=True)


@router.get("/{customer_id}/purchases", response_model=list[PurchaseOut])
def customer_purchases(
    customer_id: DbId, session: SessionDep, scope: ScopeDep
) -> list[PurchaseOut]:
    """Vehicles the customer bought here, newest first."""
    customer = _customer(session, scope, customer_id)
    return [PurchaseOut.model_validate(p) for p in views.load_purchases(session, customer.id)]


@router.post(
    "/{customer_id}/purchases", response_model=PurchaseOut, status_code=status.HTTP_201_CREATED
)
def record_purchase(
    customer_id: DbId, body: PurchaseIn, session: SessionDep, scope: ScopeDep, user: CurrentUser
) -> PurchaseOut:
    """Record a sale (managers and admins; advisors get 403). Upserts by `dms_id` and puts a
    `purchase` entry on the customer's thread."""
    customer = _customer(session, scope, customer_id)
    if user.role not in (Role.manager, Role.admin):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="managers and admins only")
    if body.dms_id is not None:
        other = session.scalar(
            select(VehiclePurchase.customer_id).where(
                VehiclePurchase.store_id == customer.store_id,
                VehiclePurchase.dms_id == body.dms_id,
            )
        )
        if other is not None and other != customer.id:
            raise field_error(("body", "dms_id"), "this deal belongs to another customer", 409)
    vehicle = _purchase_vehicle(session, customer, body)
    seller = None
    if body.salesperson_id is not None:
        seller = session.get(User, body.salesperson_id)
        if seller is None or customer.store_id not in seller.store_ids:
            raise field_error(("body", "salesperson_id"), "not a user of this store")
    elif body.salesperson_name:
        seller = sales.find_salesperson(session, customer.store_id, body.salesperson_name)
    purchase, _ = sales.upsert_purchase(
        session,
        customer=customer,
        purchased_at=body.purchased_at,
        dms_id=body.dms_id,
        vehicle=vehicle,
        salesperson=seller,
        salesperson_name=body.salesperson_name or (seller.name if seller else ""),
        condition=body.condition,
    )
    session.commit()
    return PurchaseOut.model_validate(purchase)


def _purchase_vehicle(session: Session, customer: Customer, body: PurchaseIn) -> Vehicle | None:
    if body.vehicle_id is not None:
        vehicle = session.get(Vehicle, body.vehicle_id)
        if vehicle is None or vehicle.customer_id != customer.id:
            raise field_error(("body", "vehicle_id"), "not a vehicle of this customer")
        return vehicle
    if body.vin is None:
        return None
    return queries.vehicle_by_vin(
        session, customer, body.vin, year=body.year, make=body.make, model=body.model
    )
