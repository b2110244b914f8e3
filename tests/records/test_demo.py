"""The demo store: counts, every status present, the documented callers, idempotent seeding."""

from __future__ import annotations

import re
from typing import Any

from click.testing import CliRunner
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from driveline.cli import main
from ivr.domain import CLOSED_STATUSES, STANDARD_STATUSES, StoreInfo
from records import views
from records.demo import DEMO_DID, DEMO_SALES_DID, seed_demo
from records.models import Base, Customer, RepairOrder, Store, User

WAITING, IN_SHOP, TECH, READY = STANDARD_STATUSES


def _table_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in Base.metadata.sorted_tables
        }


def test_demo_counts_and_shape(demo: dict[str, Any], sessions: sessionmaker[Session]) -> None:
    counts = demo["counts"]
    assert demo["created"] is True
    assert counts["customers"] == 200
    assert counts["users"] == 7  # 4 service advisors, a salesperson, a manager, an admin
    assert 200 < counts["phones"] < 400
    assert counts["repair_orders_open"] > 50 and counts["repair_orders_closed"] > 20
    with sessions() as s:
        store = s.scalars(select(Store).where(Store.dms_id == "DEMO")).one()
        info = views.store_view(store, views.load_departments(s, store.id))
        users = s.scalars(select(User).options(selectinload(User.stores)).order_by(User.id)).all()
        customers = s.scalars(
            select(Customer).options(selectinload(Customer.phones), selectinload(Customer.vehicles))
        ).all()
        ros = s.scalars(select(RepairOrder).options(selectinload(RepairOrder.events))).all()

    assert isinstance(info, StoreInfo)
    assert (info.name, info.dids, info.timezone) == (
        "Demo Chevrolet",
        (DEMO_DID, DEMO_SALES_DID),
        "America/New_York",
    )
    # The sales line rings the sales department (its own hours and flow); the main one service.
    sales = info.department_for_did(DEMO_SALES_DID)
    assert sales is not None and (sales.kind, sales.flow) == ("sales", "sales")
    assert sales.hours and "sun" in sales.hours
    assert info.department_for_did(DEMO_DID) is None
    assert info.address and [c.name for c in info.closures][:1] in (
        ["Christmas Eve"],
        ["Christmas Day"],
        ["New Year's Day"],
    )
    assert info.hours["mon"] == [["07:00", "18:00"]] and info.hours["sat"] == [["08:00", "14:00"]]
    assert "sun" not in info.hours and info.recording_consent is True

    advisors = [u for u in users if u.role == "advisor" and u.department_id is None]
    assert len(advisors) == 4
    (sam,) = [u for u in users if u.department_id is not None]
    assert sam.groups == ["sales"] and sam.department_id == sales.id
    assert {u.role for u in users} == {"advisor", "manager", "admin"}
    for user in advisors:
        assert user.groups == ["service"] and user.store_ids == [store.id]
        assert re.fullmatch(r"\+1555\d{7}", user.phone or "")
        assert re.fullmatch(rf"sip:{user.username}@127\.0\.0\.1:50\d\d", user.sip_contact or "")

    for customer in customers:
        assert customer.first_name and customer.last_name and customer.advisor_id
        assert 1 <= len(customer.phones) <= 2
        assert all(re.fullmatch(r"\+155502[01]\d{4}", p.e164) for p in customer.phones)
        assert customer.vehicles and all(len(v.vin or "") == 17 for v in customer.vehicles)
        assert all(v.make == "Chevrolet" for v in customer.vehicles)

    open_by_status: dict[str, int] = {}
    open_per_customer: dict[int, int] = {}
    for ro in ros:
        assert ro.events, f"RO {ro.number} has no history"
        assert ro.events[-1].status == ro.status
        times = [e.at for e in ro.events]
        assert times == sorted(times) and times[0] == ro.opened_at
        if ro.status in CLOSED_STATUSES:
            assert ro.closed_at is not None
        else:
            assert ro.closed_at is None and ro.promised_at is not None and ro.advisor_id
            open_by_status[ro.status] = open_by_status.get(ro.status, 0) + 1
            open_per_customer[ro.customer_id] = open_per_customer.get(ro.customer_id, 0) + 1
    assert set(open_by_status) == set(STANDARD_STATUSES)
    assert sum(1 for n in open_per_customer.values() if n == 2) >= 2
    assert len(customers) - len(open_per_customer) >= 20  # plenty with nothing open
    for status in STANDARD_STATUSES:
        assert demo["samples"][status], status


DOCUMENTED_CALLERS: list[tuple[str, list[tuple[str, str]]]] = [
    ("+15550200001", [("500001", WAITING)]),
    ("+15550200002", [("500002", IN_SHOP)]),
    ("+15550200003", [("500003", TECH)]),
    ("+15550210003", [("500003", TECH)]),  # the same customer's home phone
    ("+15550200004", [("500004", READY)]),
    ("+15550200005", [("500005", READY), ("500006", WAITING)]),
    ("+15550200006", []),
    ("+15550200007", []),
    ("+15550200008", [("500008", IN_SHOP), ("500009", TECH)]),
]


def test_documented_demo_callers(demo: dict[str, Any], sessions: sessionmaker[Session]) -> None:
    """The table in records/demo.py's docstring, which docs and flow tests cite."""
    store_id = demo["store"]["id"]
    with sessions() as s:
        assert views.load_customer_by_phone(s, store_id, "+15550299999") is None
        for phone, expected in DOCUMENTED_CALLERS:
            customer = views.load_customer_by_phone(s, store_id, phone)
            assert customer is not None, phone
            got = [(ro.number, ro.status) for ro in customer.open_repair_orders]
            assert got == expected, phone
            assert customer.advisor is not None and customer.advisor.contact
            assert customer.recent_entries, phone  # every cited customer has a thread to show
        closed = views.load_repair_order(s, store_id, "500007")
        first = views.load_customer_by_phone(s, store_id, "+15550200001")
    assert closed is not None and closed.status == "Picked Up"
    # Fixed by the seed: the same number is the same person on every machine.
    assert first is not None and first.name == "James Lee"
    assert first.vehicles[0].vin == "1GCUYSBX4NF149709"


def test_seeding_twice_changes_nothing(engine: Engine, demo: dict[str, Any]) -> None:
    before = _table_counts(engine)
    again = seed_demo(engine)
    assert again["created"] is False
    assert again["counts"] == demo["counts"] and again["samples"] == demo["samples"]
    assert _table_counts(engine) == before


def test_reset_reseeds_from_scratch(
    engine: Engine, sessions: sessionmaker[Session], demo: dict[str, Any]
) -> None:
    with sessions.begin() as s:
        s.add(Customer(store_id=demo["store"]["id"], first_name="Extra", last_name="Row"))
    fresh = seed_demo(engine, reset=True)
    assert fresh["created"] is True
    assert fresh["counts"] == demo["counts"]
    with sessions() as s:
        assert s.scalar(select(func.count()).where(Customer.first_name == "Extra")) == 0


def test_demo_data_command(db_url: str, fresh_settings: None) -> None:
    runner = CliRunner()
    env = {"DRIVELINE_DATABASE_URL": db_url}
    first = runner.invoke(main, ["demo-data"], env=env)
    assert first.exit_code == 0, first.output
    assert "Demo Chevrolet" in first.output and "created" in first.output
    for status in STANDARD_STATUSES:
        line = next(line for line in first.output.splitlines() if line.strip().startswith(status))
        assert re.search(r"\+1555020\d{4}", line), line
    assert "+15550200001" in first.output
    second = runner.invoke(main, ["demo-data"], env=env)
    assert second.exit_code == 0 and "already present" in second.output
