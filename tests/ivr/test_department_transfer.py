"""`transfer: department:KIND` rings that department's people and hands the caller over with
the context: the `call.handoff` event names the caller and the department it came from."""

from __future__ import annotations

from pathlib import Path

from ivr.flow import load_flows
from ivr.flow.engine import FlowEngine
from ivr.flow.fakes import FakeChannel, FakeRecords

SHIPPED = Path(__file__).parents[2] / "flows"
GIVEN = {
    "store": {
        "name": "Hometown Motors",
        "departments": [
            {"kind": "sales", "name": "Sales", "flow": "sales", "numbers": ["+15550100200"]},
            {"kind": "service", "name": "Service Department"},
        ],
    },
    "caller": "+15552010001",
    "users": [
        {
            "username": "alice",
            "name": "Alice Smith",
            "contact": "sip:alice@pbx",
            "groups": ["service"],
        },
        {"username": "sam", "name": "Sam Seller", "contact": "sip:sam@pbx", "groups": ["sales"]},
    ],
    "customer": {
        "first_name": "Dana",
        "last_name": "Reyes",
        "advisor": "alice",
        "repair_orders": [{"number": "4711", "status": "Tech Working"}],
    },
}


async def test_a_sales_call_about_service_reaches_service_with_the_caller() -> None:
    records = FakeRecords.from_dict(GIVEN)
    store = records.stores[0]
    sales = store.department_for_did("+15550100200")
    assert sales is not None and sales.kind == "sales"
    result = await FlowEngine(load_flows(SHIPPED), records).run(
        FakeChannel(["2"]), store=store, caller="+15552010001", flow="sales", department=sales
    )
    assert result.outcome.kind == "transfer" and result.outcome.target == "Alice Smith"
    (handoff,) = [e for e in records.events if e["type"] == "call.handoff"]
    assert handoff["data"] == {
        "department": "service",
        "department_name": "Service Department",
        "from_department": "sales",
        "from_department_name": "Sales",
        "caller": "+15552010001",
        "customer": {"id": 1, "name": "Dana Reyes"},
        "repair_order": None,
    }


async def test_nobody_in_the_department_means_no_handoff_and_the_fallback() -> None:
    given = {**GIVEN, "users": GIVEN["users"][:1]}  # no salesperson
    records = FakeRecords.from_dict(given)
    store = records.stores[0]
    result = await FlowEngine(load_flows(SHIPPED), records).run(
        FakeChannel(["1", "hello I want a truck", "hangup"]),
        store=store,
        caller="+15552010001",
        flow="sales",
        department=store.department("sales"),
    )
    assert "department sales: nobody to ring" in result.script()
    assert result.outcome.kind == "voicemail"
    assert not [e for e in records.events if e["type"] == "call.handoff"]
