"""Store scope, route by route: another store's objects are 404 and never appear in lists.

Every route of the app must be listed here (or in NOT_STORE_SCOPED with the reason), so a new
route cannot ship without a scoping test.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from records import followups
from records.models import Call, RepairOrder
from tests.api.conftest import NOW, SHARED_PHONE, SHARED_RO, Api

# (method, path, json body) for one object of store B; {placeholders} are store B's ids.
OBJECT_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/customers/{customer}", None),
    ("GET", "/customers/{customer}/vehicles", None),
    ("GET", "/customers/{customer}/thread", None),
    ("POST", "/customers/{customer}/notes", {"body": "hello"}),
    ("GET", "/repair-orders/{ro}", None),
    ("GET", "/repair-orders/by-number/" + SHARED_RO + "?store_id={store}", None),
    ("GET", "/callbacks/{callback}", None),
    ("POST", "/callbacks/{callback}/done", None),
    ("POST", "/callbacks", {"phone": "555-020-0009", "customer_id": "{customer}"}),
    ("POST", "/callbacks", {"phone": "555-020-0009", "store_id": "{store}"}),
    ("POST", "/me/mentions/{mention}/seen", None),
    ("GET", "/calls/{call}", None),
    ("POST", "/calls/{call}/link", {"customer_id": "{customer}"}),
    ("GET", "/customers/{customer}/relationship", None),
    ("GET", "/customers/{customer}/purchases", None),
    ("GET", "/repair-orders/{ro}/line-items", None),
    ("POST", "/repair-orders/{ro}/line-items", {"description": "Wiper blades"}),
    ("POST", "/repair-orders/{ro}/line-items/{line_item}", {"status": "approved"}),
    ("GET", "/follow-ups/{follow_up}", None),
    ("POST", "/follow-ups/{follow_up}/outcome", {"outcome": "no_answer"}),
    (
        "POST",
        "/follow-ups",
        {"repair_order_id": "{ro}", "text": "call back", "trigger": "part_arrived"},
    ),
    ("GET", "/defectors?store_id={store}", None),
]

# Routes that carry no store-owned object, and why.
NOT_STORE_SCOPED = {
    ("GET", "/healthz"): "public health check",
    ("GET", "/metrics"): "deployment-wide figures, admins or the scrape token (test_metrics)",
    ("GET", "/api/v1/me"): "the caller's own user",
    ("POST", "/api/v1/calls"): "scoped: tests/api/test_outbound.py (needs DIDs and phones)",
    ("GET", "/api/v1/users"): "admins only (test_auth)",
    ("POST", "/api/v1/users"): "admins only (test_auth)",
    ("GET", "/api/v1/users/{user_id}"): "admins only (test_auth)",
    ("GET", "/api/v1/users/{user_id}/tokens"): "admins only (test_auth)",
    ("POST", "/api/v1/users/{user_id}/tokens"): "admins only (test_auth)",
    ("POST", "/api/v1/tokens/{token_id}/revoke"): "admins only (test_auth)",
    ("POST", "/api/v1/defectors/follow-ups"): "managers only: tests/api/test_followups.py",
    ("GET", "/api/v1/integrations"): "admins only (test_webhook_auth)",
    ("POST", "/api/v1/integrations"): "admins only (test_webhook_auth)",
    ("POST", "/api/v1/integrations/{integration_id}/revoke"): "admins only (test_webhook_auth)",
}
LIST_ROUTES = {
    ("GET", "/api/v1/customers"),
    ("GET", "/api/v1/callbacks"),
    ("GET", "/api/v1/me/mentions"),
    ("GET", "/api/v1/stores"),
    ("GET", "/api/v1/calls"),
    ("GET", "/api/v1/unmatched-calls"),
    ("GET", "/api/v1/search/transcripts"),  # tests/api/test_search.py: only your stores' calls
    ("GET", "/api/v1/follow-ups"),  # test_follow_up_lists_stay_in_store
}
# Managers' reports: advisors get 403, so they have their own scoping test below.
REPORT_ROUTES = {
    ("GET", "/api/v1/reports/morning"): "test_morning_report_stays_in_store",
    ("POST", "/api/v1/customers/{customer_id}/purchases"): "test_purchase_creation_stays_in_store",
}
# The DMS webhooks: an integration of one store, never a user (test_webhooks_stay_in_store).
WEBHOOK_ROUTES = {
    ("POST", "/api/v1/repair-orders/{number}/status"): {"status": "Tech Working"},
    ("POST", "/api/v1/repair-orders/{number}/events"): {"event": "part_arrived"},
}
# Store-scoped streams, tested over real HTTP where they live.
STREAM_ROUTES = {
    ("GET", "/api/v1/events"): "tests/api/test_events_stream.py: only your stores' events",
    ("GET", "/api/v1/recordings/{recording_id}/audio"): "tests/recordings/test_serve.py",
}


@pytest.fixture
def calls(api: Api, sessions: sessionmaker[Session]) -> dict[str, int]:
    """One unmatched call per store (the world of conftest has none)."""
    ids: dict[str, int] = {}
    with sessions.begin() as session:
        for letter, store_id in api.world.stores.items():
            call = Call(
                call_uuid=f"scope-{letter}-{uuid.uuid4().hex}",
                store_id=store_id,
                direction="inbound",
                from_number="+15550209999",
                to_number="+15550300100",
                started_at=NOW - timedelta(minutes=5),
                ended_at=NOW - timedelta(minutes=4),
                disposition="missed",
                flow_path=[],
            )
            session.add(call)
            session.flush()
            ids[letter] = call.id
    return ids


@pytest.fixture
def follow_ups(api: Api, sessions: sessionmaker[Session]) -> dict[str, dict[str, int]]:
    """A declined line item per store, with its follow-up (owned by the RO's advisor)."""
    ids: dict[str, dict[str, int]] = {}
    with sessions.begin() as session:
        for letter, ro_id in api.world.ros.items():
            ro = session.get(RepairOrder, ro_id)
            assert ro is not None
            item, changes = followups.add_line_item(
                session, ro=ro, description="Brake pads", status="declined"
            )
            ids[letter] = {"line_item": item.id, "follow_up": changes.created[0].id}
    return ids


def _fill(
    api: Api,
    letter: str,
    path: str,
    body: dict[str, Any] | None,
    calls: dict[str, int],
    more: dict[str, dict[str, int]] | None = None,
) -> tuple[str, Any]:
    w = api.world
    ids = {
        **(more or {}).get(letter, {}),
        "call": calls[letter],
        "customer": w.customers[letter],
        "ro": w.ros[letter],
        "callback": w.callbacks[letter],
        "mention": w.mentions[letter],
        "store": w.stores[letter],
    }
    filled_body = None
    if body is not None:
        filled_body = {
            k: (int(v.format(**ids)) if isinstance(v, str) and v.startswith("{") else v)
            for k, v in body.items()
        }
    return path.format(**ids), filled_body


def _call(api: Api, username: str, method: str, path: str, body: Any) -> Any:
    client = api.as_(username)
    return client.get(path) if method == "GET" else client.post(path, json=body)


@pytest.mark.parametrize(("method", "path", "body"), OBJECT_ROUTES, ids=lambda v: str(v))
def test_other_stores_objects_are_404(
    api: Api,
    calls: dict[str, int],
    follow_ups: dict[str, dict[str, int]],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    """ann (advisor of A) and mary (manager of A) get 404 for store B's object; bob (advisor
    of B) then gets that very object, so the 404 is about scope and not a broken route."""
    url, payload = _fill(api, "B", path, body, calls, follow_ups)
    for outsider in ("ann", "mary"):
        response = _call(api, outsider, method, url, payload)
        assert response.status_code == 404, (outsider, response.text)
        assert response.json() == {"detail": response.json()["detail"]}  # and nothing else
        assert "Joan" not in response.text and "VINB" not in response.text
    if method == "GET":
        response = _call(api, "root", method, url, payload)
        assert response.status_code == 200, ("admin", response.text)
    response = _call(api, "bob", method, url, payload)
    assert 200 <= response.status_code < 300, ("bob", response.text)


@pytest.mark.parametrize(("route", "body"), WEBHOOK_ROUTES.items(), ids=lambda v: str(v))
def test_webhooks_stay_in_store(api: Api, route: tuple[str, str], body: dict[str, Any]) -> None:
    """Store A's integration gets 404 for store B's RO (its number exists in both) and changes
    its own; B's integration changes B's; no user token is taken at all (403)."""
    path = route[1].removeprefix("/api/v1").replace("{number}", SHARED_RO)
    b = api.world.stores["B"]
    outsider = api.dms("A").post(f"{path}?store_id={b}", json=body)
    assert outsider.status_code == 404, outsider.text
    assert "Joan" not in outsider.text and "VINB" not in outsider.text
    for user in ("bob", "bea", "root"):
        assert api.as_(user).post(f"{path}?store_id={b}", json=body).status_code == 403
    own = api.dms("B").post(path, json=body)
    assert own.status_code == 200, own.text
    assert api.dms("A").post(path, json=body).status_code == 200  # A's own RO 1001
    ro_b = api.as_("bob").get(f"/repair-orders/{api.world.ros['B']}").json()
    ro_a = api.as_("ann").get(f"/repair-orders/{api.world.ros['A']}").json()
    if "status" in body:
        assert ro_b["status"] == ro_a["status"] == "Tech Working"


def test_user_without_stores_sees_nothing(api: Api) -> None:
    nobody = api.as_("nobody")
    assert nobody.get("/customers").json()["items"] == []
    assert nobody.get("/stores").json() == []
    assert nobody.get(f"/customers/{api.world.customers['A']}").status_code == 404


def _store_ids(items: list[dict[str, Any]]) -> set[int]:
    return {item["store_id"] for item in items}


def test_customer_lists_stay_in_store(api: Api) -> None:
    a, b = api.world.stores["A"], api.world.stores["B"]
    for query in (
        "",
        f"?phone={SHARED_PHONE}",
        "?phone=(555) 020-0001",
        "?name=jo",
        f"?ro={SHARED_RO}",
    ):
        for user, store in (("ann", a), ("mary", a), ("bob", b)):
            items = api.as_(user).get("/customers" + query).json()["items"]
            assert items and _store_ids(items) == {store}, (user, query, items)
        assert _store_ids(api.as_("root").get("/customers" + query).json()["items"]) == {a, b}


def test_callback_lists_stay_in_store(api: Api) -> None:
    stores = api.world.stores
    for user in ("ann", "mary", "bea"):
        home, other = ("B", "A") if user == "bea" else ("A", "B")
        for state in ("open", "done", "all"):
            items = api.as_(user).get(f"/callbacks?state={state}").json()["items"]
            assert _store_ids(items) <= {stores[home]}, (user, state)
            if user != "bea" and state != "done":
                assert items  # not vacuous: A has open tasks of ann and mary
            cross = api.as_(user).get(f"/callbacks?state={state}&store_id={stores[other]}")
            assert cross.status_code == 200 and cross.json()["items"] == []


def test_mentions_and_stores_stay_in_store(api: Api) -> None:
    a = api.world.stores["A"]
    assert [s["id"] for s in api.as_("ann").get("/stores").json()] == [a]
    mentions = api.as_("ann").get("/me/mentions").json()["items"]
    assert mentions and _store_ids([m["entry"] for m in mentions]) == {a}


def test_call_lists_stay_in_store(api: Api, calls: dict[str, int]) -> None:
    stores = api.world.stores
    for path in ("/calls", "/unmatched-calls"):
        for user, letter in (("ann", "A"), ("mary", "A"), ("bob", "B")):
            items = api.as_(user).get(path).json()["items"]
            assert [c["id"] for c in items] == [calls[letter]], (user, path)
            other = stores["B" if letter == "A" else "A"]
            cross = api.as_(user).get(f"{path}?store_id={other}")
            assert cross.status_code == 200 and cross.json()["items"] == []
        assert _store_ids(api.as_("root").get(path).json()["items"]) == set(stores.values())


def test_ro_by_number_picks_the_callers_store(api: Api) -> None:
    ro = api.as_("ann").get(f"/repair-orders/by-number/{SHARED_RO}").json()
    assert ro["id"] == api.world.ros["A"]
    ro = api.as_("bob").get(f"/repair-orders/by-number/{SHARED_RO}").json()
    assert ro["id"] == api.world.ros["B"]


def test_morning_report_stays_in_store(api: Api, calls: dict[str, int]) -> None:
    """mary (manager of A) gets 404 for store B and A's report by default; bea (manager of
    B) gets B's; the admin gets either; advisors get 403 whatever the store."""
    stores = api.world.stores

    def missed(user: str, query: str) -> list[int]:
        response = api.as_(user).get(f"/reports/morning?{query.lstrip('&')}")
        assert response.status_code == 200, (user, query, response.text)
        return list(response.json()["total"]["figures"]["calls_in"]["ids"])

    today = f"&from={NOW.date() - timedelta(days=1)}&to={NOW.date() + timedelta(days=1)}"
    response = api.as_("mary").get(f"/reports/morning?store_id={stores['B']}")
    assert response.status_code == 404 and "Joan" not in response.text
    assert missed("mary", today) == [calls["A"]]
    assert missed("bea", today) == [calls["B"]]
    assert missed("root", f"&store_id={stores['B']}{today}") == [calls["B"]]
    assert missed("root", f"&store_id={stores['A']}{today}") == [calls["A"]]
    for advisor in ("ann", "bob"):
        response = api.as_(advisor).get(f"/reports/morning?store_id={stores['B']}")
        assert response.status_code == 403


def test_follow_up_lists_stay_in_store(api: Api, follow_ups: dict[str, dict[str, int]]) -> None:
    stores = api.world.stores
    for user, letter in (("ann", "A"), ("mary", "A"), ("bob", "B"), ("bea", "B")):
        items = api.as_(user).get("/follow-ups").json()["items"]
        assert [f["id"] for f in items] == [follow_ups[letter]["follow_up"]], user
        other = stores["B" if letter == "A" else "A"]
        cross = api.as_(user).get(f"/follow-ups?store_id={other}&overdue=false")
        assert cross.status_code == 200 and cross.json()["items"] == []
    everyone = api.as_("root").get("/follow-ups").json()["items"]
    assert _store_ids(everyone) == set(stores.values())


def test_every_route_has_a_scoping_test(api: Api) -> None:
    covered = {(m, "/api/v1" + p.split("?")[0]) for m, p, _ in OBJECT_ROUTES}
    covered = {
        (
            m,
            p.replace("{customer}", "{customer_id}")
            .replace("{ro}", "{ro_id}")
            .replace("{callback}", "{task_id}")
            .replace("{mention}", "{mention_id}")
            .replace("{call}", "{call_id}")
            .replace("{line_item}", "{item_id}")
            .replace("{follow_up}", "{follow_up_id}")
            .replace(f"/{SHARED_RO}/", "/{number}/")
            .replace(f"/{SHARED_RO}", "/{number}"),
        )
        for m, p in covered
    }
    routes = {
        (method.upper(), path)
        for path, ops in api.client.app.openapi()["paths"].items()  # type: ignore[attr-defined]
        for method in ops
    }
    missing = (
        routes
        - covered
        - set(NOT_STORE_SCOPED)
        - LIST_ROUTES
        - set(STREAM_ROUTES)
        - set(REPORT_ROUTES)
        - set(WEBHOOK_ROUTES)
    )
    assert not missing, f"routes without a scoping test: {sorted(missing)}"


def test_purchase_creation_stays_in_store(api: Api) -> None:
    """Recording a sale: mary (manager of A) gets 404 for B's customer, bob (advisor of B) 403,
    bea (manager of B) and the admin 201; the purchase is then B's only."""
    url = f"/customers/{api.world.customers['B']}/purchases"
    body = {"purchased_at": NOW.isoformat(), "salesperson_name": "Sam Seller"}
    response = api.as_("mary").post(url, json=body)
    assert response.status_code == 404 and "Joan" not in response.text
    assert api.as_("bob").post(url, json=body).status_code == 403
    assert api.as_("bea").post(url, json={**body, "dms_id": "D-1"}).status_code == 201
    assert api.as_("root").post(url, json={**body, "dms_id": "D-2"}).status_code == 201
    deals = [p["dms_id"] for p in api.as_("bob").get(url).json()]
    assert sorted(deals) == ["D-1", "D-2"]
    assert api.as_("ann").get(url).status_code == 404
