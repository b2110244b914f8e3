"""Departments and sales data on one record: import of departments and purchases, the DID →
department lookup, department ring groups, and the whole relationship a screen-pop shows."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from records import views
from records.importer import import_rows
from records.models import (
    Base,
    Customer,
    FollowUp,
    RepairOrder,
    RoLineItem,
    Store,
    StoreNumber,
    ThreadEntry,
    User,
    VehiclePurchase,
)
from records.screen_pop import screen_pop_context

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
SALES_DID = "+15550400200"


def _rows() -> list[tuple[int, dict[str, Any]]]:
    rows: list[dict[str, Any]] = [
        {
            "type": "store",
            "store": "S1",
            "name": "Lakeside Ford",
            "dids": ["+15550400100"],
            "timezone": "America/Chicago",
            "hours": "mon-fri 07:00-18:00",
        },
        {
            "type": "department",
            "store": "S1",
            "kind": "sales",
            "name": "Sales",
            "hours": "mon-sat 09:00-20:00",
            "flow": "sales",
            "numbers": [SALES_DID],
        },
        {
            "type": "advisor",
            "id": "U1",
            "username": "sam",
            "name": "Sam Seller",
            "store": ["S1"],
            "department": "sales",
            "groups": [],
        },
        {"type": "advisor", "id": "U2", "username": "ava", "name": "Ava Advisor", "store": ["S1"]},
        {
            "type": "customer",
            "store": "S1",
            "id": "C1",
            "first_name": "Jo",
            "last_name": "Buyer",
            "phone": "(555) 040-1001",
        },
        {
            "type": "vehicle",
            "store": "S1",
            "id": "V1",
            "customer": "C1",
            "year": "2022",
            "make": "Ford",
            "model": "F-150",
            "vin": "1FTFW1E50NFA00001",
        },
        {
            "type": "purchase",
            "store": "S1",
            "id": "D-100",
            "customer": "C1",
            "vehicle": "V1",
            "purchased_at": "2022-03-01 11:00",
            "salesperson": "sam",
            "condition": "used",
        },
        {
            "type": "purchase",
            "store": "S1",
            "id": "D-200",
            "customer": "C1",
            "vin": "1FMCU9GD5PUA00002",
            "year": "2025",
            "make": "Ford",
            "model": "Escape",
            "purchased_at": "2025-06-02 10:00",
            "salesperson": "Pat Gone",
        },
    ]
    return list(enumerate(rows, start=2))


def _table_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in Base.metadata.sorted_tables
        }


def test_import_departments_and_purchases_then_again_changes_nothing(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    first = import_rows(engine, _rows(), now=NOW)
    assert first.errors == []
    assert first.counts["department"]["created"] == 1
    assert first.counts["purchase"]["created"] == 2
    tables = _table_counts(engine)
    again = import_rows(engine, _rows(), now=NOW)
    assert again.errors == []
    assert {k: dict(c) for k, c in again.counts.items()} == {
        kind: {"unchanged": n}
        for kind, n in {
            "store": 1,
            "department": 1,
            "advisor": 2,
            "customer": 1,
            "vehicle": 1,
            "purchase": 2,
        }.items()
    }
    assert _table_counts(engine) == tables

    with sessions() as s:
        # The store row's dids did not drop the sales number, which rings the sales department.
        numbers = {n.e164: n.department_id for n in s.scalars(select(StoreNumber))}
        assert set(numbers) == {"+15550400100", SALES_DID}
        assert numbers["+15550400100"] is None and numbers[SALES_DID] is not None
        store = views.load_store_for_did(s, "555-040-0200")
        assert store is not None
        sales = store.department_for_did(SALES_DID)
        assert sales is not None and (sales.kind, sales.name, sales.flow) == (
            "sales",
            "Sales",
            "sales",
        )
        assert sales.hours == {
            d: [["09:00", "20:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat")
        }
        # No service row: the main number behaves as before departments.
        assert store.department_for_did("+15550400100") is None
        sam = s.scalars(select(User).where(User.username == "sam")).one()
        assert sam.department_id == sales.id

        deals = {p.dms_id: p for p in s.scalars(select(VehiclePurchase))}
        assert deals["D-100"].salesperson_id == sam.id and deals["D-100"].condition == "used"
        # A salesperson who is no user here is kept by name; an unknown VIN became a vehicle.
        assert deals["D-200"].salesperson_id is None
        assert deals["D-200"].salesperson_name == "Pat Gone"
        assert deals["D-200"].vehicle is not None and deals["D-200"].vehicle.model == "Escape"
        entries = s.scalars(
            select(ThreadEntry).where(ThreadEntry.kind == "purchase").order_by(ThreadEntry.at)
        ).all()
        assert [e.body for e in entries] == [
            "Bought a used 2022 Ford F-150 from Sam Seller",
            "Bought a new 2025 Ford Escape from Pat Gone",
        ]
        # Store-local times: 11:00 in Chicago.
        assert deals["D-100"].purchased_at == datetime(2022, 3, 1, 17, 0, tzinfo=UTC)


def test_a_changed_deal_updates_the_purchase_and_its_entry(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    import_rows(engine, _rows(), now=NOW)
    change = [(2, {"type": "purchase", "store": "S1", "id": "D-200", "salesperson": "sam"})]
    report = import_rows(engine, change, now=NOW)
    assert report.errors == [] and report.counts["purchase"]["updated"] == 1
    with sessions() as s:
        deal = s.scalars(select(VehiclePurchase).where(VehiclePurchase.dms_id == "D-200")).one()
        assert deal.salesperson_name == "Sam Seller" and deal.vehicle is not None
        body = s.scalars(
            select(ThreadEntry.body).where(ThreadEntry.dedupe_key == f"purchase:{deal.id}")
        ).one()
        assert body == "Bought a new 2025 Ford Escape from Sam Seller"


def test_bad_department_and_purchase_rows_name_row_and_field(engine: Engine) -> None:
    import_rows(engine, _rows(), now=NOW)
    other = {"type": "store", "store": "S2", "name": "Other", "dids": ["+15550400900"]}
    bad = [
        (2, other),
        (3, {"type": "department", "store": "S1", "kind": "valet"}),
        (4, {"type": "department", "store": "S1", "kind": "parts", "numbers": ["+15550400900"]}),
        (5, {"type": "department", "store": "S1", "kind": "parts", "hours": "mon 18:00-07:00"}),
        (6, {"type": "purchase", "store": "S1", "id": "D-9", "customer": "C1"}),
        (
            7,
            {
                "type": "purchase",
                "store": "S1",
                "id": "D-9",
                "customer": "C1",
                "purchased_at": "2026-01-02",
                "condition": "leased",
            },
        ),
        (
            8,
            {
                "type": "purchase",
                "store": "S1",
                "id": "D-9",
                "customer": "C1",
                "purchased_at": "2026-01-02",
                "vehicle": "V404",
            },
        ),
        (
            9,
            {
                "type": "purchase",
                "store": "S1",
                "id": "D-9",
                "customer": "C9",
                "purchased_at": "2026-01-02",
            },
        ),
        (10, {"type": "advisor", "id": "U1", "department": "parts"}),
    ]
    report = import_rows(engine, bad, now=NOW)
    assert report.errors == [
        "row 3: kind: unknown department 'valet' (use service, sales, parts, bdc)",
        "row 4: numbers: +15550400900 already rings store 'S2'",
        "row 5: hours: hours.mon: closes 07:00 before it opens 18:00",
        "row 10: department: no parts department at the user's store (add a row)",
        "row 6: purchased_at: required",
        "row 7: condition: 'leased' (use new, used, cpo)",
        "row 8: vehicle: no vehicle 'V404' at store 'S1'",
        "row 9: customer: no customer 'C9' at store 'S1'",
    ]


def _relationship_world(sessions: sessionmaker[Session]) -> int:
    """Jo: 2 purchases (import), 2 closed ROs, 1 open, 1 declined item, 1 open + 1 done
    follow-up."""
    with sessions.begin() as s:
        jo = s.scalars(select(Customer).where(Customer.dms_id == "C1")).one()
        ros = [
            RepairOrder(
                store_id=jo.store_id,
                number=n,
                customer=jo,
                status=status,
                opened_at=NOW - timedelta(days=days),
                closed_at=closed,
            )
            for n, status, days, closed in (
                ("7001", "Closed", 300, NOW - timedelta(days=299)),
                ("7002", "Picked Up", 40, NOW - timedelta(days=39)),
                ("7003", "In Shop", 1, None),
            )
        ]
        s.add_all(ros)
        s.flush()
        s.add_all(
            [
                RoLineItem(
                    store_id=jo.store_id,
                    repair_order_id=ros[1].id,
                    dms_id="L1",
                    description="Rear brake pads",
                    estimate_cents=32000,
                    status="declined",
                    decided_at=NOW - timedelta(days=39),
                ),
                RoLineItem(
                    store_id=jo.store_id,
                    repair_order_id=ros[1].id,
                    dms_id="L2",
                    description="Oil change",
                    status="done",
                ),
            ]
        )
        s.add_all(
            [
                FollowUp(
                    store_id=jo.store_id, customer_id=jo.id, kind="declined_service", due_at=NOW
                ),
                FollowUp(
                    store_id=jo.store_id,
                    customer_id=jo.id,
                    kind="promise",
                    due_at=NOW,
                    done_at=NOW,
                    outcome="done",
                ),
            ]
        )
        return jo.id


def test_relationship_counts_everything_the_store_knows(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    import_rows(engine, _rows(), now=NOW)
    jo = _relationship_world(sessions)
    with sessions() as s:
        rel = views.load_relationship(s, jo)
    assert [(p.deal, p.salesperson, p.condition) for p in rel.purchases] == [
        ("D-200", "Pat Gone", "new"),
        ("D-100", "Sam Seller", "used"),
    ]
    assert rel.purchases[1].vehicle is not None and rel.purchases[1].vehicle.model == "F-150"
    assert rel.service_visits == 2
    assert rel.last_visit_at == NOW - timedelta(days=39)
    assert rel.open_repair_orders == 1
    assert [(d.description, d.repair_order, d.estimate_cents) for d in rel.declined] == [
        ("Rear brake pads", "7002", 32000)
    ]
    assert rel.open_follow_ups == 1


def test_screen_pop_carries_the_relationship(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    import_rows(engine, _rows(), now=NOW)
    _relationship_world(sessions)
    with sessions() as s:
        store = views.load_store_for_did(s, SALES_DID)
        assert store is not None
        ctx = screen_pop_context(s, store.id, "+15550401001")
    rel = ctx["relationship"]
    assert [p["salesperson"] for p in rel["purchases"]] == ["Pat Gone", "Sam Seller"]
    assert rel["purchases"][1]["vehicle"]["description"] == "2022 Ford F-150"
    assert (rel["service_visits"], rel["open_repair_orders"], rel["open_follow_ups"]) == (2, 1, 1)
    assert rel["declined"][0]["description"] == "Rear brake pads"


def test_department_ring_groups(engine: Engine, sessions: sessionmaker[Session]) -> None:
    """`department:sales` rings the sales department's users; "service" no longer rings a
    salesperson (an advisor by role, but of another department)."""
    import_rows(engine, _rows(), now=NOW)
    with sessions() as s:
        store_id = views.load_store_for_did(s, SALES_DID).id  # type: ignore[union-attr]
        assert [a.username for a in views.load_group(s, store_id, "sales")] == ["sam"]
        assert [a.username for a in views.load_group(s, store_id, "service")] == ["ava"]
        assert views.load_group(s, store_id, "parts") == []


def test_store_address_and_closures_import(engine: Engine, sessions: sessionmaker[Session]) -> None:
    rows = [
        (2, {"type": "store", "store": "S1", "name": "Lakeside Ford",
             "address": "1 Lake Road, Springfield",
             "closures": "2026-12-25 Christmas Day; 2026-12-24 8:00-12:00 Christmas Eve"}),
        (3, {"type": "store", "store": "S2", "name": "Other", "closures": "2026-13-01 Nope"}),
        (4, {"type": "store", "store": "S3", "name": "Third", "closures": "Christmas"}),
    ]  # fmt: skip
    report = import_rows(engine, rows, now=NOW)
    assert report.errors == [
        "row 3: closures: closures[0].date: '2026-13-01' is not YYYY-MM-DD",
        "row 4: closures: cannot read 'Christmas' (e.g. '2026-12-25 Christmas')",
    ]
    with sessions() as s:
        store = views.load_store(s, s.scalars(select(Store.id).where(Store.dms_id == "S1")).one())
    assert store is not None and store.address == "1 Lake Road, Springfield"
    eve = next(c for c in store.closures if c.name == "Christmas Eve")
    assert eve.hours == ((time(8), time(12)),)
    assert import_rows(engine, rows[:1], now=NOW).counts["store"]["unchanged"] == 1


def test_store_retention_days_import(engine: Engine, sessions: sessionmaker[Session]) -> None:
    """A store's retention period comes with its row like its other settings; empty keeps
    recordings forever again, a bad value is refused with the reason."""
    rows = [
        (2, {"type": "store", "store": "S1", "name": "Lakeside Ford", "retention_days": "90"}),
        (3, {"type": "store", "store": "S2", "name": "Other", "retention_days": "0"}),
        (4, {"type": "store", "store": "S3", "name": "Third", "retention_days": "a year"}),
    ]
    report = import_rows(engine, rows, now=NOW)
    assert report.errors == [
        "row 3: retention_days: retention days must be 1 to 3650 (empty: keep forever)",
        "row 4: retention_days: not a whole number of days: 'a year'",
    ]

    def days() -> int | None:
        with sessions() as s:
            return s.scalars(select(Store.retention_days).where(Store.dms_id == "S1")).one()

    assert days() == 90
    assert import_rows(engine, rows[:1], now=NOW).counts["store"]["unchanged"] == 1
    import_rows(engine, [(2, {"type": "store", "store": "S1", "retention_days": ""})], now=NOW)
    assert days() is None
