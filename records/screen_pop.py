"""The screen-pop context a `call.ringing` event carries: who is calling and about which car.

It runs between the INVITE and the first ring, so it is built only from
`views.load_customer_by_phone` (the phone index, then a fixed handful of eager loads: about 7
indexed queries, whatever the number of repair orders) and converted in memory.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from events.calls import (
    AdvisorRef,
    CustomerRef,
    EntryCtx,
    RepairOrderCtx,
    ScreenPop,
    StatusStep,
    VehicleCtx,
)
from ivr.domain import AdvisorInfo, CustomerInfo, RepairOrderInfo, VehicleInfo
from records.views import load_customer_by_phone


def _advisor(info: AdvisorInfo | None) -> AdvisorRef | None:
    return AdvisorRef(id=info.id, name=info.name, username=info.username) if info else None


def _vehicle(info: VehicleInfo | None) -> VehicleCtx | None:
    if info is None:
        return None
    return VehicleCtx(
        id=info.id,
        year=info.year,
        make=info.make,
        model=info.model,
        vin=info.vin,
        plate=info.plate,
        description=info.description,
    )


def _repair_order(ro: RepairOrderInfo) -> RepairOrderCtx:
    return RepairOrderCtx(
        id=ro.id,
        number=ro.number,
        status=ro.status,
        status_since=ro.status_since,
        opened_at=ro.opened_at,
        promised_at=ro.promised_at,
        vehicle=_vehicle(ro.vehicle),
        advisor=_advisor(ro.advisor),
        history=[StatusStep(status=e.status, at=e.at, note=e.note) for e in ro.history],
    )


def screen_pop(customer: CustomerInfo | None) -> ScreenPop:
    """The context for a known customer, or the bare `unknown_caller` one."""
    if customer is None:
        return ScreenPop(unknown_caller=True)
    return ScreenPop(
        unknown_caller=False,
        customer=CustomerRef(
            id=customer.id,
            name=customer.name,
            first_name=customer.first_name,
            last_name=customer.last_name,
        ),
        vehicles=[v for v in map(_vehicle, customer.vehicles) if v is not None],
        repair_orders=[_repair_order(ro) for ro in customer.open_repair_orders],
        advisor=_advisor(customer.advisor),
        recent_entries=[
            EntryCtx(id=e.id, kind=e.kind, at=e.at, body=e.body, author=e.author)
            for e in customer.recent_entries
        ],
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
