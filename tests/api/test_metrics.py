"""`/metrics`: who may read it, and that its figures follow what is on Redis (heartbeats of
SIP workers, job streams), with a real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aioredis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from api.app import create_app
from events.bus import EventBus
from events.health import WORKER_INDEX, Heartbeat, WorkerStats
from events.transcription import GROUP as TRANSCRIBE_GROUP
from events.transcription import STREAM as TRANSCRIBE_STREAM
from ivr.config import Settings
from tests.api.conftest import World

SCRAPE_TOKEN = "scrape-me-0123456789"


@pytest.fixture
def client(
    db_url: str, engine: Engine, bus: EventBus, redis_url: str, world: World
) -> Iterator[TestClient]:
    keys = bus.redis.keys("driveline:workers*") + [TRANSCRIBE_STREAM]
    bus.redis.delete(*keys)
    settings = Settings(database_url=db_url, redis_url=redis_url, metrics_token=SCRAPE_TOKEN)
    with TestClient(create_app(settings, engine=engine, bus=bus)) as test_client:
        yield test_client


def scrape(client: TestClient, token: str = SCRAPE_TOKEN) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def beat(redis_url: str, worker_id: str, stats: WorkerStats, *, stop: bool = False) -> None:
    async def run() -> None:
        client = aioredis.Redis.from_url(redis_url)
        heartbeat = Heartbeat(client, worker_id, stats)
        if stop:
            await heartbeat.stop()
        else:
            await heartbeat.beat()
        await client.aclose()

    asyncio.run(run())


def test_who_may_read(client: TestClient, world: World) -> None:
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    advisor = client.get("/metrics", headers={"Authorization": f"Bearer {world.tokens['ann']}"})
    assert advisor.status_code == 403  # a store-scoped user: these figures span every store
    manager = client.get("/metrics", headers={"Authorization": f"Bearer {world.tokens['mary']}"})
    assert manager.status_code == 403
    assert scrape(client, world.tokens["root"])[("driveline_workers_up", ())] == 0
    assert scrape(client)[("driveline_calls_active", ())] == 0


def test_worker_heartbeats_move_the_figures(client: TestClient, redis_url: str) -> None:
    one, two = WorkerStats(), WorkerStats()
    for _ in range(3):
        one.call_started()
    one.call_finished()
    one.call_ended("completed")
    one.call_ended("abandoned")
    one.answer_latency.observe(0.03)
    one.prompt_latency.observe(0.05)
    one.prompt_latency.observe(2.0)
    one.recording_failed("disk_full")
    one.recording_failed("disk_full")
    one.events_buffered, one.events_held, one.events_dropped = 4, 30, 2  # a Redis outage
    two.call_started()
    beat(redis_url, "host:5061", one)
    beat(redis_url, "host:5062", two)

    figures = scrape(client)
    assert figures[("driveline_workers_up", ())] == 2
    assert figures[("driveline_calls_active", ())] == 3  # 2 + 1
    w1 = ("worker", "host:5061")
    assert figures[("driveline_worker_calls_active", (w1,))] == 2
    assert figures[("driveline_calls_by_disposition_total", (("disposition", "completed"), w1))]
    assert figures[("driveline_prompt_latency_seconds_count", (w1,))] == 2
    assert figures[("driveline_prompt_latency_seconds_bucket", (("le", "0.1"), w1))] == 1
    assert figures[("driveline_prompt_latency_seconds_bucket", (("le", "+Inf"), w1))] == 2
    assert figures[("driveline_prompt_latency_seconds_sum", (w1,))] == pytest.approx(2.05)
    assert figures[("driveline_answer_latency_seconds_count", (w1,))] == 1
    failed = "driveline_worker_recordings_failed_total"
    assert figures[(failed, (("reason", "disk_full"), w1))] == 2
    assert (failed, (("reason", "disk_full"), ("worker", "host:5062"))) not in figures
    assert figures[("driveline_worker_rss_bytes", (w1,))] > 10_000_000  # this process
    assert figures[("driveline_worker_heartbeat_age_seconds", (w1,))] < 5
    assert figures[("driveline_worker_events_buffered", (w1,))] == 4
    assert figures[("driveline_worker_events_held_total", (w1,))] == 30
    assert figures[("driveline_worker_events_dropped_total", (w1,))] == 2
    assert figures[("driveline_worker_events_dropped_total", (("worker", "host:5062"),))] == 0

    one.call_finished()
    beat(redis_url, "host:5061", one)
    beat(redis_url, "host:5062", two, stop=True)  # a clean exit removes its heartbeat
    figures = scrape(client)
    assert figures[("driveline_workers_up", ())] == 1
    assert figures[("driveline_calls_active", ())] == 1
    assert ("driveline_worker_calls_active", (("worker", "host:5062"),)) not in figures


def test_expired_heartbeat_is_gone(client: TestClient, redis_url: str) -> None:
    beat(redis_url, "host:5063", WorkerStats())
    raw = redis.Redis.from_url(redis_url)
    raw.delete("driveline:workers:host:5063")  # what the TTL does to a killed worker
    assert scrape(client)[("driveline_workers_up", ())] == 0
    assert raw.zscore(WORKER_INDEX, "host:5063") is None  # pruned from the index too


def test_transcription_queue_depth_and_lag(client: TestClient, redis_url: str) -> None:
    raw = redis.Redis.from_url(redis_url)
    queue = (("queue", "transcription"),)
    figures = scrape(client)
    assert figures[("driveline_queue_length", queue)] == 0
    assert figures[("driveline_queue_lag_seconds", queue)] == 0

    ten_s_ago = int(time.time() * 1000) - 10_000
    for n in range(3):
        raw.xadd(TRANSCRIBE_STREAM, {"job": "{}"}, id=f"{ten_s_ago + n}-0")
    figures = scrape(client)  # no consumer group yet: all three wait
    assert figures[("driveline_queue_length", queue)] == 3
    assert figures[("driveline_queue_waiting", queue)] == 3
    assert figures[("driveline_queue_lag_seconds", queue)] >= 10

    raw.xgroup_create(TRANSCRIBE_STREAM, TRANSCRIBE_GROUP, id="0")
    delivered = raw.xreadgroup(TRANSCRIBE_GROUP, "w1", {TRANSCRIBE_STREAM: ">"}, count=2)
    figures = scrape(client)
    assert figures[("driveline_queue_pending", queue)] == 2
    assert figures[("driveline_queue_waiting", queue)] == 1
    assert figures[("driveline_queue_consumers", queue)] == 1
    assert figures[("driveline_queue_lag_seconds", queue)] >= 10

    raw.xack(TRANSCRIBE_STREAM, TRANSCRIBE_GROUP, *(i for i, _ in delivered[0][1]))
    raw.xreadgroup(TRANSCRIBE_GROUP, "w1", {TRANSCRIBE_STREAM: ">"}, count=1)
    raw.xack(TRANSCRIBE_STREAM, TRANSCRIBE_GROUP, f"{ten_s_ago + 2}-0")
    figures = scrape(client)
    assert figures[("driveline_queue_pending", queue)] == 0
    assert figures[("driveline_queue_waiting", queue)] == 0
    assert figures[("driveline_queue_lag_seconds", queue)] == 0
    assert figures[("driveline_queue_length", queue)] == 3  # done entries stay until trimmed


def test_redis_down_is_a_503(db_url: str, engine: Engine, world: World) -> None:
    settings = Settings(database_url=db_url, metrics_token=SCRAPE_TOKEN)
    app = create_app(settings, engine=engine, bus=EventBus("redis://127.0.0.1:1/0"))
    with TestClient(app) as test_client:
        response = test_client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
        assert response.status_code == 503
