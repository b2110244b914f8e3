"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# Full-text search objects are dialect-specific and live in migration 0002 only (an FTS5 table and
# its shadow tables on SQLite, a GIN expression index on PostgreSQL), not in the models.
SEARCH_OBJECTS = "transcript_segments_fts"


def in_models(name: str | None, _type: str, _parents: dict[str, str | None]) -> bool:
    """Alembic `include_name` filter: schema comparison skips the migration-only search objects."""
    return not (name or "").startswith(SEARCH_OBJECTS)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the API read while a writer writes; foreign keys are off by default in SQLite.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


# How long a PostgreSQL connection attempt may take (libpq's `connect_timeout`, whole seconds,
# at least 2); its default is to wait for as long as TCP does, minutes on a host that is gone.
CONNECT_TIMEOUT_S = 5


def make_engine(url: str, *, connect_timeout: int = CONNECT_TIMEOUT_S, **kwargs: Any) -> Engine:
    """An engine for `url`. `connect_timeout` bounds each PostgreSQL connection attempt, so a
    process whose database is unreachable gets an error to retry on, not a thread stuck for
    minutes (SQLite is a local file: no connection to wait for)."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"check_same_thread": False})
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs["connect_args"] = {
        "connect_timeout": max(2, connect_timeout),
        **kwargs.get("connect_args", {}),
    }
    return create_engine(parsed, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Bring the schema to `revision`; `driveline serve` and the CLI call this at start."""
    command.upgrade(alembic_config(engine), revision)


def upgrade_when_reachable(engine: Engine, stop: threading.Event, every_s: float = 2.0) -> bool:
    """`upgrade`, retried while the database cannot be reached: a long-running consumer (the
    call writer) started during an outage waits for it instead of exiting, only to be
    restarted into the same error. False when `stop` was set first."""
    while not stop.is_set():
        try:
            upgrade(engine)
            return True
        except OperationalError as exc:
            log.warning("database unreachable (%s); retrying in %.0fs", exc.orig, every_s)
            stop.wait(every_s)
    return False
