"""`driveline db upgrade` says which database it migrated without printing its password; a
consumer's start-up migration waits for a database that is down."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from click.testing import CliRunner

from driveline.cli import main
from records.db import make_engine, upgrade_when_reachable


@pytest.mark.usefixtures("fresh_settings")
def test_db_upgrade_masks_the_password(pg_schema_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Trust authentication ignores the password, so the URL still reaches the database.
    url = pg_schema_url.replace("://postgres@", "://postgres:hunter2-secret@", 1)
    assert "hunter2-secret" in url
    monkeypatch.setenv("DRIVELINE_DATABASE_URL", url)
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "database at head: postgresql://postgres:***@127.0.0.1" in result.output
    assert "hunter2-secret" not in result.output


def test_the_call_writer_waits_for_an_unreachable_database_instead_of_exiting() -> None:
    """`driveline call-writer` started during an outage retries the migration (no crash loop)
    until the database answers, or until it is told to stop."""
    nobody = socket.create_server(("127.0.0.1", 0))
    port = nobody.getsockname()[1]
    nobody.close()  # connections to it are refused
    engine = make_engine(f"postgresql://postgres@127.0.0.1:{port}/test")
    stop = threading.Event()
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    started = time.monotonic()
    try:
        assert upgrade_when_reachable(engine, stop, every_s=0.1) is False
        assert 0.4 < time.monotonic() - started < 3
    finally:
        timer.cancel()
        engine.dispose()
