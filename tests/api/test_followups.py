"""Follow-up API on both databases: line items (API and DMS webhook), promises and their
triggers, outcomes on the thread, the lists, and silent defectors.

The world (tests/api/conftest.py): store A with RO 1001 (advisor ann, customer Jo) and a closed
RO 9A of 30 days ago; store B the same for bob and Joan.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from records.models import FollowUp, RepairOrder, Store
from tests.api.conftest import NOW, SHARED_RO, Api
from tests.records.helpers import listening


def _iso(at: datetime) -> str:
    return at.isoformat()


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_declined_line_item_makes_a_follow_up_and_approval_closes_it(
    api: Api, redis_url: str
) -> None:
    ann = api.as_("ann")
    ro = api.world.ros["A"]
    decided = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    created = ann.post(
        f"/repair-orders/{ro}/line-items",
        json={"description": "Front brake pads", "status": "declined", "estimate_cents": 28950,
              "decided_at": _iso(decided), "dms_id": "L1"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    item = created.json()
    assert (item["status"], item["estimate_cents"]) == ("declined", 28950)
    [fu] = ann.get("/follow-ups?kind=declined_service").json()["items"]
    assert fu["line_item_id"] == item["id"] and fu["owner"]["username"] == "ann"
    assert _parse(fu["due_at"]) == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)  # + 30 days
    assert fu["overdue"] is (datetime(2026, 12, 1, 9, 30, tzinfo=UTC) < datetime.now(UTC))

    again = ann.post(f"/repair-orders/{ro}/line-items", json={"description": "x", "dms_id": "L1"})
    assert again.status_code == 409 and "dms_id" in again.text
    with listening(redis_url, api.world.stores["A"]) as wait:
        approved = ann.post(
            f"/repair-orders/{ro}/line-items/{item['id']}", json={"status": "approved"}
        )
        assert approved.status_code == 200 and approved.json()["status"] == "approved"
        event = wait("thread.updated", kind="follow_up")
    closed = ann.get(f"/follow-ups/{fu['id']}").json()
    assert closed["outcome"] == "booked" and closed["done_at"] is not None
    thread = ann.get(f"/customers/{api.world.customers['A']}/thread").json()["items"]
    assert thread[0]["id"] == event.data["entry_id"] and thread[0]["kind"] == "follow_up"
    assert "Front brake pads approved" in thread[0]["body"]
    assert [i["id"] for i in ann.get(f"/repair-orders/{ro}/line-items").json()] == [item["id"]]


def test_line_item_input_is_checked(api: Api) -> None:
    ann = api.as_("ann")
    ro = api.world.ros["A"]
    for body, field in (
        ({"description": "x", "status": "maybe"}, "status"),
        ({"description": ""}, "description"),
        ({"description": "x", "estimate_cents": -1}, "estimate_cents"),
        ({"description": "x", "colour": "red"}, "colour"),
    ):
        response = ann.post(f"/repair-orders/{ro}/line-items", json=body)
        assert response.status_code == 422, body
        assert response.json()["detail"][0]["loc"][-1] == field
    other = ann.post(f"/repair-orders/{ro}/line-items/999999", json={"status": "declined"})
    assert other.status_code == 404


def test_dms_event_webhook_updates_lines_and_fires_promises(api: Api) -> None:
    ann = api.as_("ann")
    ro = api.world.ros["A"]
    url = f"/repair-orders/{SHARED_RO}/events"
    promise = ann.post(
        "/follow-ups",
        json={
            "repair_order_id": ro,
            "text": "call when the part arrives",
            "trigger": "part_arrived",
        },
    ).json()
    assert promise["due_at"] is None and promise["trigger"] == "part_arrived"
    dms = api.dms("A")
    body = {"line_items": [{"dms_id": "OP7", "status": "declined", "description": "Coolant flush"}]}
    first = dms.post(url, json=body)
    assert first.status_code == 200, first.text
    assert len(first.json()["follow_ups_created"]) == 1
    assert dms.post(url, json=body).json()["follow_ups_created"] == []  # delivered twice
    assert len(ann.get(f"/repair-orders/{ro}/line-items").json()) == 1

    arrived = NOW + timedelta(minutes=3)  # the DMS's clock may run a little ahead of ours
    fired = dms.post(url, json={"event": "part_arrived", "at": _iso(arrived)}).json()
    assert [f["id"] for f in fired["triggered"]] == [promise["id"]]
    got = ann.get(f"/follow-ups/{promise['id']}").json()
    assert _parse(got["due_at"]) == arrived and _parse(got["triggered_at"]) == arrived
    assert dms.post(url, json={"event": "part_arrived"}).json()["triggered"] == []

    for bad, field in (
        ({}, "event"),
        ({"event": "Part Arrived"}, "event"),
        ({"line_items": [{"dms_id": "NEW", "status": "declined"}]}, "description"),
        ({"event": "part_arrived", "at": _iso(NOW + timedelta(hours=1))}, "at"),
        ({"line_items": [{"dms_id": "OP7", "status": "declined",
                          "decided_at": _iso(NOW + timedelta(days=1))}]}, "decided_at"),
    ):  # fmt: skip
        response = dms.post(url, json=bad)
        assert response.status_code == 422, bad
        assert response.json()["detail"][0]["loc"][-1] == field


def test_status_change_fires_status_promises(api: Api) -> None:
    ann = api.as_("ann")
    ro = api.world.ros["A"]
    made = ann.post(
        "/follow-ups",
        json={
            "repair_order_id": ro,
            "text": "call when ready",
            "trigger": "status:ready for pickup",
        },
    ).json()
    assert made["trigger"] == "status:Ready for Pickup"
    dms = api.dms("A")
    dms.post(f"/repair-orders/{SHARED_RO}/status", json={"status": "Tech Working"})
    assert ann.get(f"/follow-ups/{made['id']}").json()["due_at"] is None
    at = NOW + timedelta(minutes=1)
    dms.post(
        f"/repair-orders/{SHARED_RO}/status", json={"status": "Ready for Pickup", "at": _iso(at)}
    )
    assert _parse(ann.get(f"/follow-ups/{made['id']}").json()["due_at"]) == at


def test_promise_input_is_checked(api: Api) -> None:
    ann = api.as_("ann")
    ro = api.world.ros["A"]
    due = _iso(NOW + timedelta(hours=2))
    for body, field, reason in (
        ({"text": "x"}, "due_at", "either due_at or trigger"),
        ({"text": "x", "due_at": due, "trigger": "part_arrived"}, "due_at", "either"),
        ({"text": "x", "trigger": "status:Teleported"}, "trigger", "unknown status"),
        ({"text": "x", "trigger": "Part!"}, "trigger", "not an event name"),
        ({"text": "x", "due_at": due, "owner_id": api.world.users["bob"]}, "owner_id", "user of"),
        ({"text": "", "due_at": due}, "text", "at least 1"),
    ):
        response = ann.post("/follow-ups", json={"repair_order_id": ro, **body})
        assert response.status_code == 422, body
        detail = response.json()["detail"][0]
        assert detail["loc"][-1] == field and reason in detail["msg"], detail
    ok = ann.post(
        "/follow-ups", json={"repair_order_id": ro, "text": "call by 3 pm", "due_at": due}
    )
    assert ok.status_code == 201 and ok.json()["owner"]["username"] == "ann"


def _promise(api: Api, user: str, due: datetime, text: str = "call by 3 pm") -> dict[str, Any]:
    response = api.as_(user).post(
        "/follow-ups",
        json={"repair_order_id": api.world.ros["A"], "text": text, "due_at": _iso(due)},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_outcomes_retry_then_close_on_the_thread(
    api: Api, sessions: sessionmaker[Session], redis_url: str
) -> None:
    with sessions.begin() as session:
        store = session.get(Store, api.world.stores["A"])
        assert store is not None
        store.follow_ups = {"max_attempts": 2, "no_answer_retry_days": 1}
    ann = api.as_("ann")
    fu = _promise(api, "ann", NOW - timedelta(hours=1))
    assert fu["overdue"] is True
    url = f"/follow-ups/{fu['id']}/outcome"
    with listening(redis_url, api.world.stores["A"]) as wait:
        first = ann.post(url, json={"outcome": "no_answer", "note": "voicemail full"})
        wait("thread.updated", kind="follow_up", entry_id=first.json()["entry"]["id"])
    result = first.json()
    assert first.status_code == 200 and result["closed"] is False
    assert result["follow_up"]["attempts"] == 1 and result["follow_up"]["overdue"] is False
    retry = _parse(result["follow_up"]["due_at"]) - datetime.now(UTC)
    assert timedelta(hours=23, minutes=59) < retry <= timedelta(days=1)
    assert "voicemail full" in result["entry"]["body"]
    assert api.as_("alex").post(url, json={"outcome": "booked"}).status_code == 404  # not his
    second = ann.post(url, json={"outcome": "no_answer"}).json()
    assert second["closed"] is True and second["follow_up"]["outcome"] == "no_answer"
    late = ann.post(url, json={"outcome": "booked"})
    assert late.status_code == 409 and "closed" in late.text
    bad = ann.post(url, json={"outcome": "maybe"})
    assert bad.status_code == 422
    thread = ann.get(f"/customers/{api.world.customers['A']}/thread").json()["items"]
    follow_up_entries = [e for e in thread if e["kind"] == "follow_up"]
    assert [e["data"]["closed"] for e in follow_up_entries] == [True, False]  # newest first
    assert follow_up_entries[0]["author"]["username"] == "ann"


def test_lists_mine_overdue_first_and_the_managers_overdue(api: Api) -> None:
    _promise(api, "ann", NOW + timedelta(hours=5), "later")
    _promise(api, "ann", NOW - timedelta(days=1), "oldest")
    _promise(api, "alex", NOW - timedelta(hours=2), "alex's")
    _promise(api, "ann", NOW - timedelta(hours=1), "recent")
    ann = api.as_("ann")
    assert [f["text"] for f in ann.get("/follow-ups").json()["items"]] == [
        "oldest",
        "recent",
        "later",
    ]
    assert [f["text"] for f in ann.get("/follow-ups?overdue=false").json()["items"]] == ["later"]
    assert ann.get("/follow-ups?mine=false").status_code == 403
    mary = api.as_("mary")
    overdue = mary.get("/follow-ups?overdue=true").json()["items"]
    assert [f["text"] for f in overdue] == ["oldest", "alex's", "recent"]
    assert all(f["overdue"] for f in overdue)
    assert mary.get("/follow-ups?mine=true").json()["items"] == []
    assert mary.get("/follow-ups?kind=defector").json()["items"] == []
    assert len(mary.get("/follow-ups?state=all&limit=2").json()["items"]) == 2


def test_defectors_list_and_manager_creates_follow_ups(
    api: Api, sessions: sessionmaker[Session]
) -> None:
    """Jo's RO 1001 closed 399 days ago and 9A closed 334 days ago: last visit 334 days ago,
    past the 9-month window (about 273 days) but inside 12 months."""
    stores = api.world.stores
    with sessions.begin() as session:
        ro = session.get(RepairOrder, api.world.ros["A"])
        assert ro is not None
        ro.status, ro.opened_at = "Closed", NOW - timedelta(days=400)
        ro.closed_at = NOW - timedelta(days=399)
        closed = session.scalars(select(RepairOrder).where(RepairOrder.number == "9A")).one()
        closed.opened_at, closed.closed_at = NOW - timedelta(days=335), NOW - timedelta(days=334)
    mary = api.as_("mary")
    [d] = mary.get("/defectors").json()["items"]
    assert d["customer"]["id"] == api.world.customers["A"] and d["last_repair_order_id"] > 0
    assert _parse(d["last_visit_at"]) == NOW - timedelta(days=334)
    assert mary.get("/defectors?months=12").json()["items"] == []
    assert mary.get(f"/defectors?store_id={stores['B']}").status_code == 404
    assert api.as_("root").get("/defectors").status_code == 422  # several stores: say which

    assert api.as_("ann").post("/defectors/follow-ups").status_code == 403
    assert mary.post(f"/defectors/follow-ups?store_id={stores['B']}").status_code == 404
    made = mary.post("/defectors/follow-ups")
    assert made.status_code == 201
    [fu] = made.json()
    assert fu["kind"] == "defector" and fu["owner"]["username"] == "ann"
    assert mary.post("/defectors/follow-ups").json() == []
    assert api.as_("bea").post("/defectors/follow-ups").json() == []  # B has none
    with sessions() as session:
        assert (
            session.scalar(select(FollowUp.store_id).where(FollowUp.id == fu["id"])) == stores["A"]
        )


def test_garbage_in_4xx_out(api: Api) -> None:
    """No follow-up or line-item route answers bad input with a 500 (NUL, huge, wrong types)."""
    ann = api.as_("ann")
    ro = api.world.ros["A"]
    nul, huge = "bad\x00value", 2**63
    common: list[Any] = [None, [], "text", 42, {"unexpected": 1}]
    routes: dict[str, list[Any]] = {
        f"/repair-orders/{ro}/line-items": common
        + [{"description": nul}, {"description": "x", "estimate_cents": huge},
           {"description": "x", "decided_at": "9999-12-31T23:59:59-14:00"},
           {"description": "x" * 2001}],
        f"/repair-orders/{ro}/line-items/{huge}": [{"status": "declined"}],
        f"/repair-orders/{SHARED_RO}/events": common
        + [{"event": nul}, {"event": "x" * 81}, {"line_items": [{"dms_id": nul, "status": "done"}]},
           {"line_items": [{"dms_id": "x", "status": "done"}] * 201}, {"at": "yesterday"}],
        "/follow-ups": common
        + [{"repair_order_id": huge, "text": "x", "trigger": "part_arrived"},
           {"repair_order_id": ro, "text": nul, "trigger": "part_arrived"},
           {"repair_order_id": ro, "text": "x", "trigger": nul},
           {"repair_order_id": ro, "text": "x", "due_at": "0001-01-01T00:00:00Z"}],
        "/follow-ups/1/outcome": common + [{"outcome": nul}, {"outcome": "booked", "note": nul}],
        f"/follow-ups/{huge}/outcome": [{"outcome": "booked"}],
    }  # fmt: skip
    for path, bodies in routes.items():
        poster = api.dms("A") if path.endswith("/events") else ann
        for body in bodies:
            response = poster.post(path, json=body)
            assert 400 <= response.status_code < 500, (path, body, response.text)
    for query in ("?months=0", "?months=x", f"?store_id={huge}", "?limit=0"):
        assert api.as_("mary").get("/defectors" + query).status_code == 422, query
    for query in ("?kind=nope", "?state=x", "?overdue=maybe", f"?store_id={huge}"):
        assert ann.get("/follow-ups" + query).status_code == 422, query


def test_dms_line_change_is_decided_at_the_events_time(api: Api) -> None:
    ann = api.as_("ann")
    ro = api.world.ros["A"]
    url = f"/repair-orders/{SHARED_RO}/events"
    line = {"dms_id": "OP9", "status": "recommended", "description": "Tires"}
    dms = api.dms("A")
    assert dms.post(url, json={"line_items": [line]}).status_code == 200
    at = NOW - timedelta(days=2)
    changed = dms.post(url, json={"at": _iso(at), "line_items": [{**line, "status": "declined"}]})
    [item] = changed.json()["line_items"]
    assert _parse(item["decided_at"]) == at
    [fu] = changed.json()["follow_ups_created"]
    assert _parse(fu["due_at"]) == at + timedelta(days=30)
    # Delivered again later: the decision keeps its time.
    dms.post(url, json={"line_items": [{**line, "status": "declined"}]})
    [again] = ann.get(f"/repair-orders/{ro}/line-items").json()
    assert _parse(again["decided_at"]) == at
