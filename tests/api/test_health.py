"""Health reports each dependency; Redis being down never fails or undoes a write."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from events.bus import EventBus
from ivr.config import Settings
from tests.api.conftest import World

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def test_redis_down(db_url: str, engine: Engine, world: World) -> None:
    app = create_app(Settings(database_url=db_url), engine=engine, bus=EventBus(DEAD_REDIS))
    headers = {"Authorization": f"Bearer {world.tokens['ann']}"}
    with TestClient(app) as client:
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["database"] == "ok" and health.json()["redis"].startswith("error")

        note = client.post(
            f"/api/v1/customers/{world.customers['A']}/notes",
            headers=headers,
            json={"body": "written even though nobody hears about it"},
        )
        assert note.status_code == 201
        thread = client.get(f"/api/v1/customers/{world.customers['A']}/thread", headers=headers)
        assert thread.json()["items"][0]["id"] == note.json()["id"]
