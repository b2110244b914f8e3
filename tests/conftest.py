"""Shared fixtures: a migrated database on SQLite and on PostgreSQL, and Redis.

Data-layer and API tests take `db_url` / `engine` / `sessions` and so run once per database.
PostgreSQL is 127.0.0.1:5432 (trust auth, database `test`); each test session works in its own
schema, dropped at the end. Under CI a missing PostgreSQL or Redis fails the run instead of
skipping, so a green CI always means both databases were exercised.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from records.db import make_engine, session_factory, upgrade
from records.models import Base
from tests.needs import require
from tests.redis_server import private_redis  # noqa: F401 - a fixture, for every test

PG_BASE = os.environ.get("DRIVELINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
# Tests keep to their own Redis database (the event stream lives per database), so a demo on
# database 0 never replays events that tests published, and each test session starts empty.
# Test processes run side by side (pytest-xdist, `-n` in pyproject): each has a database of its
# own, counting down from the first one's (15 unless DRIVELINE_TEST_REDIS says otherwise: two
# processes use 15 and 14). Tests that start a whole server flush their process's database.


def _worker_redis_url(first: str) -> str:
    base, _, number = first.rpartition("/")
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    return f"{base}/{int(number) - worker}"


REDIS_URL = _worker_redis_url(os.environ.get("DRIVELINE_TEST_REDIS", "redis://127.0.0.1:6379/15"))


def _unavailable(what: str, exc: Exception) -> None:
    require(False, f"{what} is not reachable: {exc}")


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        client.flushdb()
    except redis.RedisError as exc:
        _unavailable("Redis", exc)
    return REDIS_URL


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    """A fresh, migrated schema in the `test` database for this test session."""
    schema = f"dl_test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_BASE)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - any connection error means "not reachable"
        admin.dispose()
        _unavailable("PostgreSQL", exc)
    url = f"{PG_BASE}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _truncate_pg(engine: Engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated database; the test runs once on each kind."""
    if request.param == "sqlite":
        path = tmp_path / "driveline.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_schema_url")
        engine = make_engine(url)
        _truncate_pg(engine)
        engine.dispose()
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)
