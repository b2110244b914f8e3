"""Web page fixtures: the API tests' two-store world, with passwords, and a logged-in client.

Browser tests (test_*browser.py) start their own uvicorn (tests/web/browser.py) and share the
`web_browser` fixture below; the TestClient tests run on SQLite and PostgreSQL like the API's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.web.sessions import hash_password
from events.bus import EventBus
from ivr.config import Settings
from records.models import User
from tests.api import conftest as api_fixtures
from tests.api.conftest import World, build_world
from tests.needs import require
from tests.web.browser import CHROMIUM

bus = api_fixtures.bus  # the API tests' Redis event bus fixture, shared

PASSWORD = "correct horse battery"
WEB_USERS = ("ann", "mary", "bob", "root")
PASSWORD_HASH = hash_password(PASSWORD)  # argon2 is slow on purpose: hash once per run


@pytest.fixture
def world(sessions: sessionmaker[Session]) -> World:
    with sessions() as session:
        world = build_world(session)
        session.commit()
        for name in WEB_USERS:
            user = session.get(User, world.users[name])
            assert user is not None
            user.password_hash = PASSWORD_HASH
        session.commit()
        return world


@pytest.fixture
def client(
    db_url: str, engine: Engine, bus: EventBus, redis_url: str, tmp_path
) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = Settings(database_url=db_url, redis_url=redis_url, recordings_dir=tmp_path / "rec")
    with TestClient(create_app(settings, engine=engine, bus=bus)) as test_client:
        yield test_client


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def log_in(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Log in through the form; returns the session's CSRF token (from the home page)."""
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/").text)


@pytest.fixture(scope="module")
def web_browser() -> Iterator[Any]:
    """Debian's headless Chromium (no download), one per test module."""
    from playwright import sync_api

    require(Path(CHROMIUM).exists(), f"browser tests need Debian's chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required"]
        )
        yield chromium
        chromium.close()
