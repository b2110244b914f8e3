"""Every operation of the OpenAPI schema, fuzzed once per role: no 5xx, no other store's data.

Schemathesis is not installable here, so a small seeded generator (tests/api/fuzz.py) makes
the requests from the schema itself: a new route is fuzzed without editing this file. Each
role of store A (admin, manager, advisor) and store A's DMS integration (signed webhooks)
sends `PER_OPERATION` requests to every operation, mixing values the schema allows, store A's
and store B's real ids, and hostile ones. The checks:

- no response is a 5xx (or an exception out of the app); the failing request is printed;
- as a store-A user or integration, no response carries store B's data (its customer's name,
  e-mail, VIN, DMS ids, closed RO number, users, or a `store_id`/`customer_id`... field with
  B's id), and a request naming one of B's objects never succeeds. The admin sees every store
  by design, so only the first check applies to it;
- the integration's credentials open the webhooks and nothing else.

The seed is fixed (FUZZ_SEED to try another), so a failure reproduces with the same command;
FUZZ_VERBOSE=1 (with -s) prints every request and its answer.
"""

from __future__ import annotations

import os
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.webhook_auth import signed_headers
from records.models import Vehicle
from tests.api.conftest import SHARED_PHONE, SHARED_RO, Api
from tests.api.fuzz import Pools, Request, Requests

SEED = int(os.environ.get("FUZZ_SEED", "14"))
VERBOSE = bool(os.environ.get("FUZZ_VERBOSE"))  # print every request and its answer (-s)
PER_OPERATION = int(os.environ.get("FUZZ_PER_OPERATION", "15"))  # more, to hunt
# Operations not fuzzed, and why.
SKIPPED = {
    ("GET", "/api/v1/events"): "a server-sent event stream: it never ends (test_events_stream)",
}
# Run last: they take away what later requests would use (the caller's token, A's customer).
LAST = [
    ("POST", "/api/v1/customers/{customer_id}/erase"),
    ("POST", "/api/v1/integrations/{integration_id}/revoke"),
    ("POST", "/api/v1/tokens/{token_id}/revoke"),
]
WEBHOOKS = {
    ("POST", "/api/v1/repair-orders/{number}/status"),
    ("POST", "/api/v1/repair-orders/{number}/events"),
}
PUBLIC = {("GET", "/healthz")}
MIN_ANSWERED = {"admin": 40, "manager": 30, "advisor": 25}  # operations with a 2xx, at least
# Store A's users by role (conftest's world); "integration" is store A's DMS integration.
ROLES = {"admin": "root", "manager": "mary", "advisor": "ann", "integration": ""}


@dataclass
class Failure:
    why: str
    request: Request
    status: int
    text: str

    def __str__(self) -> str:
        return f"{self.why}: {self.request} -> {self.status} {self.text[:300]}"


def _pools(
    api: Api,
    sessions: sessionmaker[Session],
    calls: dict[str, int],
    follow_ups: dict[str, dict[str, int]],
) -> dict[str, dict[str, list[Any]]]:
    """Real ids per kind of path/body field, for store A and store B."""
    w = api.world
    with sessions() as session:
        vehicles = {
            letter: list(
                session.scalars(select(Vehicle.id).where(Vehicle.store_id == w.stores[letter]))
            )
            for letter in "AB"
        }
    users = {
        "A": [w.users[u] for u in ("ann", "alex", "mary")],
        "B": [w.users["bob"], w.users["bea"]],
    }
    return {
        letter: {
            "store": [w.stores[letter]],
            "customer": [w.customers[letter]],
            "ro": [w.ros[letter]],
            "callback": [w.callbacks[letter]],
            "mention": [w.mentions[letter]],
            "call": [calls[letter]],
            "line_item": [follow_ups[letter]["line_item"]],
            "follow_up": [follow_ups[letter]["follow_up"]],
            "user": users[letter],
            "vehicle": vehicles[letter],
            "number": [SHARED_RO, f"9{letter}"] if letter == "A" else ["9B"],
            **({"phone": [SHARED_PHONE]} if letter == "A" else {}),  # B has it too: not B's
        }
        for letter in "AB"
    }


# Strings only store B's rows hold (conftest's world): found in a reply, they leaked. Short
# ones count only as a whole value, longer ones anywhere in a string.
B_MARKERS = {"Joan", "joan@example.com", "VINB", "C-B", "S-B", "Store B", "9B", "bob", "bea"}


def _b_refs(pools: dict[str, list[Any]]) -> dict[str, set[int]]:
    """Response fields that name a store-B object when they hold one of these ids."""
    return {
        "store_id": set(pools["store"]),
        "customer_id": set(pools["customer"]),
        "repair_order_id": set(pools["ro"]),
        "ro_id": set(pools["ro"]),
    }


def _strings_and_refs(value: Any, key: str = "") -> Any:
    """(key, scalar) pairs of a JSON value, leaving out validation errors' echo of the input."""
    if isinstance(value, dict):
        for k, v in value.items():
            if key == "detail" and k in ("input", "ctx"):  # a 422 shows what was sent
                continue
            yield from _strings_and_refs(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from _strings_and_refs(item, key)
    else:
        yield key, value


def _leaks(response: httpx.Response, markers: set[str], refs: dict[str, set[int]]) -> list[str]:
    try:
        body = response.json()
    except ValueError:
        return [m for m in markers if len(m) > 3 and m in response.text]
    found = []
    for key, value in _strings_and_refs(body):
        if isinstance(value, str) and any(
            m == value or (len(m) > 3 and m in value) for m in markers
        ):
            found.append(f"{key}={value!r}")
        elif isinstance(value, int) and not isinstance(value, bool) and value in refs.get(key, ()):
            found.append(f"{key}={value}")
    return found


def _send(api: Api, role: str, request: Request) -> httpx.Response:
    client = api.client
    if role == "integration":
        body = request.body_bytes() or b""
        headers = signed_headers(*api.world.integrations["A"], body, delivery=uuid.uuid4().hex)
    else:
        body = request.body_bytes()
        headers = {"Authorization": f"Bearer {api.world.tokens[ROLES[role]]}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
    return client.request(
        request.method,
        request.url,
        params=request.query,
        content=body,
        headers=headers | request.headers,
    )


@pytest.mark.parametrize("role", list(ROLES))
def test_openapi_fuzz(
    api: Api,
    sessions: sessionmaker[Session],
    calls: dict[str, int],
    follow_ups: dict[str, dict[str, int]],
    role: str,
) -> None:
    spec = api.client.app.openapi()  # type: ignore[attr-defined]
    pools = _pools(api, sessions, calls, follow_ups)
    markers, refs = B_MARKERS, _b_refs(pools["B"])
    requests = Requests(
        spec, Pools(own=pools["A"], other=pools["B"]), random.Random(f"{SEED}:{role}")
    )
    operations = [op for op in requests.operations() if op not in SKIPPED and op not in LAST] + [
        op for op in LAST if op in requests.operations()
    ]
    failures: list[Failure] = []
    sent, statuses, answered = 0, Counter[int](), set()
    for method, path in operations:
        for request in requests.for_operation(method, path, PER_OPERATION):
            sent += 1
            try:
                response = _send(api, role, request)
            except Exception as exc:  # an exception out of the app is a 500 the client saw
                failures.append(Failure("exception", request, 500, repr(exc)))
                continue
            status = response.status_code
            statuses[status // 100 * 100] += 1
            if status < 300:
                answered.add((method, path))
            if VERBOSE:
                print(role, request, "->", status, response.text[:200])
            if status >= 500:
                failures.append(Failure("server error", request, status, response.text))
            if role == "admin":
                continue
            if role == "integration" and (method, path) not in WEBHOOKS | PUBLIC and status < 400:
                failures.append(
                    Failure("integration got past a user route", request, status, response.text)
                )
            if request.names_other and status < 400:
                failures.append(
                    Failure("store B's object accepted", request, status, response.text)
                )
            leaked = _leaks(response, markers, refs)
            if leaked:
                failures.append(Failure(f"store B's data {leaked}", request, status, response.text))
    print(
        f"{role}: {len(operations)} operations, {len(answered)} of them answered 2xx,"
        f" {sent} requests, {dict(statuses)} by class"
    )
    # The requests got past authentication and validation to the code behind them.
    assert WEBHOOKS <= answered if role == "integration" else len(answered) >= MIN_ANSWERED[role]
    assert not failures, "\n".join(map(str, failures[:30]))
