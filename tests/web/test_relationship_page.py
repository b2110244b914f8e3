"""The customer thread page's header shows the whole relationship (vehicles bought, visits,
declined items, open follow-ups), as every department's screen-pop does."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from records import sales
from records.models import Customer, FollowUp, RepairOrder, RoLineItem
from tests.api.conftest import NOW, World
from tests.web.conftest import log_in


def test_thread_header_shows_the_relationship(
    client: TestClient, world: World, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as s:
        customer = s.get(Customer, world.customers["A"])
        ro = s.get(RepairOrder, world.ros["A"])
        assert customer is not None and ro is not None
        sales.upsert_purchase(
            s,
            customer=customer,
            purchased_at=NOW - timedelta(days=800),
            dms_id="DEAL-1",
            vehicle=customer.vehicles[0],
            salesperson_name="Pat Seller",
        )
        s.add(RoLineItem(store_id=ro.store_id, repair_order_id=ro.id, description="Struts",
                         status="declined"))  # fmt: skip
        s.add(FollowUp(store_id=ro.store_id, customer_id=customer.id, kind="promise",
                       due_at=NOW))  # fmt: skip
    log_in(client, "ann")
    page = client.get(f"/customers/{world.customers['A']}")
    assert page.status_code == 200
    assert "Bought 2019 Honda Civic (new)" in page.text and "from Pat Seller" in page.text
    assert "Declined: Struts (RO 1001)" in page.text
    assert "1 open follow-up<" in page.text
    assert "Bought a new 2019 Honda Civic from Pat Seller" in page.text  # the thread entry
