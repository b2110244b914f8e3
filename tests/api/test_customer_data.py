"""`GET /customers/{id}/export` and `POST /customers/{id}/erase` over HTTP, by role: advisors
403, another store's customer 404, managers and admins get the zip (audio included) and the
erasure; the morning report then shows the last retention run."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from events.bus import EventBus
from ivr.config import Settings
from records.models import AuditLog, Recording, Store
from tests.api.conftest import NOW, SHARED_PHONE, Api, World
from tests.usecases.media import add_call
from usecases import retention


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "recordings"


@pytest.fixture
def api(
    db_url: str, engine: Engine, bus: EventBus, redis_url: str, world: World, root: Path
) -> Iterator[Api]:
    settings = Settings(database_url=db_url, redis_url=redis_url, recordings_dir=root)
    with TestClient(create_app(settings, engine=engine, bus=bus)) as client:
        yield Api(client, world)


@pytest.fixture
def call_id(world: World, sessions: sessionmaker[Session], root: Path) -> int:
    """Jo's (customer A) call 40 days ago, recorded and transcribed."""
    with sessions.begin() as session:
        call = add_call(session, root, store_id=world.stores["A"],
                        started_at=NOW - timedelta(days=40), customer_id=world.customers["A"],
                        from_number=SHARED_PHONE)  # fmt: skip
        return call.id


def _audio(sessions: sessionmaker[Session], root: Path, call_id: int) -> Path:
    with sessions() as session:
        return (
            root / session.scalars(select(Recording.path).where(Recording.call_id == call_id)).one()
        )


def test_the_export_is_a_zip_for_managers_and_admins(
    api: Api, sessions: sessionmaker[Session], root: Path, call_id: int
) -> None:
    jo = api.world.customers["A"]
    audio = _audio(sessions, root, call_id).read_bytes()
    assert api.as_("ann").get(f"/customers/{jo}/export").status_code == 403
    for outsider in ("bea", "bob"):
        refused = api.as_(outsider).get(f"/customers/{jo}/export")
        assert refused.status_code == 404 and "Jo" not in refused.text
    for who in ("mary", "root"):
        response = api.as_(who).get(f"/customers/{jo}/export")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/zip"
        assert f'filename="customer-{jo}.zip"' in response.headers["content-disposition"]
        archive = zipfile.ZipFile(io.BytesIO(response.content))
        doc = json.loads(archive.read("customer.json"))
        assert doc["customer"]["first_name"] == "Jo" and doc["exported_by"] == who
        (recording,) = doc["calls"][0]["recordings"]
        assert archive.read(recording["file"]) == audio
    with sessions() as session:
        actors = [r.actor_name for r in session.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert actors == ["Mary (mary)", "Root (root)"]  # the refusals left no row


def test_the_erasure_for_managers_and_admins_only(
    api: Api, sessions: sessionmaker[Session], root: Path, call_id: int
) -> None:
    jo = api.world.customers["A"]
    audio = _audio(sessions, root, call_id)
    assert api.as_("ann").post(f"/customers/{jo}/erase").status_code == 403
    assert api.as_("bea").post(f"/customers/{jo}/erase").status_code == 404
    assert audio.is_file() and api.as_("ann").get(f"/customers/{jo}").json()["first_name"] == "Jo"
    response = api.as_("mary").post(f"/customers/{jo}/erase")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["customer_id"] == jo and body["counts"]["recordings"] == 1
    assert not audio.exists()
    assert api.as_("ann").get(f"/customers/{jo}").json()["first_name"] == ""
    calls = api.as_("mary").get(f"/calls?store_id={api.world.stores['A']}").json()["items"]
    assert call_id in [c["id"] for c in calls]  # still in the call log
    found = api.as_("mary").get(f"/customers?phone={SHARED_PHONE}").json()["items"]
    assert found == []


def test_the_morning_report_shows_the_last_retention_run(
    api: Api, sessions: sessionmaker[Session], root: Path, call_id: int
) -> None:
    report = api.as_("mary").get("/reports/morning").json()
    assert report["retention"] is None
    with sessions() as session:
        store = session.get(Store, api.world.stores["A"])
        assert store is not None
        store.retention_days = 30
        session.commit()
        retention.apply_retention(session, recordings_dir=root, now=NOW)
    run = api.as_("mary").get("/reports/morning").json()["retention"]
    assert run["recordings"] == 1 and run["files_removed"] == 1 and run["retention_days"] == 30
    assert run["by"] == "retention job" and run["oldest_call"].startswith(
        (NOW - timedelta(days=40)).date().isoformat()
    )
