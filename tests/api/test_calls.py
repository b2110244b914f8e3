"""Call records over the API: list with filters, detail, unmatched calls and linking them.

Calls are written the way production writes them: call events applied by the call writer.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from events.bus import Event
from events.calls import CallEnded, CallEvent, CallRinging, LegInfo, RecordingInfo
from ivr.domain import Disposition
from records.call_rows import CallWriter
from records.models import CallbackTask, PhoneNumber
from tests.api.conftest import NOW, SHARED_PHONE, Api
from tests.records.helpers import listening

STRANGER = "+15550207777"
DID = "+15550300100"


def _apply(engine: Engine, *payloads: CallEvent) -> None:
    writer = CallWriter(engine)
    for p in payloads:
        writer.apply(Event(type=p.event_type, store_id=p.store_id, data=p.model_dump(mode="json")))


def _call(
    engine: Engine,
    store_id: int,
    caller: str,
    disposition: Disposition,
    minutes_ago: float,
    customer_id: int | None = None,
) -> str:
    call_uuid = f"api-{uuid.uuid4().hex}"
    start = NOW - timedelta(minutes=minutes_ago)
    base: dict[str, Any] = {"call_uuid": call_uuid, "store_id": store_id}
    ctx: dict[str, Any] = {"unknown_caller": True}
    _apply(
        engine,
        CallRinging(**base, at=start, did=DID, caller=caller, **ctx),
        CallEnded(
            **base,
            at=start + timedelta(seconds=50),
            disposition=disposition,
            did=DID,
            caller=caller,
            customer_id=customer_id,
            started_at=start,
            answered_at=start + timedelta(seconds=1),
            legs=[LegInfo(role="caller", party=caller, started_at=start)],
            recordings=[
                RecordingInfo(
                    leg_role="caller",
                    path=f"{call_uuid}/caller.wav",
                    sha256="c" * 64,
                    duration_s=49.0,
                )
            ],
        ),
    )
    return call_uuid


@pytest.fixture
def calls(api: Api, engine: Engine) -> dict[str, str]:
    w = api.world
    return {
        "a_known": _call(
            engine,
            w.stores["A"],
            SHARED_PHONE,
            Disposition.transferred,
            300,
            customer_id=w.customers["A"],
        ),
        "a_missed": _call(engine, w.stores["A"], STRANGER, Disposition.missed, 60),
        "a_ivr": _call(engine, w.stores["A"], STRANGER, Disposition.handled_by_ivr, 10),
        "b_missed": _call(engine, w.stores["B"], STRANGER, Disposition.missed, 30),
    }


def _uuids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [c["call_uuid"] for c in response.json()["items"]]


def test_list_filters_and_store_scope(api: Api, calls: dict[str, str]) -> None:
    ann = api.as_("ann")
    assert _uuids(ann.get("/calls")) == [calls["a_ivr"], calls["a_missed"], calls["a_known"]]
    assert _uuids(ann.get("/calls?disposition=missed")) == [calls["a_missed"]]
    customer = api.world.customers["A"]
    assert _uuids(ann.get(f"/calls?customer_id={customer}")) == [calls["a_known"]]
    since = (NOW - timedelta(minutes=90)).isoformat().replace("+00:00", "Z")
    until = (NOW - timedelta(minutes=20)).isoformat().replace("+00:00", "Z")
    assert _uuids(ann.get("/calls", params={"since": since, "until": until})) == [calls["a_missed"]]
    assert _uuids(ann.get("/calls?limit=1")) == [calls["a_ivr"]]
    assert ann.get("/calls?disposition=lost").status_code == 422
    assert ann.get("/calls?since=2026-01-01T00:00:00").status_code == 422  # no zone
    assert _uuids(api.as_("bob").get("/calls")) == [calls["b_missed"]]
    assert set(_uuids(api.as_("root").get("/calls"))) == set(calls.values())
    assert _uuids(api.as_("nobody").get("/calls")) == []


def test_detail_has_legs_recordings_and_entries(api: Api, calls: dict[str, str]) -> None:
    ann = api.as_("ann")
    [listed] = ann.get("/calls?disposition=missed").json()["items"]
    detail = ann.get(f"/calls/{listed['id']}").json()
    assert detail["from_number"] == STRANGER and detail["disposition"] == "missed"
    assert [leg["role"] for leg in detail["legs"]] == ["caller"]
    assert [r["path"] for r in detail["recordings"]] == [f"{calls['a_missed']}/caller.wav"]
    assert [e["kind"] for e in detail["entries"]] == ["call"]
    assert detail["entries"][0]["customer_id"] is None
    assert ann.get("/calls/999999").status_code == 404


def test_unmatched_calls_and_linking_one(
    api: Api, calls: dict[str, str], sessions: sessionmaker[Session], redis_url: str
) -> None:
    ann, w = api.as_("ann"), api.world
    assert _uuids(ann.get("/unmatched-calls")) == [calls["a_ivr"], calls["a_missed"]]
    missed = next(
        c
        for c in ann.get("/unmatched-calls").json()["items"]
        if c["call_uuid"] == calls["a_missed"]
    )
    customer = w.customers["A"]

    with listening(redis_url, w.stores["A"]) as wait:
        linked = ann.post(
            f"/calls/{missed['id']}/link", json={"customer_id": customer, "add_phone": True}
        )
        assert linked.status_code == 200, linked.text
        wait("thread.updated", call_uuid=calls["a_missed"], customer_id=customer)
    assert linked.json()["customer_id"] == customer
    assert [e["customer_id"] for e in linked.json()["entries"]] == [customer]
    assert _uuids(ann.get("/unmatched-calls")) == [calls["a_ivr"]]
    thread = ann.get(f"/customers/{customer}/thread").json()["items"]
    assert any(e["data"].get("call_uuid") == calls["a_missed"] for e in thread)
    with sessions() as s:
        task = s.scalars(select(CallbackTask).where(CallbackTask.call_id == missed["id"])).one()
        assert task.customer_id == customer  # the missed call's callback moved with it
        phones = s.scalars(select(PhoneNumber.e164).where(PhoneNumber.customer_id == customer))
        assert STRANGER in set(phones)
    # Linking again is harmless (the phone is not added twice).
    again = ann.post(
        f"/calls/{missed['id']}/link", json={"customer_id": customer, "add_phone": True}
    )
    assert again.status_code == 200


def test_linking_refuses_other_stores(api: Api, calls: dict[str, str]) -> None:
    w = api.world
    a_call = api.as_("ann").get("/unmatched-calls").json()["items"][0]["id"]
    # ann cannot see B's customer: it does not exist for her.
    response = api.as_("ann").post(f"/calls/{a_call}/link", json={"customer_id": w.customers["B"]})
    assert response.status_code == 404
    # An admin sees both, but a call of A cannot join a thread of B.
    response = api.as_("root").post(f"/calls/{a_call}/link", json={"customer_id": w.customers["B"]})
    assert response.status_code == 422 and "another store" in response.text
    response = api.as_("ann").post(f"/calls/{a_call}/link", json={"customer_id": 0})
    assert response.status_code == 422
