"""Store scope, route by route: another store's objects are 404 and never appear in lists.

Every route of the app must be listed here (or in NOT_STORE_SCOPED with the reason), so a new
route cannot ship without a scoping test: the API's from its OpenAPI schema, the web pages'
(which are not in the schema) from the app's routes. The pages must refuse exactly what the
API refuses, since both call the same use cases; the page tests below check that they do.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from records import followups
from records.models import (
    Call,
    CallbackTask,
    FollowUp,
    Mention,
    PhoneNumber,
    RepairOrder,
    ThreadEntry,
    User,
)
from tests.api.conftest import NOW, SHARED_PHONE, SHARED_RO, Api
from tests.web.conftest import PASSWORD_HASH, log_in

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
    ("GET", "/api/v1/customers/{customer_id}/export"): "test_customer_data_stays_in_store",
    ("POST", "/api/v1/customers/{customer_id}/erase"): "test_customer_data_stays_in_store",
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


def _template(path: str) -> str:
    """A filled-in test path as the route declares it: `/calls/{call}?x=1` → `/calls/{call_id}`."""
    return (
        path.split("?")[0]
        .replace("{customer}", "{customer_id}")
        .replace("{ro}", "{ro_id}")
        .replace("{callback}", "{task_id}")
        .replace("{mention}", "{mention_id}")
        .replace("{call}", "{call_id}")
        .replace("{line_item}", "{item_id}")
        .replace("{follow_up}", "{follow_up_id}")
        .replace(f"/{SHARED_RO}/", "/{number}/")
        .replace(f"/{SHARED_RO}", "/{number}")
    )


def test_every_route_has_a_scoping_test(api: Api) -> None:
    covered = {(m, "/api/v1" + _template(p)) for m, p, _ in OBJECT_ROUTES}
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


def test_customer_data_stays_in_store(api: Api) -> None:
    """A customer's export and erasure: mary (manager of A) gets 404 for B's customer and
    erases nothing, bob (advisor of B) 403; bea (manager of B) gets B's export, then erases."""
    joan = api.world.customers["B"]
    for method, path in (
        ("GET", f"/customers/{joan}/export"),
        ("POST", f"/customers/{joan}/erase"),
    ):
        response = _call(api, "mary", method, path, None)
        assert response.status_code == 404 and "Joan" not in response.text
        assert _call(api, "bob", method, path, None).status_code == 403
    assert api.as_("bob").get(f"/customers/{joan}").json()["first_name"] == "Joan"
    export = api.as_("bea").get(f"/customers/{joan}/export")
    assert export.status_code == 200 and export.headers["content-type"] == "application/zip"
    assert api.as_("bea").post(f"/customers/{joan}/erase").status_code == 200
    assert api.as_("bob").get(f"/customers/{joan}").json()["first_name"] == ""


# --- the web pages ------------------------------------------------------------------------

OF_A = ("ann", "mary")  # of store A
# (method, path, form, outsiders, insider, the insider's status) for one object of store B:
# the outsiders get 404 and change nothing; the insider (of store B) gets through, so the 404
# is about scope. Click-to-call gets as far as "no phone number of yours to ring" (409).
PAGE_ROUTES: list[tuple[str, str, dict[str, Any] | None, tuple[str, ...], str, int]] = [
    ("GET", "/customers/{customer}", None, OF_A, "bob", 200),
    ("GET", "/calls/{call}", None, OF_A, "bob", 200),
    ("GET", "/calls?store={store}", None, OF_A, "bob", 200),
    ("GET", "/audit?store={store}", None, ("mary",), "bea", 200),
    ("GET", "/dashboard?store={store}", None, ("mary",), "bea", 200),
    ("GET", "/morning?store={store}", None, ("mary",), "bea", 200),
    ("POST", "/callbacks/{callback}/done", {}, OF_A, "bob", 303),
    ("POST", "/mentions/{mention}/seen", {}, OF_A, "bob", 303),
    ("POST", "/follow-ups/{follow_up}/outcome", {"outcome": "no_answer"}, OF_A, "bob", 303),
    ("POST", "/follow-ups/{follow_up}/call", {}, OF_A, "bob", 409),
    (
        "POST",
        "/follow-ups/promise",
        {"ro_number": "9B", "text": "call", "when": "part"},
        OF_A,
        "bob",
        303,
    ),
    ("POST", "/calls/{call}/link", {"customer_id": "{customer}"}, OF_A, "bob", 303),
    ("POST", "/customers/{customer}/notes", {"body": "hello"}, OF_A, "bob", 303),
    ("POST", "/customers/{customer}/call", {}, OF_A, "bob", 409),
    ("POST", "/audit/{customer}", {"week": "2026-11-23"}, ("mary",), "bea", 303),
]
# Pages that list the caller's stores' objects (url, who looks): store B's never appear.
PAGE_LISTS = {
    ("GET", "/"): ("/", OF_A),
    ("GET", "/follow-ups"): ("/follow-ups", OF_A),
    ("GET", "/customers"): ("/customers?q=jo", OF_A),
    ("GET", "/search"): ("/search?q=brakes", OF_A),
    ("GET", "/morning/items"): ("/morning/items?of=callback&ids={callback}", ("mary",)),
}
PAGE_NOT_STORE_SCOPED = {
    ("GET", "/login"): "public: the login form",
    ("POST", "/login"): "public: checks a password (tests/web/test_pages.py)",
    ("POST", "/logout"): "ends the caller's own session (test_logout_revokes_the_session)",
    ("GET", "/flows"): "the flows folder, the same for every store",
}
PAGE_USERS = ("ann", "mary", "bob", "bea")
PageAs = Callable[[str], tuple[TestClient, str]]


@pytest.fixture
def pages(api: Api, sessions: sessionmaker[Session]) -> PageAs:
    """`pages("ann")`: a browser-like client logged in through the form, and its CSRF token."""
    with sessions.begin() as session:
        for name in PAGE_USERS:
            user = session.get(User, api.world.users[name])
            assert user is not None
            user.password_hash = PASSWORD_HASH
    logged_in: dict[str, tuple[TestClient, str]] = {}

    def as_(username: str) -> tuple[TestClient, str]:
        if username not in logged_in:
            client = TestClient(api.client.app)
            logged_in[username] = (client, log_in(client, username))
        return logged_in[username]

    return as_


def _store_state(sessions: sessionmaker[Session], store_id: int) -> dict[str, Any]:
    """What a page could change in one store: thread, callbacks, follow-ups, calls, mentions."""
    with sessions() as session:
        return {
            "entries": session.scalar(select(func.count()).where(ThreadEntry.store_id == store_id)),
            "phones": session.scalar(select(func.count()).where(PhoneNumber.store_id == store_id)),
            "callbacks": session.execute(
                select(CallbackTask.id, CallbackTask.done_at, CallbackTask.done_by_id)
                .where(CallbackTask.store_id == store_id)
                .order_by(CallbackTask.id)
            ).all(),
            "follow_ups": session.execute(
                select(FollowUp.id, FollowUp.attempts, FollowUp.due_at, FollowUp.done_at)
                .where(FollowUp.store_id == store_id)
                .order_by(FollowUp.id)
            ).all(),
            "calls": session.execute(
                select(Call.id, Call.customer_id).where(Call.store_id == store_id).order_by(Call.id)
            ).all(),
            "mentions": session.execute(
                select(Mention.id, Mention.seen_at)
                .join(ThreadEntry, Mention.entry_id == ThreadEntry.id)
                .where(ThreadEntry.store_id == store_id)
                .order_by(Mention.id)
            ).all(),
        }


def _page(client: TestClient, csrf: str, method: str, url: str, form: Any) -> Any:
    if method == "GET":
        return client.get(url, follow_redirects=False)
    return client.post(url, data={**(form or {}), "csrf": csrf}, follow_redirects=False)


def test_pages_refuse_other_stores_objects_and_change_nothing(
    api: Api,
    sessions: sessionmaker[Session],
    pages: PageAs,
    calls: dict[str, int],
    follow_ups: dict[str, dict[str, int]],
) -> None:
    """Every page route on store B's objects: ann (advisor of A) and mary (manager of A) get
    404 and store B is as it was; then B's own people get through, route by route."""
    before = _store_state(sessions, api.world.stores["B"])
    filled = [
        (method, *_fill(api, "B", path, form, calls, follow_ups), outsiders, insider, code)
        for method, path, form, outsiders, insider, code in PAGE_ROUTES
    ]
    for method, url, form, outsiders, _insider, _code in filled:
        for outsider in outsiders:
            response = _page(*pages(outsider), method, url, form)
            assert response.status_code == 404, (outsider, method, url, response.text)
            assert "Joan" not in response.text and "VINB" not in response.text
    assert _store_state(sessions, api.world.stores["B"]) == before
    for method, url, form, _outsiders, insider, code in filled:
        response = _page(*pages(insider), method, url, form)
        assert response.status_code == code, (insider, method, url, response.text)
    assert _store_state(sessions, api.world.stores["B"]) != before  # not vacuous


def test_page_lists_stay_in_store(api: Api, pages: PageAs, calls: dict[str, int]) -> None:
    for url, users in PAGE_LISTS.values():
        filled, _ = _fill(api, "B", url, None, calls)
        for user in users:
            response = pages(user)[0].get(filled)
            assert response.status_code == 200, (user, filled)
            assert "Joan" not in response.text and "VINB" not in response.text, (user, filled)


def test_every_page_route_has_a_scoping_test(api: Api) -> None:
    """The pages are not in the OpenAPI schema: take them from the app's routes. A table entry
    for a route that no longer exists fails too, so the tables cannot rot."""
    app = api.client.app
    pages = {
        (method, route.path)
        for route in iter_route_contexts(app.routes)  # type: ignore[attr-defined]
        if isinstance(route.original_route, APIRoute) and not route.include_in_schema
        for method in route.methods or ()
    }
    covered = {(m, _template(p)) for m, p, *_ in PAGE_ROUTES}
    listed = covered | set(PAGE_LISTS) | set(PAGE_NOT_STORE_SCOPED)
    assert not pages - listed, f"pages without a scoping test: {sorted(pages - listed)}"
    assert not listed - pages, f"tests for pages that do not exist: {sorted(listed - pages)}"
    changing = {(m, p) for m, p in pages if m != "GET"}
    unchecked = changing - covered - set(PAGE_NOT_STORE_SCOPED)
    assert not unchecked, f"state-changing pages without a scoping test: {sorted(unchecked)}"


def test_pages_keep_the_owner_rule(
    api: Api, sessions: sessionmaker[Session], pages: PageAs
) -> None:
    """alex's callback and promise in store A: ann, another advisor of A, is refused by the
    pages exactly as by the API (404, shown as a page) and nothing changes; mary, their
    manager, may work them from the pages."""
    w = api.world
    with sessions.begin() as session:
        task = CallbackTask(
            store_id=w.stores["A"],
            phone="+15550200005",
            owner_id=w.users["alex"],
            reason="alex's",
            due_at=NOW,
        )
        session.add(task)
        ro = session.get(RepairOrder, w.ros["A"])
        assert ro is not None
        promise = followups.create_promise(
            session, ro=ro, text="alex's promise", created_by_id=w.users["alex"], due_at=NOW
        )
        session.flush()
        task_id, fu_id = task.id, promise.id
    before = _store_state(sessions, w.stores["A"])
    ann, csrf = pages("ann")
    for url, form in (
        (f"/callbacks/{task_id}/done", {}),
        (f"/follow-ups/{fu_id}/outcome", {"outcome": "booked"}),
        (f"/follow-ups/{fu_id}/call", {}),
    ):
        refused = ann.post(url, data={**form, "csrf": csrf}, headers={"accept": "text/html"})
        assert refused.status_code == 404, (url, refused.text)
        assert "<h1>Not found</h1>" in refused.text and " not found." in refused.text
        assert "Traceback" not in refused.text
    assert api.as_("ann").post(f"/callbacks/{task_id}/done").status_code == 404
    outcome = api.as_("ann").post(f"/follow-ups/{fu_id}/outcome", json={"outcome": "booked"})
    assert outcome.status_code == 404
    assert _store_state(sessions, w.stores["A"]) == before
    mary, csrf = pages("mary")
    done = mary.post(f"/callbacks/{task_id}/done", data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    worked = mary.post(
        f"/follow-ups/{fu_id}/outcome",
        data={"outcome": "booked", "csrf": csrf},
        follow_redirects=False,
    )
    assert worked.status_code == 303
    with sessions() as session:
        closed = session.get(CallbackTask, task_id)
        assert closed is not None and closed.done_by_id == w.users["mary"]
        booked = session.get(FollowUp, fu_id)
        assert booked is not None and booked.outcome == "booked"
