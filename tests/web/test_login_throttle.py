"""Login throttling (api/web/login_guard.py) against real Redis: backoff per user name and per
address, counts shared by API processes, the cap on concurrent argon2 hashes, failures logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.web.login_guard import FREE_PER_ADDRESS, FREE_PER_USER, HASH_WAIT, LoginGuard
from events.bus import EventBus
from ivr.config import Settings
from tests.api.conftest import World
from tests.web.conftest import PASSWORD, csrf_of


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app_for(
    db_url: str, engine: Engine, bus: EventBus, redis_url: str, world: World, clock: Clock
) -> Iterator[object]:
    """`app_for(address)`: a client at that address; each app is like another API process
    (its own guard and hash slots), all on the same database and Redis."""
    opened: list[TestClient] = []

    def make(address: str, **settings: object) -> TestClient:
        config = Settings(database_url=db_url, redis_url=redis_url, **settings)  # type: ignore[arg-type]
        app = create_app(config, engine=engine, bus=bus)
        app.state.login_guard.clock = clock
        client = TestClient(app, client=(address, 40000))
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def attempt(client: TestClient, username: str, password: str) -> tuple[int, str, str | None]:
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    return response.status_code, response.text, response.headers.get("retry-after")


def test_bad_logins_back_off_and_a_good_one_works_after(app_for, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    office = app_for("10.0.0.1")
    for _ in range(FREE_PER_USER):
        assert attempt(office, "ann", "wrong")[0] == 401
    code, text, retry = attempt(office, "ann", PASSWORD)  # even the right password waits
    assert (code, retry) == (429, "2") and "Too many failed logins" in text
    clock.now += 1
    assert attempt(office, "ann", PASSWORD)[0] == 429  # still shut: 1 s left
    home = app_for("10.0.0.9")
    assert attempt(home, "ann", PASSWORD)[0] == 429  # per user name, whatever the address
    assert attempt(home, "mary", PASSWORD)[0] == 303  # another user, another address: fine

    clock.now += 1.5
    assert attempt(office, "ann", "wrong again")[0] == 401  # the 6th failure: 4 s now
    assert attempt(office, "ann", PASSWORD)[2] == "4"
    clock.now += 4
    assert attempt(office, "ann", PASSWORD)[0] == 303  # after the backoff: in
    assert attempt(office, "ann", "typo")[0] == 401  # and the count started again


def test_counts_are_shared_by_api_processes(app_for) -> None:  # type: ignore[no-untyped-def]
    first, second = app_for("10.0.0.1"), app_for("10.0.0.1")
    for n in range(FREE_PER_USER):
        assert attempt(first if n % 2 else second, "bob", "wrong")[0] == 401
    assert attempt(second, "bob", PASSWORD)[0] == 429
    assert attempt(first, "bob", PASSWORD)[0] == 429


def test_one_address_guessing_many_names_backs_off(app_for) -> None:  # type: ignore[no-untyped-def]
    guesser = app_for("203.0.113.7")
    for n in range(FREE_PER_ADDRESS):
        assert attempt(guesser, f"user{n}", "password1")[0] == 401
    assert attempt(guesser, "ann", PASSWORD)[0] == 429  # that address, any name
    assert attempt(app_for("10.0.0.2"), "ann", PASSWORD)[0] == 303  # ann elsewhere: fine


def test_behind_a_trusted_proxy_each_client_counts_for_itself(  # type: ignore[no-untyped-def]
    app_for, caplog: pytest.LogCaptureFixture
) -> None:
    """The proxy (127.0.0.1 unless `forwarded_allow_ips` says otherwise) names the client:
    one guessing names behind it backs off, another behind it does not. From anyone else the
    header is ignored, so a guesser cannot spread its attempts over made-up addresses."""
    caplog.set_level(logging.WARNING, logger="api.web.login_guard")
    guesser = app_for("127.0.0.1")
    guesser.headers["X-Forwarded-For"] = "203.0.113.9"
    for n in range(FREE_PER_ADDRESS):
        assert attempt(guesser, f"user{n}", "password1")[0] == 401
    assert attempt(guesser, "ann", PASSWORD)[0] == 429
    neighbour = app_for("127.0.0.1")
    neighbour.headers["X-Forwarded-For"] = "198.51.100.4"
    assert attempt(neighbour, "ann", PASSWORD)[0] == 303
    assert "'user0' from 203.0.113.9" in caplog.text

    spoofer = app_for("192.0.2.50")
    spoofer.headers["X-Forwarded-For"] = "198.51.100.77"
    assert attempt(spoofer, "mary", "wrong")[0] == 401
    assert "'mary' from 192.0.2.50" in caplog.text
    nobody = app_for("127.0.0.1", forwarded_allow_ips=[])
    nobody.headers["X-Forwarded-For"] = "198.51.100.78"
    assert attempt(nobody, "mary", "wrong")[0] == 401
    assert "'mary' from 127.0.0.1" in caplog.text


def test_a_login_beyond_the_hash_cap_gets_503_not_a_queue(app_for) -> None:  # type: ignore[no-untyped-def]
    client = app_for("10.0.0.1", login_max_hashing=1)
    guard: LoginGuard = client.app.state.login_guard  # type: ignore[attr-defined]
    assert guard.slots.acquire(timeout=1)  # another login is hashing
    try:
        code, text, retry = attempt(client, "ann", PASSWORD)
    finally:
        guard.slots.release()
    assert (code, retry) == (503, "1") and "busy" in text
    assert attempt(client, "ann", PASSWORD)[0] == 303  # the slot is free again
    assert HASH_WAIT <= 2.0  # a waiting login holds its worker thread at most this long


def test_each_failure_is_logged_without_the_password(  # type: ignore[no-untyped-def]
    app_for, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="api.web.login_guard")
    assert attempt(app_for("192.0.2.44"), "ann", "hunter2-guess")[0] == 401
    failures = [r.getMessage() for r in caplog.records if "login failed" in r.getMessage()]
    assert failures == [
        "login failed for 'ann' from 192.0.2.44 (1 for the user, 1 from the address)"
    ]
    assert "hunter2-guess" not in caplog.text


def test_redis_down_skips_the_backoff_but_logins_work(  # type: ignore[no-untyped-def]
    db_url: str, engine: Engine, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens on port 1: the counts cannot be read or written, and a login is still
    checked (the hash cap does not need Redis)."""
    caplog.set_level(logging.WARNING, logger="api.web.login_guard")
    dead = EventBus("redis://127.0.0.1:1/0")
    settings = Settings(database_url=db_url, redis_url="redis://127.0.0.1:1/0")
    try:
        with TestClient(create_app(settings, engine=engine, bus=dead)) as client:
            assert attempt(client, "ann", "wrong")[0] == 401
            assert attempt(client, "ann", PASSWORD)[0] == 303
    finally:
        dead.close()
    assert "login backoff skipped, Redis unavailable" in caplog.text
    assert "login failed for 'ann' from testclient" in caplog.text
