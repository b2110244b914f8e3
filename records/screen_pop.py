"""The screen-pop context a `call.ringing` event carries: who is calling and about which car.

It runs between the INVITE and the first ring, so it is built only from
`views.load_customer_by_phone` (the phone index, then a fixed handful of eager loads: about 7
indexed queries, whatever the number of repair orders) and converted in memory.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from events.calls import AdvisorRef, DepartmentRef, ScreenPop
from ivr.domain import AdvisorInfo, CustomerInfo, DepartmentInfo
from records.views import load_customer_by_phone


def screen_pop(customer: CustomerInfo | None) -> ScreenPop:
    """The context for a known customer, or the bare `unknown_caller` one.

    The event models read the domain views' attributes (properties such as `description` and
    `status_since` included), so no field is copied by hand.
    """
    if customer is None:
        return ScreenPop(unknown_caller=True)
    return ScreenPop.model_validate(
        {
            "unknown_caller": False,
            "customer": customer,
            "vehicles": customer.vehicles,
            "repair_orders": customer.open_repair_orders,
            "advisor": customer.advisor,
            "recent_entries": customer.recent_entries,
            "relationship": customer.relationship,
        },
        from_attributes=True,
    )


def screen_pop_context(
    session: Session, store_id: int, caller_e164: str | None, region: str = "US"
) -> dict[str, Any]:
    """JSON-ready screen-pop fields for `CallRinging(**context, ...)`; a withheld or unreadable
    caller ID (or a number nobody in this store has) gives `unknown_caller: true`."""
    customer = (
        load_customer_by_phone(session, store_id, caller_e164, region) if caller_e164 else None
    )
    return screen_pop(customer).model_dump(mode="json")


def department_ref(department: DepartmentInfo | None) -> DepartmentRef:
    """The dialled department as the screen-pop names it (none kept: the store's service)."""
    if department is None:
        return DepartmentRef()
    return DepartmentRef(id=department.id, kind=department.kind, name=department.name)


def advisor_ref(advisor: AdvisorInfo | None) -> AdvisorRef | None:
    """An advisor as the screen-pop names them (`call.ringing`'s `last_contacted`)."""
    return AdvisorRef.model_validate(advisor, from_attributes=True) if advisor else None
