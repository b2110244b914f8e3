"""`GET /metrics`: Prometheus figures for the whole deployment, read from Redis at scrape time.

The API process does not carry calls: SIP workers do, in other processes and hosts. So this
route does not expose the API's own in-memory counters; it renders the workers' heartbeats
(events/health.py: calls active, calls by disposition, recordings failed, INVITE → 200 OK and
answer → first prompt latency histograms, CPU and memory, heartbeat age) and the job streams'
state (call writer and transcription queues: length, pending, waiting, age of the oldest
unfinished job, which for the transcription queue is the transcription lag). Any API replica
answers the same.

Authenticated like every route: a bearer token that is either `metrics_token` (give that one
to Prometheus: it can read nothing else) or an admin's API token. Figures span every store, so
no store-scoped user may read them.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from api.auth import authenticate
from api.deps import SessionDep, get_bus, get_settings_dep
from events.bus import STREAM as EVENT_STREAM
from events.health import QueueFigures, live_workers, queue_figures
from events.transcription import GROUP as TRANSCRIBE_GROUP
from events.transcription import STREAM as TRANSCRIBE_STREAM
from ivr.domain import Role
from records.call_writer import GROUP as CALL_WRITER_GROUP

log = logging.getLogger(__name__)

router = APIRouter(tags=["metrics"])

# (queue label, stream, consumer group)
QUEUES = (
    ("call_writer", EVENT_STREAM, CALL_WRITER_GROUP),
    ("transcription", TRANSCRIBE_STREAM, TRANSCRIBE_GROUP),
)

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <token>`")


def _histogram(family: HistogramMetricFamily, worker: str, data: dict[str, Any] | None) -> None:
    if not data:
        return
    buckets, counts = data["buckets"], data["counts"]
    running, cumulative = 0, []
    for bound, count in zip([*buckets, float("inf")], counts, strict=True):
        running += count
        cumulative.append(("+Inf" if bound == float("inf") else str(bound), running))
    family.add_metric([worker], cumulative, data["total"])


class DeploymentCollector(Collector):
    """Builds every family afresh at each scrape from what Redis holds now."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    def collect(self) -> Iterator[Metric]:
        workers = live_workers(self.redis)
        yield GaugeMetricFamily(
            "driveline_workers_up", "SIP workers with a live heartbeat.", value=len(workers)
        )
        yield GaugeMetricFamily(
            "driveline_calls_active",
            "Calls in progress over every live SIP worker.",
            value=sum(w["calls_active"] for w in workers),
        )
        per_worker = GaugeMetricFamily(
            "driveline_worker_calls_active", "Calls in progress per worker.", labels=["worker"]
        )
        age = GaugeMetricFamily(
            "driveline_worker_heartbeat_age_seconds",
            "Seconds since the worker's last heartbeat (it expires after 15 s).",
            labels=["worker"],
        )
        rss = GaugeMetricFamily(
            "driveline_worker_rss_bytes", "Resident memory per worker.", labels=["worker"]
        )
        cpu = CounterMetricFamily(
            "driveline_worker_cpu_seconds", "CPU time used per worker.", labels=["worker"]
        )
        started = CounterMetricFamily(
            "driveline_worker_calls", "Calls offered to each worker.", labels=["worker"]
        )
        dispositions = CounterMetricFamily(
            "driveline_calls_by_disposition",
            "Ended calls by disposition, per worker since it started.",
            labels=["worker", "disposition"],
        )
        recordings_failed = CounterMetricFamily(
            "driveline_worker_recordings_failed",
            "Recordings due but not made (disk_full, recorder_failed) or cut short by a full "
            "disk (cut_short), per worker since it started; the calls went on.",
            labels=["worker", "reason"],
        )
        answer = HistogramMetricFamily(
            "driveline_answer_latency_seconds", "INVITE received → 200 OK sent.", labels=["worker"]
        )
        prompt = HistogramMetricFamily(
            "driveline_prompt_latency_seconds",
            "200 OK sent → first prompt audio started.",
            labels=["worker"],
        )
        buffered = GaugeMetricFamily(
            "driveline_worker_events_buffered",
            "Events a worker holds because Redis did not take them (sent once it answers).",
            labels=["worker"],
        )
        held = CounterMetricFamily(
            "driveline_worker_events_held",
            "Events a worker sent late, after holding them through a Redis outage.",
            labels=["worker"],
        )
        dropped = CounterMetricFamily(
            "driveline_worker_events_dropped",
            "Events a worker dropped: its buffer was full during a Redis outage (lost).",
            labels=["worker"],
        )
        for w in workers:
            worker = str(w["worker"])
            buffered.add_metric([worker], w.get("events_buffered", 0))
            held.add_metric([worker], w.get("events_held", 0))
            dropped.add_metric([worker], w.get("events_dropped", 0))
            per_worker.add_metric([worker], w["calls_active"])
            age.add_metric([worker], max(0.0, time.time() - w["at"]))
            rss.add_metric([worker], w.get("rss_bytes", 0))
            cpu.add_metric([worker], w.get("cpu_seconds", 0.0))
            started.add_metric([worker], w.get("calls_started", 0))
            for disposition, count in sorted(w.get("dispositions", {}).items()):
                dispositions.add_metric([worker, disposition], count)
            for reason, count in sorted(w.get("recordings_failed", {}).items()):
                recordings_failed.add_metric([worker, reason], count)
            _histogram(answer, worker, w.get("answer_latency"))
            _histogram(prompt, worker, w.get("prompt_latency"))
        yield from (per_worker, age, rss, cpu, started, dispositions, recordings_failed)
        yield from (answer, prompt, buffered, held, dropped)
        yield from _queue_families([queue_figures(self.redis, *q) for q in QUEUES])


def _queue_families(queues: list[QueueFigures]) -> Iterator[Metric]:
    specs = (
        ("driveline_queue_length", "Entries in the job stream.", "length"),
        ("driveline_queue_pending", "Jobs delivered to a consumer, not done yet.", "pending"),
        ("driveline_queue_waiting", "Jobs no consumer has taken yet.", "waiting"),
        (
            "driveline_queue_lag_seconds",
            "Age of the oldest unfinished job (transcription: how far behind transcripts are).",
            "oldest_age_s",
        ),
        ("driveline_queue_consumers", "Consumers in the queue's group.", "consumers"),
    )
    for name, help_text, attribute in specs:
        family = GaugeMetricFamily(name, help_text, labels=["queue"])
        for queue in queues:
            family.add_metric([queue.name], getattr(queue, attribute))
        yield family


def require_metrics_reader(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """The scrape token, or an admin's API token."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    secret = credentials.credentials
    expected = get_settings_dep(request).metrics_token
    if expected is not None and hmac.compare_digest(
        secret.encode(), expected.get_secret_value().encode()
    ):
        return
    user = authenticate(session, secret)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="unknown or revoked token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if user.role != Role.admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="admins or the metrics token only")


@router.get(
    "/metrics",
    response_class=Response,
    dependencies=[Depends(require_metrics_reader)],
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
)
def metrics(request: Request) -> Response:
    """Calls, latencies, worker health and job queues, in Prometheus's text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DeploymentCollector(get_bus(request).redis))
    try:
        body = generate_latest(registry)
    except Exception as exc:  # noqa: BLE001 - Redis down: say so instead of a 500
        log.warning("metrics unavailable: %s", exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail="redis unavailable"
        ) from None
    return Response(body, media_type=CONTENT_TYPE_LATEST)
