"""Repair orders and the DMS status webhook, with the events it publishes on Redis."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis

from events.bus import database_of, store_channel
from tests.api.conftest import NOW, SHARED_RO, Api


@pytest.fixture
def listener(redis_url: str, api: Api) -> Iterator[redis.client.PubSub]:
    """A real subscription to store A's channel, opened before the webhook fires."""
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(store_channel(api.world.stores["A"], database_of(client)))
    yield pubsub
    pubsub.close()
    client.close()


def _events(
    pubsub: redis.client.PubSub, *, customer_id: int, want: int, timeout: float = 3
) -> list[dict[str, Any]]:
    """Events about our customer only: other test runs may publish on the same channel."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(found) < want and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
        if message is None:
            continue
        event = json.loads(message["data"])
        if event["data"].get("customer_id") == customer_id:
            found.append(event)
    return found


def test_get_by_id_and_number(api: Api) -> None:
    ann = api.as_("ann")
    by_id = ann.get(f"/repair-orders/{api.world.ros['A']}").json()
    by_number = ann.get(f"/repair-orders/by-number/{SHARED_RO}").json()
    assert by_id == by_number
    assert by_id["status"] == "In Shop" and len(by_id["history"]) == 2
    assert ann.get("/repair-orders/by-number/777").status_code == 404


def test_admin_must_pick_the_store_for_a_shared_number(api: Api) -> None:
    root = api.as_("root")
    response = root.get(f"/repair-orders/by-number/{SHARED_RO}")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "store_id"]
    b = root.get(
        f"/repair-orders/by-number/{SHARED_RO}", params={"store_id": api.world.stores["B"]}
    )
    assert b.json()["id"] == api.world.ros["B"]


def test_status_webhook_records_notes_and_publishes(
    api: Api, listener: redis.client.PubSub
) -> None:
    note = f"tech assigned {uuid.uuid4().hex}"
    at = NOW - timedelta(minutes=5)
    response = api.dms("A").post(
        f"/repair-orders/{SHARED_RO}/status",
        json={"status": "Tech Working", "at": at.isoformat(), "note": note},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["duplicate"] is False and body["previous_status"] == "In Shop"
    ro = body["repair_order"]
    assert ro["status"] == "Tech Working"
    last = ro["history"][-1]
    assert (last["status"], last["note"], last["source"]) == ("Tech Working", note, "webhook")
    assert datetime.fromisoformat(last["at"]) == at

    thread = api.as_("mary").get(f"/customers/{api.world.customers['A']}/thread").json()["items"]
    change = next(e for e in thread if e["kind"] == "status_change")
    assert "In Shop → Tech Working" in change["body"] and change["data"]["note"] == note
    assert change["author"] is None and change["data"]["source"] == "webhook"  # no person

    events = _events(listener, customer_id=ro["customer_id"], want=2)
    by_type = {e["type"]: e for e in events}
    assert set(by_type) == {"ro.status_changed", "thread.updated"}
    status_event = by_type["ro.status_changed"]
    assert status_event["store_id"] == api.world.stores["A"]
    assert status_event["data"]["number"] == SHARED_RO
    assert status_event["data"]["status"] == "Tech Working"
    assert status_event["data"]["previous_status"] == "In Shop"
    assert status_event["data"]["note"] == note
    assert by_type["thread.updated"]["data"]["entry_id"] == change["id"]


def test_repeated_webhook_is_idempotent(api: Api, listener: redis.client.PubSub) -> None:
    payload = {"status": "Ready for Pickup", "at": (NOW - timedelta(minutes=1)).isoformat()}
    url = f"/repair-orders/{SHARED_RO}/status"
    first = api.dms("A").post(url, json=payload).json()
    customer_id = first["repair_order"]["customer_id"]
    assert len(_events(listener, customer_id=customer_id, want=2)) == 2
    second = api.dms("A").post(url, json=payload)  # a new delivery of the same change
    assert second.status_code == 200 and second.json()["duplicate"] is True
    assert second.json()["repair_order"]["history"] == first["repair_order"]["history"]
    assert _events(listener, customer_id=customer_id, want=1, timeout=0.5) == []
    thread = api.as_("ann").get(f"/customers/{api.world.customers['A']}/thread").json()["items"]
    assert sum(e["kind"] == "status_change" for e in thread) == 1


def test_late_webhook_does_not_roll_the_status_back(api: Api) -> None:
    """A change stamped before the latest known one is history, not the current status."""
    old = (NOW - timedelta(hours=2, minutes=30)).isoformat()
    response = api.dms("A").post(
        f"/repair-orders/{SHARED_RO}/status", json={"status": "Tech Working", "at": old}
    )
    ro = response.json()["repair_order"]
    assert ro["status"] == "In Shop"
    assert [e["status"] for e in ro["history"]] == [
        "Waiting on Dispatch",
        "Tech Working",
        "In Shop",
    ]


def test_closing_status_closes_the_ro(api: Api) -> None:
    ann = api.as_("ann")
    ro = api.dms("A").post(f"/repair-orders/{SHARED_RO}/status", json={"status": "Picked Up"})
    ro = ro.json()
    assert ro["repair_order"]["closed_at"] is not None
    detail = ann.get(f"/customers/{api.world.customers['A']}").json()
    assert detail["open_repair_orders"] == []


def test_custom_statuses_belong_to_their_store(api: Api) -> None:
    # "Waiting on Parts" is store B's custom status; store A does not know it.
    a = api.dms("A").post(f"/repair-orders/{SHARED_RO}/status", json={"status": "Waiting on Parts"})
    assert a.status_code == 422
    assert a.json()["detail"][0]["loc"] == ["body", "status"]
    assert "Waiting on Parts" not in a.json()["detail"][0]["msg"].split("uses:")[1]
    b = api.dms("B").post(f"/repair-orders/{SHARED_RO}/status", json={"status": "Waiting on Parts"})
    assert b.status_code == 200 and b.json()["repair_order"]["status"] == "Waiting on Parts"
    assert api.as_("ann").get(f"/repair-orders/{api.world.ros['A']}").json()["status"] == "In Shop"


def test_bad_webhook_bodies_name_the_field(api: Api) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"status": "Tech Working", "at": "2030-01-02T15:04:05"}, "at"),  # no time zone
        ({"status": "Tech Working", "at": "0001-01-01T00:00:00+01:00"}, "at"),
        ({"status": "Tech Working", "at": "yesterday"}, "at"),
        ({"status": ""}, "status"),
        ({"status": "x" * 51}, "status"),
        ({"status": "Tech Working", "colour": "red"}, "colour"),
        ({"status": "Tech Working", "at": (NOW + timedelta(minutes=10)).isoformat()}, "at"),
    ]
    for payload, field in cases:
        response = api.dms("A").post(f"/repair-orders/{SHARED_RO}/status", json=payload)
        assert response.status_code == 422, payload
        assert response.json()["detail"][0]["loc"][-1] == field
