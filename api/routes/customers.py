"""Customer lookup (by phone in any format, name prefix, RO number), detail and vehicles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import DbId, ScopeDep, SessionDep, field_error, not_found
from api.paging import NO_NUL, Limit, Offset, page
from api.schemas import CustomerOut, CustomerSummary, Page, RepairOrderOut, VehicleOut
from ivr.phone import BadPhoneNumber, to_e164
from records import queries

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
