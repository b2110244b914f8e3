"""Security headers on every response (api/headers.py), and the session cookie's Secure flag
from the `cookie_secure` setting rather than only from the scheme seen behind a proxy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.headers import DOCS_CSP, PAGES_CSP
from events.bus import EventBus
from ivr.config import Settings
from tests.api.conftest import World
from tests.web.conftest import PASSWORD, csrf_of

TEMPLATES = Path(__file__).resolve().parents[2] / "api" / "web" / "templates"
PATHS = [
    "/login",
    "/",  # a redirect to the login page
    "/static/app.js",
    "/static/app.css",
    "/healthz",
    "/api/v1/me",  # 401
    "/api/v1/no-such-route",  # 404
    "/customers/999999",
    "/openapi.json",
]


@pytest.fixture
def client_for(
    db_url: str, engine: Engine, bus: EventBus, redis_url: str, world: World
) -> Iterator[object]:
    opened: list[TestClient] = []

    def make(base_url: str = "http://testserver", **settings: object) -> TestClient:
        config = Settings(database_url=db_url, redis_url=redis_url, **settings)  # type: ignore[arg-type]
        client = TestClient(
            create_app(config, engine=engine, bus=bus), base_url=base_url, follow_redirects=False
        )
        opened.append(client.__enter__())
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def session_cookie(client: TestClient) -> str:
    """Log in; the session's Set-Cookie. The login CSRF cookie goes back by hand: over http
    the client's jar keeps a Secure cookie to itself (a browser on the proxy's https would not)."""
    page = client.get("/login")
    login_csrf = page.headers["set-cookie"].split(";")[0]
    client.cookies.clear()
    response = client.post(
        "/login",
        data={"username": "ann", "password": PASSWORD, "csrf": csrf_of(page.text)},
        headers={"Cookie": login_csrf},
    )
    assert response.status_code == 303, response.text
    [cookie] = [c for c in response.headers.get_list("set-cookie") if c.startswith("dl_session=")]
    return cookie


def test_every_response_carries_the_headers(client_for) -> None:  # type: ignore[no-untyped-def]
    client = client_for()
    for path in PATHS:
        headers = client.get(path).headers
        assert headers["content-security-policy"] == PAGES_CSP, path
        assert "frame-ancestors 'none'" in PAGES_CSP
        assert headers["x-frame-options"] == "DENY", path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "same-origin", path
        assert "strict-transport-security" not in headers, path  # plain http: no HSTS
    assert client.get("/docs").headers["content-security-policy"] == DOCS_CSP
    assert "Secure" not in session_cookie(client)


def test_over_https_hsts_and_a_secure_cookie(client_for) -> None:  # type: ignore[no-untyped-def]
    client = client_for("https://testserver")
    for path in PATHS:
        assert client.get(path).headers["strict-transport-security"].startswith("max-age="), path
    assert "Secure" in session_cookie(client)


@pytest.mark.parametrize(
    ("base_url", "cookie_secure", "secure"),
    [
        ("http://testserver", True, True),  # a TLS proxy in front speaks http to us
        ("https://testserver", False, False),  # explicitly off (a lab without TLS in the end)
    ],
)
def test_the_setting_decides_over_the_scheme(  # type: ignore[no-untyped-def]
    client_for, base_url: str, cookie_secure: bool, secure: bool
) -> None:
    client = client_for(base_url, cookie_secure=cookie_secure)
    assert ("Secure" in session_cookie(client)) is secure
    assert ("strict-transport-security" in client.get("/login").headers) is secure


def test_templates_need_nothing_the_policy_forbids() -> None:
    """PAGES_CSP allows scripts and styles from our own files only: no inline script, no
    event-handler attributes, no style attributes or blocks, no javascript: links."""
    forbidden = [
        re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
        re.compile(r"\son[a-z]+\s*=", re.I),
        re.compile(r"\sstyle\s*=", re.I),
        re.compile(r"<style", re.I),
        re.compile(r"javascript:", re.I),
    ]
    found = [
        f"{page.name}: {m.group(0)}"
        for page in sorted(TEMPLATES.glob("*.html"))
        for pattern in forbidden
        for m in pattern.finditer(page.read_text())
    ]
    assert found == []
