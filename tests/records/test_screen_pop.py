"""The screen-pop context of `call.ringing`: known, unknown and multi-RO callers, in few queries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from events.calls import CallRinging
from ivr.domain import STANDARD_STATUSES
from records.models import ThreadEntry
from records.screen_pop import screen_pop_context
from tests.records.helpers import NOW, make_customer, make_ro, make_store, make_user, make_vehicle

WAITING, IN_SHOP, TECH, READY = STANDARD_STATUSES


@pytest.fixture
def shop(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions.begin() as s:
        store, other = make_store("S1", "+15550300100"), make_store("S2", "+15550300200")
        s.add_all([store, other])
        s.flush()
        alice = make_user(store, "alice")
        s.add(alice)
        one = make_customer(store, "Ann", "+15550301001", advisor=alice)
        many = make_customer(store, "Max", "+15550301002")
        elsewhere = make_customer(other, "Olga", "+15550301003")
        s.add_all([one, many, elsewhere])
        s.flush()
        car = make_vehicle(one, "Equinox")
        s.flush()
        s.add(
            make_ro(
                one,
                "4512",
                [WAITING, IN_SHOP],
                vehicle=car,
                advisor=alice,
                promised_at=NOW + timedelta(hours=2),
            )
        )
        s.add(make_ro(one, "4100", [READY, "Picked Up"], opened_hours_ago=100))
        for number, hours in (("5001", 40), ("5002", 20), ("5003", 2)):
            s.add(make_ro(many, number, [WAITING], opened_hours_ago=hours))
        for i in range(5):
            s.add(
                ThreadEntry(
                    store_id=store.id,
                    customer_id=one.id,
                    kind="note",
                    at=NOW - timedelta(minutes=10 * i),
                    body=f"note {i}",
                )
            )
        s.flush()
        return {
            "store": store.id,
            "other": other.id,
            "one": one.id,
            "many": many.id,
            "alice": alice.id,
        }


@contextmanager
def counting(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_known_caller(
    engine: Engine, sessions: sessionmaker[Session], shop: dict[str, int]
) -> None:
    with sessions() as session, counting(engine) as statements:
        ctx = screen_pop_context(session, shop["store"], "(555) 030-1001")
    # Indexed lookups only, no query per row: 8 for the customer and open ROs, 2 for the
    # relationship (vehicles bought, declined items; visits and follow-ups in one tally).
    assert len(statements) <= 10, statements
    assert ctx["unknown_caller"] is False
    assert ctx["customer"] == {
        "id": shop["one"],
        "name": "Ann Tester",
        "first_name": "Ann",
        "last_name": "Tester",
    }
    assert [v["description"] for v in ctx["vehicles"]] == ["2021 Chevrolet Equinox"]
    [ro] = ctx["repair_orders"]  # the picked-up one is not open
    assert (ro["number"], ro["status"]) == ("4512", IN_SHOP)
    assert [h["status"] for h in ro["history"]] == [WAITING, IN_SHOP]
    assert ro["promised_at"] is not None and ro["advisor"]["id"] == shop["alice"]
    assert ro["vehicle"]["model"] == "Equinox"
    assert ctx["advisor"]["id"] == shop["alice"]
    assert [e["body"] for e in ctx["recent_entries"]] == ["note 0", "note 1", "note 2"]
    # It is exactly what a ringing event carries.
    ringing = CallRinging(
        call_uuid="c",
        store_id=shop["store"],
        at=NOW,
        did="+15550300100",
        caller="+15550301001",
        **ctx,
    )
    assert ringing.model_dump(mode="json")["customer"] == ctx["customer"]


def test_caller_with_several_open_repair_orders(
    sessions: sessionmaker[Session], shop: dict[str, int]
) -> None:
    with sessions() as session:
        ctx = screen_pop_context(session, shop["store"], "+15550301002")
    assert ctx["customer"]["id"] == shop["many"]
    assert [ro["number"] for ro in ctx["repair_orders"]] == ["5001", "5002", "5003"]  # oldest first
    assert ctx["advisor"] is None and ctx["recent_entries"] == []


@pytest.mark.parametrize("caller", [None, "anonymous", "+15550309999", "+15550301003"])
def test_unknown_caller(
    sessions: sessionmaker[Session], shop: dict[str, int], caller: str | None
) -> None:
    """Withheld, garbage, nobody's number, and another store's customer: all unknown here."""
    with sessions() as session:
        ctx = screen_pop_context(session, shop["store"], caller)
    assert ctx == {
        "unknown_caller": True,
        "customer": None,
        "vehicles": [],
        "repair_orders": [],
        "advisor": None,
        "recent_entries": [],
        "relationship": None,
    }
