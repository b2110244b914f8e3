"""The whole relationship over the API, and recording sales: `GET /customers/{id}/relationship`,
`GET|POST /customers/{id}/purchases` (scope: tests/api/test_scoping.py)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from records.models import Customer, RepairOrder, RoLineItem, Vehicle
from tests.api.conftest import NOW, Api

VIN = "1GNSKCKD4RR000042"


def test_recording_a_sale_then_reading_the_relationship(
    api: Api, sessions: sessionmaker[Session]
) -> None:
    customer = api.world.customers["A"]
    url = f"/customers/{customer}/purchases"
    body = {
        "dms_id": "DEAL-7",
        "purchased_at": (NOW - timedelta(days=400)).isoformat(),
        "vin": VIN,
        "year": 2024,
        "make": "Chevrolet",
        "model": "Equinox",
        "salesperson_name": "Ann",  # ann's name in the test world: she becomes the user
    }
    created = api.as_("mary").post(url, json=body)
    assert created.status_code == 201, created.text
    deal = created.json()
    assert deal["vehicle"]["model"] == "Equinox" and deal["condition"] == "new"
    assert deal["salesperson"]["username"] == "ann"
    # The same deal again updates it (here: used), no second purchase, no second vehicle.
    again = api.as_("mary").post(url, json={**body, "condition": "used"})
    assert again.status_code == 201 and again.json()["id"] == deal["id"]
    assert [p["condition"] for p in api.as_("ann").get(url).json()] == ["used"]
    with sessions() as s:
        assert len(s.scalars(select(Vehicle).where(Vehicle.vin == VIN)).all()) == 1

    with sessions.begin() as s:
        ro = s.get(RepairOrder, api.world.ros["A"])
        assert ro is not None
        s.add(
            RoLineItem(
                store_id=ro.store_id, repair_order_id=ro.id, description="Tires", status="declined"
            )
        )
    rel = api.as_("ann").get(f"/customers/{customer}/relationship").json()
    assert [(p["deal"], p["salesperson"]) for p in rel["purchases"]] == [("DEAL-7", "Ann")]
    assert rel["purchases"][0]["vehicle"]["description"] == "2024 Chevrolet Equinox"
    with sessions() as s:
        ros = s.scalars(select(RepairOrder).where(RepairOrder.customer_id == customer)).all()
        closed = [r for r in ros if r.closed_at is not None]
    assert closed  # the world's customer came before: one visit, one RO open now
    assert (rel["open_repair_orders"], rel["service_visits"]) == (
        len(ros) - len(closed),
        len(closed),
    )
    assert [d["description"] for d in rel["declined"]] == ["Tires"]
    assert rel["open_follow_ups"] == 0

    thread = api.as_("ann").get(f"/customers/{customer}/thread").json()["items"]
    purchase = [e for e in thread if e["kind"] == "purchase"]
    assert [e["body"] for e in purchase] == ["Bought a used 2024 Chevrolet Equinox from Ann"]


def test_bad_purchases_are_refused_with_a_reason(api: Api, sessions: sessionmaker[Session]) -> None:
    customer = api.world.customers["A"]
    url = f"/customers/{customer}/purchases"
    at = NOW.isoformat()
    for body, field in (
        ({"purchased_at": at, "vin": "NOT-A-VIN"}, "vin"),
        ({"purchased_at": at, "condition": "leased"}, "condition"),
        ({"purchased_at": "2026-01-01T10:00"}, "purchased_at"),  # no offset: ambiguous
        ({}, "purchased_at"),
    ):
        response = api.as_("mary").post(url, json=body)
        assert response.status_code == 422, body
        assert response.json()["detail"][0]["loc"][-1] == field, response.text
    with sessions() as s:
        other = s.scalars(
            select(Customer).where(
                Customer.id != customer, Customer.store_id == api.world.stores["A"]
            )
        ).first()
        theirs = s.scalars(select(Vehicle).where(Vehicle.customer_id != customer)).first()
        assert other is not None and theirs is not None
    response = api.as_("mary").post(url, json={"purchased_at": at, "vehicle_id": theirs.id})
    assert response.status_code == 422 and "not a vehicle of this customer" in response.text
    response = api.as_("mary").post(url, json={"purchased_at": at, "salesperson_id": 999999})
    assert response.status_code == 422 and "not a user of this store" in response.text
    # A deal number is one customer's.
    ok = api.as_("mary").post(
        f"/customers/{other.id}/purchases", json={"purchased_at": at, "dms_id": "D-X"}
    )
    assert ok.status_code == 201
    response = api.as_("mary").post(url, json={"purchased_at": at, "dms_id": "D-X"})
    assert response.status_code == 409 and "another customer" in response.text
