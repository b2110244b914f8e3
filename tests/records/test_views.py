"""ORM rows → ivr.domain views, and the lookups a live call makes (screen-pop)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from ivr.domain import STANDARD_STATUSES
from records import views
from records.models import ThreadEntry
from tests.records.helpers import (
    NOW,
    make_customer,
    make_ro,
    make_store,
    make_user,
    make_vehicle,
)

WAITING, IN_SHOP, TECH, READY = STANDARD_STATUSES


@pytest.fixture
def shop(sessions: sessionmaker[Session]) -> dict[str, Any]:
    """One store with two advisors and a customer with a busy history; a second store too."""
    with sessions.begin() as s:
        store = make_store("S1", "+15550300100", custom_statuses=["Waiting on Parts", "In Shop"])
        other = make_store("S2", "+15550300200")
        s.add_all([store, other])
        s.flush()
        alice = make_user(
            store, "alice", sip_contact="sip:alice@10.0.0.5:5062", phone="+15550300201"
        )
        bob = make_user(store, "bob", phone="+15550300202")
        s.add_all([alice, bob])
        ann = make_customer(store, "Ann", "+15550301001", "+15550302001", advisor=alice)
        s.add(ann)
        s.flush()
        equinox, tahoe = make_vehicle(ann, "Equinox"), make_vehicle(ann, "Tahoe", 2019)
        s.flush()
        newer = make_ro(ann, "4600", [WAITING], opened_hours_ago=1, vehicle=tahoe, advisor=bob)
        older = make_ro(
            ann,
            "RO-004512",
            [WAITING, IN_SHOP, TECH],
            opened_hours_ago=30,
            vehicle=equinox,
            advisor=alice,
            promised_at=NOW + timedelta(hours=2),
        )
        picked_up = make_ro(ann, "4100", [WAITING, READY, "Picked Up"], opened_hours_ago=300)
        closed_by_date = make_ro(ann, "4200", [READY], opened_hours_ago=200, closed_at=NOW)
        s.add_all([newer, older, picked_up, closed_by_date])
        for i in range(5):
            s.add(
                ThreadEntry(
                    store_id=store.id,
                    customer_id=ann.id,
                    kind="note",
                    at=NOW - timedelta(hours=10 - i),
                    body=f"note {i}",
                    author=alice,
                )
            )
        # The same phone number as Ann's, but at another store: must never pop at S1.
        stranger = make_customer(other, "Zed", "+15550301001")
        s.add(stranger)
        s.flush()
        return {
            "store": store.id,
            "other": other.id,
            "ann": ann.id,
            "alice": alice.id,
            "bob": bob.id,
            "stranger": stranger.id,
        }


def test_store_view_lists_standard_then_custom_statuses_and_dids(
    sessions: sessionmaker[Session], shop: dict[str, Any]
) -> None:
    with sessions() as s:
        store = views.load_store(s, shop["store"])
        assert views.load_store(s, 999_999) is None
    assert store is not None
    assert store.statuses == (*STANDARD_STATUSES, "Waiting on Parts")  # "In Shop" not repeated
    assert store.dids == ("+15550300100",)
    assert store.hours == {"mon": [["07:00", "18:00"]]}
    assert store.timezone == "America/New_York"


@pytest.mark.parametrize("did", ["+15550300100", "(555) 030-0100", "sip:+15550300100@trunk"])
def test_store_for_did_reads_any_format(
    sessions: sessionmaker[Session], shop: dict[str, Any], did: str
) -> None:
    with sessions() as s:
        store = views.load_store_for_did(s, did)
        assert views.load_store_for_did(s, "+15550399999") is None
        assert views.load_store_for_did(s, "garbage") is None
    assert store is not None and store.id == shop["store"]


def test_customer_view_has_everything_a_screen_pop_shows(
    sessions: sessionmaker[Session], shop: dict[str, Any]
) -> None:
    with sessions() as s:
        ann = views.load_customer_by_phone(s, shop["store"], "+15550301001")
    assert ann is not None and ann.id == shop["ann"]
    assert ann.name == "Ann Tester"
    assert ann.phones == ("+15550301001", "+15550302001")
    assert [v.description for v in ann.vehicles] == [
        "2021 Chevrolet Equinox",
        "2019 Chevrolet Tahoe",
    ]
    # Open ROs only (not "Picked Up", not one with closed_at), oldest first.
    assert [ro.number for ro in ann.open_repair_orders] == ["RO-004512", "4600"]
    older = ann.open_repair_orders[0]
    assert [e.status for e in older.history] == [WAITING, IN_SHOP, TECH]
    assert older.history[0].at < older.history[-1].at
    assert older.status_since == older.history[-1].at
    assert older.vehicle is not None and older.vehicle.model == "Equinox"
    assert older.advisor is not None and older.advisor.username == "alice"
    assert older.promised_at == NOW + timedelta(hours=2)
    assert older.opened_at.tzinfo is not None
    assert ann.advisor is not None and ann.advisor.username == "alice"
    assert ann.advisor.contact == "sip:alice@10.0.0.5:5062"
    # Last three thread entries, newest first, with the author's name.
    assert [e.body for e in ann.recent_entries] == ["note 4", "note 3", "note 2"]
    assert ann.recent_entries[0].author == "Alice Example"


@pytest.mark.parametrize(
    "caller_id",
    [
        "+15550301001",
        "+1 555 030 1001",
        "(555) 030-1001",
        "555.030.1001",
        "555-030-1001",
        "5550301001",
        "15550301001",
        "1-555-030-1001",
        "tel:+15550301001",
        "sip:+15550301001@10.0.0.1;user=phone",
        "sip:5550301001@trunk.example.com",
        "+15550302001",  # Ann's second number
    ],
)
def test_customer_by_phone_in_any_format(
    sessions: sessionmaker[Session], shop: dict[str, Any], caller_id: str
) -> None:
    with sessions() as s:
        found = views.load_customer_by_phone(s, shop["store"], caller_id)
    assert found is not None and found.id == shop["ann"]


@pytest.mark.parametrize("caller_id", ["anonymous", "", "+15550309999", "555030100"])
def test_unknown_or_unreadable_callers_are_none(
    sessions: sessionmaker[Session], shop: dict[str, Any], caller_id: str
) -> None:
    with sessions() as s:
        assert views.load_customer_by_phone(s, shop["store"], caller_id) is None


def test_lookup_is_scoped_to_the_store(
    sessions: sessionmaker[Session], shop: dict[str, Any]
) -> None:
    with sessions() as s:
        there = views.load_customer_by_phone(s, shop["other"], "+15550301001")
        assert views.load_customer(s, shop["ann"], store_id=shop["other"]) is None
    assert there is not None and there.id == shop["stranger"]


def test_shared_phone_prefers_the_customer_with_an_open_ro(
    sessions: sessionmaker[Session], shop: dict[str, Any]
) -> None:
    with sessions.begin() as s:
        from records.models import Store

        store = s.get(Store, shop["store"])
        assert store is not None
        idle = make_customer(store, "Idle", "+15550305555")  # created first, nothing open
        busy = make_customer(store, "Busy", "+15550305555")
        s.add_all([idle, busy])
        s.flush()
        s.add(make_ro(busy, "7777", [IN_SHOP]))
        busy_id = busy.id
    with sessions() as s:
        found = views.load_customer_by_phone(s, shop["store"], "+15550305555")
    assert found is not None and found.id == busy_id


def test_advisor_falls_back_to_the_open_ro_advisor(
    sessions: sessionmaker[Session], shop: dict[str, Any]
) -> None:
    """No assigned advisor, or an inactive one: "my advisor" is the newest open RO's advisor."""
    from records.models import Customer, User

    with sessions.begin() as s:
        customer = s.get(Customer, shop["ann"])
        alice = s.get(User, shop["alice"])
        assert customer is not None and alice is not None
        alice.active = False
    with sessions() as s:
        ann = views.load_customer(s, shop["ann"])
    assert ann is not None and ann.advisor is not None and ann.advisor.username == "bob"
    assert ann.advisor.contact == "+15550300202"  # no SIP contact: the phone


@pytest.mark.parametrize("keyed", ["4512", "004512", "RO-004512", "RO-4512", " 4512 "])
def test_repair_order_by_number_as_keyed(
    sessions: sessionmaker[Session], shop: dict[str, Any], keyed: str
) -> None:
    with sessions() as s:
        ro = views.load_repair_order(s, shop["store"], keyed)
    assert ro is not None and ro.number == "RO-004512"
    assert ro.customer_id == shop["ann"] and ro.status == TECH
    assert len(ro.history) == 3


@pytest.mark.parametrize("keyed", ["45120", "512", "", "0", "RO-"])
def test_repair_order_no_false_matches(
    sessions: sessionmaker[Session], shop: dict[str, Any], keyed: str
) -> None:
    with sessions() as s:
        assert views.load_repair_order(s, shop["store"], keyed) is None
        assert views.load_repair_order(s, shop["other"], "4512") is None


def test_closed_repair_orders_are_still_found_by_number(
    sessions: sessionmaker[Session], shop: dict[str, Any]
) -> None:
    with sessions() as s:
        ro = views.load_repair_order(s, shop["store"], "4100")
    assert ro is not None and ro.status == "Picked Up" and not ro.is_open


def test_ro_number_key() -> None:
    assert views.ro_number_key("RO-004512") == "4512"
    assert views.ro_number_key("4512#") == "4512"
    assert views.ro_number_key("000") == ""


def test_screen_pop_query_count_does_not_grow_with_the_record(
    engine: Engine, sessions: sessionmaker[Session], shop: dict[str, Any]
) -> None:
    """Eager loading: a customer with many ROs, events and vehicles costs the same few queries."""
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    def lookup() -> int:
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            with sessions() as s:
                assert views.load_customer_by_phone(s, shop["store"], "+15550301001") is not None
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    before = lookup()
    from records.models import Customer

    with sessions.begin() as s:
        ann = s.get(Customer, shop["ann"])
        assert ann is not None
        for i in range(6):
            vehicle = make_vehicle(ann, f"Model {i}")
            s.flush()
            s.add(make_ro(ann, f"88{i}", [WAITING, IN_SHOP, TECH], vehicle=vehicle))
    after = lookup()
    assert after == before
    assert after <= 10  # 8, plus the relationship's purchases and declined items
