"""Requests made from an OpenAPI schema by a seeded generator (test_openapi_fuzz.py).

Values follow each parameter's and body field's schema ($ref, anyOf, enum, type, format,
minimum/maximum, min/maxLength, the patterns the API uses), with a share of hostile ones:
huge and negative numbers, wrong types, nulls, long, NUL and unicode strings: half of the
requests stay within the schema, so they get past validation to the code behind it. Fields whose
name says what they point at (`customer_id`, `ro_id`, `number`, ...) often get a real id of
the caller's store or of the other store; a request carrying the other store's in its path or
body is marked so the test can insist it is refused (a list filtered by the other store's id
may answer 200 with nothing: its items are checked for leaks). Same seed, same requests.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from json import dumps
from random import Random
from typing import Any
from urllib.parse import quote

# What a field points at, by its name.
KINDS = {
    "customer_id": "customer",
    "ro_id": "ro",
    "repair_order_id": "ro",
    "task_id": "callback",
    "mention_id": "mention",
    "call_id": "call",
    "item_id": "line_item",
    "follow_up_id": "follow_up",
    "user_id": "user",
    "owner_id": "user",
    "salesperson_id": "user",
    "store_id": "store",
    "store_ids": "store",
    "vehicle_id": "vehicle",
    "number": "number",
    "phone": "phone",
}
HOSTILE: list[Any] = [
    None,
    -1,
    0,
    2**31,
    2**63,
    -(2**63),
    10**40,
    1.5,
    True,
    "",
    "bad\x00value",
    "x" * 20_000,
    "名前\u202e🚗 Ünïcödé",
    "' OR 1=1 --",
    "%s%n{0}",
    [],
    {},
    ["a", 1],
    {"a": {"b": None}},
]
HOSTILE_SEGMENTS = [
    "-1",
    "0",
    "99999999999999999999",
    "abc",
    "1.5",
    "名前",
    "%00",
    " ",
    "1e9",
    "2147483648",
]
HOSTILE_BODIES: list[bytes | None] = [None, b"", b"{not json", b"[]", b"42", b'"text"', b"null"]
TEXT = string.ascii_letters + string.digits + " -_.,@+'\"é名🚗"
NO_BODY = object()
TAME = 3  # the first requests of each operation are tame: valid, and only the caller's ids
# Values the API knows, for fields the schema only says are strings.
WORDS = {
    "status": ["In Shop", "Tech Working", "Waiting on Parts", "Closed"],
    "event": ["part_arrived", "car_ready"],
    "trigger": ["part_arrived", "status:Tech Working"],
    "description": ["Brake pads", "Wiper blades"],
    "name": ["J", "Smith", "Zed"],  # prefixes of conftest's customers' names
    "q": ["brakes", "call"],
}


@dataclass
class Pools:
    """Real values per kind (see KINDS): the caller's store's and the other store's."""

    own: dict[str, list[Any]]
    other: dict[str, list[Any]]


@dataclass
class Request:
    method: str
    url: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = NO_BODY  # a JSON value, raw bytes, or NO_BODY
    names_other: bool = False  # carries one of the other store's ids

    def body_bytes(self) -> bytes | None:
        if self.body is NO_BODY:
            return None
        if isinstance(self.body, bytes) or self.body is None:
            return self.body
        return dumps(self.body, ensure_ascii=False).encode()

    def __str__(self) -> str:
        body = self.body_bytes()
        shown = "" if body is None else " " + body[:300].decode(errors="replace")
        return f"{self.method} {self.url} query={self.query} headers={self.headers}{shown}"


class Requests:
    """Generated requests per operation of `spec`."""

    def __init__(self, spec: dict[str, Any], pools: Pools, rng: Random) -> None:
        self.spec, self.pools, self.rng = spec, pools, rng
        self._other = False
        self._hostile = False  # this request may break the schema (half of them do)
        self._tame = False  # this one stays in the schema and names only the caller's objects

    def operations(self) -> list[tuple[str, str]]:
        return [
            (method.upper(), path)
            for path, ops in self.spec["paths"].items()
            for method in ops
            if method in ("get", "post", "put", "patch", "delete")
        ]

    def for_operation(self, method: str, path: str, count: int) -> list[Request]:
        op = self.spec["paths"][path][method.lower()]
        return [self._request(method, path, op, tame=i < TAME, bare=i == 0) for i in range(count)]

    def _request(
        self, method: str, path: str, op: dict[str, Any], *, tame: bool, bare: bool
    ) -> Request:
        """`bare`: without any optional parameter (a list route's whole list)."""
        self._tame, self._other = tame, False
        self._hostile = not tame and self.rng.random() < 0.5
        url, query, headers = path, {}, {}
        for param in op.get("parameters", []):
            name, where, schema = param["name"], param["in"], param.get("schema", {})
            if where == "path":
                url = url.replace("{" + name + "}", self._segment(name, schema))
                continue
            if not param.get("required") and (bare or self.rng.random() < 0.4):
                continue
            named_other, value = self._other, self.value(schema, name)
            self._other = named_other  # a list filtered by B's id may answer 200 with nothing
            if value is None or isinstance(value, (list, dict)):
                continue
            text = str(value).lower() if isinstance(value, bool) else str(value)
            (query if where == "query" else headers)[name] = text
        if where_headers_unsafe(headers):
            headers = {}
        request = Request(method, url, query, headers)
        content = op.get("requestBody", {}).get("content", {}).get("application/json")
        if content is not None:
            if self._hostile and self.rng.random() < 0.2:
                request.body = self.rng.choice(HOSTILE_BODIES)
            else:
                request.body = self.value(content["schema"], "")
        request.names_other = self._other
        return request

    def _segment(self, name: str, schema: dict[str, Any]) -> str:
        roll = self.rng.random()
        if self._hostile and roll < 0.3:
            return quote(self.rng.choice(HOSTILE_SEGMENTS), safe="")
        value = self.value(schema, name)
        if isinstance(value, (list, dict)) or value is None or value == "":
            value = self.rng.choice(HOSTILE_SEGMENTS)
        return quote(str(value), safe="")

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            node: Any = self.spec
            for part in schema["$ref"].removeprefix("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def value(self, schema: dict[str, Any], name: str) -> Any:
        """One value for a field named `name` of this schema: usually valid, sometimes not."""
        schema = self._resolve(schema)
        kind = KINDS.get(name)
        roll = self.rng.random()
        if kind and (roll < 0.6 or self._tame):
            side = "own" if roll < 0.45 or self._tame or not self.pools.other.get(kind) else "other"
            choices = getattr(self.pools, side).get(kind) or []
            if choices:
                self._other |= side == "other"
                picked = self.rng.choice(choices)
                return [picked] if schema.get("type") == "array" else picked
        if self._hostile and roll > 0.8:
            return self.rng.choice(HOSTILE)
        return self._valid(schema, name)

    def _valid(self, schema: dict[str, Any], name: str) -> Any:
        if "anyOf" in schema:
            branches = [self._resolve(s) for s in schema["anyOf"]]
            real = [b for b in branches if b.get("type") != "null"]
            if not real or self.rng.random() < (0.0 if self._tame and name in WORDS else 0.2):
                return None
            return self.value(self.rng.choice(real), name)
        if "enum" in schema:
            return self.rng.choice(schema["enum"])
        kind = schema.get("type")
        if kind == "integer":
            low, high = int(schema.get("minimum", -1000)), int(schema.get("maximum", 10**6))
            return self.rng.choice([low, high, self.rng.randint(low, min(high, low + 50))])
        if kind == "number":
            low = float(schema.get("minimum", schema.get("exclusiveMinimum", 0)))
            return round(self.rng.uniform(low, float(schema.get("maximum", 1000))), 3)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "string":
            return self._string(schema, name)
        if kind == "array":
            size = self.rng.randint(0, min(3, int(schema.get("maxItems", 3))))
            return [self.value(schema.get("items", {}), name) for _ in range(size)]
        if kind == "object" or "properties" in schema:
            return self._object(schema)
        return self.rng.choice(HOSTILE)

    def _object(self, schema: dict[str, Any]) -> dict[str, Any]:
        required = set(schema.get("required", []))
        out = {}
        for prop, sub in schema.get("properties", {}).items():
            wanted = prop in required and not self._hostile
            wanted |= self._tame and prop in WORDS  # a new DMS line item needs its description
            if wanted or self.rng.random() < 0.5:
                out[prop] = self.value(sub, prop)
        if self._hostile and self.rng.random() < 0.2:
            out["unexpected"] = self.rng.choice(HOSTILE)
        return out

    def _string(self, schema: dict[str, Any], name: str) -> str:
        fmt, pattern = schema.get("format"), schema.get("pattern", "")
        now = datetime.now(UTC)
        if fmt == "date-time":
            at = now + timedelta(hours=self.rng.randint(-24 * 400, 48))
            if not self._hostile:
                return at.isoformat()
            return self.rng.choice(
                [at.isoformat(), at.replace(tzinfo=None).isoformat(), "2030-13-45T00:00:00Z",
                 "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "yesterday"]
            )  # fmt: skip
        if fmt == "date":
            day = (now + timedelta(days=self.rng.randint(-400, 10))).date()
            if not self._hostile:
                return day.isoformat()
            return self.rng.choice([day.isoformat(), "0001-01-01", "9999-12-31", "2026-02-30"])
        alternatives = re.fullmatch(r"\^\(([\w|]+)\)\$", pattern)
        if alternatives:
            return self.rng.choice(alternatives.group(1).split("|"))
        if pattern.startswith("^[A-HJ-NPR-Z0-9]{17}"):
            return "".join(self.rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789") for _ in range(17))
        if name in WORDS:
            return self.rng.choice(WORDS[name])
        low, high = int(schema.get("minLength", 0)), int(schema.get("maxLength", 60))
        size = self.rng.randint(max(low, 1), max(low, 1, min(high, 30)))
        if self._hostile:
            size = self.rng.choice([low, high, high + 1, size])
        alphabet = (
            string.ascii_letters + string.digits + "_" if pattern.startswith("^[A-Za-z") else TEXT
        )
        return "".join(self.rng.choice(alphabet) for _ in range(size))


def where_headers_unsafe(headers: dict[str, str]) -> bool:
    """httpx sends only latin-1 header values."""
    return any(not value.isascii() or "\x00" in value for value in headers.values())
