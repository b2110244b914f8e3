"""The morning summary webhook against a real HTTP server on 127.0.0.1: what it posts, once
per store per day (Redis), from the morning hour in each store's own zone, retried after a
failed post; and `driveline morning-summary` printing it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from driveline.cli import main
from ivr.config import Settings
from records.models import Store
from records.morning_summary import SENT_KEY, MorningSummaryPart, send_due
from tests.records.morning_seed import NOW, seed_week


class Hook:
    """What the webhook received, and the status it answers with next."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                length = int(self.headers["Content-Length"])
                assert self.headers["Content-Type"] == "application/json"
                hook.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def by_store(self) -> dict[int, dict[str, Any]]:
        return {b["store"]["id"]: b for b in self.bodies}


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def stores(sessions: sessionmaker[Session]) -> dict[str, int]:
    """Chicago (the seeded week) and New York (one hour ahead, no rows)."""
    with sessions.begin() as session:
        chicago = Store(dms_id="M-1", name="Morning Motors")
        new_york = Store(dms_id="M-2", name="Other Motors", timezone="America/New_York")
        session.add_all([chicago, new_york])
        session.flush()
        ids = seed_week(session, store=chicago, other=new_york)
        ids.update(chicago=chicago.id, new_york=new_york.id)
    return ids


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    r = redis.Redis.from_url(redis_url)
    for key in r.scan_iter("driveline:morning:sent:*"):
        r.delete(key)
    yield r
    r.close()


def test_each_store_gets_yesterday_once_per_day(
    engine: Engine, stores: dict[str, int], hook: Hook, client: redis.Redis
) -> None:
    # 07:00 in Chicago, 08:00 in New York: both due; yesterday is Sunday 22 for both.
    sent = send_due(engine, client, url=hook.url, hour=7, now=NOW)
    assert [(s.store_id, str(s.day), s.status) for s in sent] == [
        (stores["chicago"], "2026-11-22", "sent"),
        (stores["new_york"], "2026-11-22", "sent"),
    ]
    chicago = hook.by_store()[stores["chicago"]]
    assert chicago["type"] == "driveline.morning_summary"
    assert (chicago["from"], chicago["to"]) == ("2026-11-22", "2026-11-22")
    service = chicago["departments"][0]
    assert service["kind"] == "service"
    assert service["figures"]["missed"] == {"count": 1, "ids": [stores["c7"]], "of": "call"}
    assert chicago["total"]["figures"]["callbacks_created"]["ids"] == [stores["k3"]]
    # New York's store only has the decoys, all outside Sunday: c30 and k10 are on the 18th.
    new_york = hook.by_store()[stores["new_york"]]
    assert new_york["total"]["figures"]["calls_in"]["count"] == 0

    again = send_due(engine, client, url=hook.url, hour=7, now=NOW + timedelta(hours=3))
    assert [s.status for s in again] == ["already sent", "already sent"]
    assert len(hook.bodies) == 2
    assert client.exists(SENT_KEY.format(store_id=stores["chicago"], day="2026-11-22"))

    next_day = send_due(engine, client, url=hook.url, hour=7, now=NOW + timedelta(days=1))
    assert [(str(s.day), s.status) for s in next_day] == [("2026-11-23", "sent")] * 2
    assert len(hook.bodies) == 4


def test_the_hour_is_each_stores_own(
    engine: Engine, stores: dict[str, int], hook: Hook, client: redis.Redis
) -> None:
    """At 12:00 UTC it is 07:00 in New York but 06:00 in Chicago: only New York is due."""
    sent = send_due(engine, client, url=hook.url, hour=7, now=NOW - timedelta(hours=1))
    assert [(s.store_id, s.status) for s in sent] == [(stores["new_york"], "sent")]
    assert list(hook.by_store()) == [stores["new_york"]]


def test_a_failed_post_is_retried_on_the_next_tick(
    engine: Engine, stores: dict[str, int], hook: Hook, client: redis.Redis
) -> None:
    hook.status = 500
    sent = send_due(engine, client, url=hook.url, hour=7, now=NOW, store_ids={stores["chicago"]})
    assert len(sent) == 1 and sent[0].status.startswith("failed: Server error '500")
    hook.status = 204
    sent = send_due(engine, client, url=hook.url, hour=7, now=NOW, store_ids={stores["chicago"]})
    assert [s.status for s in sent] == ["sent"]
    assert len(hook.bodies) == 2  # the failed one and the retry


@pytest.mark.usefixtures("fresh_settings")
def test_the_command_prints_the_summary(
    db_url: str, redis_url: str, stores: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIVELINE_DATABASE_URL", db_url)
    monkeypatch.setenv("DRIVELINE_REDIS_URL", redis_url)
    args = ["morning-summary", "--date", "2026-11-20", "--store", str(stores["chicago"])]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    (body,) = json.loads(result.output)
    service, sales = body["departments"]
    # Friday 20: c5 (voicemail) in service, c23 (avoidable status check) in sales.
    assert service["figures"]["voicemails"]["ids"] == [stores["c5"]]
    assert sales["figures"]["avoidable"]["ids"] == [stores["c23"]]
    result = CliRunner().invoke(main, ["morning-summary", "--send"])
    assert result.exit_code != 0 and "set morning_webhook_url" in result.output


def test_serve_part_sends_and_stops(
    engine: Engine,
    db_url: str,
    redis_url: str,
    stores: dict[str, int],
    hook: Hook,
    client: redis.Redis,
) -> None:
    """`driveline serve`'s part: a thread that sends what is due (hour 0: always) and stops."""
    settings = Settings(
        database_url=db_url, redis_url=redis_url, morning_webhook_url=hook.url, morning_hour=0
    )
    part = MorningSummaryPart(engine, settings, tick_s=0.05)
    part.start()
    try:
        deadline = time.monotonic() + 20
        while len(hook.bodies) < 2:
            assert part.alive() and time.monotonic() < deadline, hook.bodies
            time.sleep(0.05)
    finally:
        part.stop()
    assert not part.alive()
    assert sorted(hook.by_store()) == sorted([stores["chicago"], stores["new_york"]])
    assert len(hook.bodies) == 2  # later ticks found both already sent
