"""Garbage in, 4xx out: no POST route answers bad input with a 500 (on either database)."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import SHARED_RO, Api

HUGE = 2**63
NUL = "bad\x00value"


def _post_routes(api: Api) -> dict[str, list[Any]]:
    """Each POST route with bodies that are wrong in shape, type, size or content."""
    w = api.world
    common: list[Any] = [None, [], "text", 42, {"unexpected": 1}, {"a": {"b": [1, {"c": None}]}}]
    return {
        f"/customers/{w.customers['A']}/notes": common
        + [
            {"body": ""},
            {"body": "   "},
            {"body": NUL},
            {"body": 5},
            {"body": "x" * 10_001},
            {"body": "hi @" + "a" * 300},
        ],
        f"/repair-orders/{SHARED_RO}/status": common
        + [
            {"status": NUL},
            {"status": 1},
            {"status": "In Shop", "at": "2030-13-45T00:00:00Z"},
            {"status": "In Shop", "at": [1]},
            {"status": "In Shop", "note": NUL},
            {"status": "In Shop", "at": "9999-12-31T23:59:59-14:00"},
        ],
        "/callbacks": common
        + [
            {"phone": "not a phone"},
            {"phone": NUL},
            {"phone": "555 020 0001", "customer_id": HUGE},
            {"phone": "555 020 0001", "customer_id": -1},
            {"phone": "555 020 0001", "store_id": HUGE},
            {"phone": "555 020 0001", "owner_id": 0},
            {"phone": "555 020 0001", "reason": NUL},
            {"phone": "555 020 0001", "due_at": "2030-01-01T00:00:00"},
            {"phone": "555 020 0001", "due_at": "0001-01-01T00:00:00+05:00"},
            {"phone": "1" * 100},
        ],
        f"/callbacks/{w.callbacks['A']}/done": [],  # takes no body: checked by path garbage
        f"/me/mentions/{w.mentions['A']}/seen": [],
    }


def _admin_routes(api: Api) -> dict[str, list[Any]]:
    common: list[Any] = [None, [], "text", 42, {"unexpected": 1}]
    return {
        "/users": common
        + [
            {"username": "bad name", "name": "X", "role": "advisor"},
            {"username": "x" * 65, "name": "X", "role": "advisor"},
            {"username": "ok", "name": NUL, "role": "advisor"},
            {"username": "ok", "name": "X", "role": "advisor", "store_ids": [HUGE]},
            {"username": "ok", "name": "X", "role": "advisor", "store_ids": "1"},
            {"username": "ok", "name": "X", "role": "advisor", "phone": "nope"},
            {"username": "ok", "name": "X", "role": "advisor", "email": "e" * 201},
        ],
        f"/users/{api.world.users['ann']}/tokens": common[:4]
        + [{"name": NUL}, {"name": "n" * 101}],
    }


def _assert_4xx(response: Any, what: Any) -> None:
    assert 400 <= response.status_code < 500, (what, response.status_code, response.text)
    assert "detail" in response.json(), what


def test_post_routes_reject_garbage(api: Api) -> None:
    for user, routes in (("ann", _post_routes(api)), ("root", _admin_routes(api))):
        client = api.as_(user)
        for path, bodies in routes.items():
            for body in bodies:
                _assert_4xx(client.post(path, json=body), (path, body))
            if bodies:
                raw = client.post(
                    path, content=b"{not json", headers={"Content-Type": "application/json"}
                )
                _assert_4xx(raw, (path, "malformed json"))
                _assert_4xx(
                    client.post(
                        path, content=b"\xff\xfe", headers={"Content-Type": "application/json"}
                    ),
                    path,
                )
    # ... and none of it was written.
    thread = api.as_("ann").get(f"/customers/{api.world.customers['A']}/thread").json()["items"]
    assert len(thread) == 2
    assert api.as_("ann").get(f"/repair-orders/{api.world.ros['A']}").json()["status"] == "In Shop"
    assert len(api.as_("ann").get("/callbacks", params={"state": "all"}).json()["items"]) == 3
    assert len(api.as_("root").get("/users").json()["items"]) == 7


def test_paths_and_queries_reject_garbage(api: Api) -> None:
    ann = api.as_("ann")
    for path in (
        f"/callbacks/{2**40}/done",
        "/callbacks/abc/done",
        "/me/mentions/0/seen",
        f"/customers/{2**40}/notes",
        f"/repair-orders/{'9' * 40}/status",
        "/repair-orders/1%00/status",
        f"/repair-orders/{SHARED_RO}/status?store_id={2**40}",
    ):
        _assert_4xx(
            ann.post(path, json={"status": "In Shop", "body": "x", "phone": "5550200001"}), path
        )
    for path in (
        "/customers?limit=0",
        "/customers?limit=100000",
        "/customers?offset=-1",
        f"/customers?name={'x' * 300}",
        "/customers?phone=%00",
        "/customers?name=a%00b",
        "/customers?ro=1%00",
        "/repair-orders/by-number/1%00",
        "/callbacks?store_id=abc",
        "/me/mentions?unseen=maybe",
        f"/repair-orders/{2**40}",
    ):
        _assert_4xx(ann.get(path), path)
