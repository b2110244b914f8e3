"""Worker heartbeats and queue figures on Redis: what `/metrics` on the API reports.

SIP workers are separate processes (one per 4 calls, dozens per store group, on several hosts),
so the API cannot read their counters from memory, and prometheus-client's multiprocess mode
(one file per process in a shared directory) only works for processes on one host sharing a
disk, and keeps the files of dead processes around. Instead each worker keeps its own figures
in a `WorkerStats` and writes a snapshot to Redis every few seconds (`Heartbeat`): a key per
worker with a TTL, so a dead worker disappears by itself, plus an index of worker ids. The API
reads every live snapshot and the job streams' lengths and pending counts (`queue_figures`),
which are already on Redis, and renders them (api/metrics.py). Counters are per worker: a
restarted worker starts from zero again, which Prometheus's `rate()` handles as a reset.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger(__name__)

WORKER_KEY = "driveline:workers:{worker_id}"
WORKER_INDEX = "driveline:workers"  # sorted set: worker id → last heartbeat (epoch s)
HEARTBEAT_S = 5.0
HEARTBEAT_TTL_S = 15  # three missed beats: the worker is gone
# Seconds; fine at the low end, where the targets are (100 ms, 400 ms).
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)


@dataclass
class Histogram:
    """Cumulative-at-render bucket counts, like a Prometheus histogram, but plain data."""

    buckets: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        index = next((i for i, b in enumerate(self.buckets) if seconds <= b), len(self.buckets))
        self.counts[index] += 1
        self.total += seconds

    @property
    def count(self) -> int:
        return sum(self.counts)


@dataclass
class WorkerStats:
    """One worker process's figures since it started (updated on the event loop only)."""

    calls_active: int = 0
    calls_started: int = 0
    dispositions: Counter[str] = field(default_factory=Counter)
    # Recordings due but not made, by reason: disk_full, recorder_failed, cut_short (sip/channel)
    recordings_failed: Counter[str] = field(default_factory=Counter)
    answer_latency: Histogram = field(default_factory=Histogram)  # INVITE → 200 OK
    prompt_latency: Histogram = field(default_factory=Histogram)  # 200 OK → first prompt audio
    # The event bus while Redis is away (events/bus.py): waiting now, sent late, lost.
    events_buffered: int = 0
    events_held: int = 0
    events_dropped: int = 0
    started_at: float = field(default_factory=time.time)

    def call_started(self) -> None:
        self.calls_started += 1
        self.calls_active += 1

    def call_finished(self) -> None:
        self.calls_active = max(0, self.calls_active - 1)

    def call_ended(self, disposition: str) -> None:
        self.dispositions[disposition] += 1

    def recording_failed(self, reason: str) -> None:
        self.recordings_failed[reason] += 1

    def snapshot(self, worker_id: str) -> dict[str, Any]:
        cpu = os.times()
        return {
            "worker": worker_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "at": time.time(),
            "started_at": self.started_at,
            "calls_active": self.calls_active,
            "calls_started": self.calls_started,
            "dispositions": dict(self.dispositions),
            "recordings_failed": dict(self.recordings_failed),
            "answer_latency": asdict(self.answer_latency),
            "prompt_latency": asdict(self.prompt_latency),
            "events_buffered": self.events_buffered,
            "events_held": self.events_held,
            "events_dropped": self.events_dropped,
            "cpu_seconds": cpu.user + cpu.system,
            "rss_bytes": rss_bytes(),
        }


# The figures of this process's worker, like prometheus-client's default registry: the SIP
# worker and the call lifecycle both update it without being wired to each other.
WORKER_STATS = WorkerStats()


def rss_bytes(pid: int | str = "self") -> int:
    """Resident memory of a process (Linux /proc; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class Heartbeat:
    """Writes `stats` to Redis every `interval` seconds until stopped; Redis trouble is logged,
    never raised (a worker keeps answering calls without its metrics)."""

    def __init__(
        self,
        redis: Any,  # redis.asyncio.Redis
        worker_id: str,
        stats: WorkerStats = WORKER_STATS,
        *,
        interval: float = HEARTBEAT_S,
        ttl: int = HEARTBEAT_TTL_S,
    ) -> None:
        self.redis, self.worker_id, self.stats = redis, worker_id, stats
        self.interval, self.ttl = interval, ttl
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def beat(self) -> None:
        snapshot = self.stats.snapshot(self.worker_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(WORKER_KEY.format(worker_id=self.worker_id), json.dumps(snapshot), ex=self.ttl)
        pipe.zadd(WORKER_INDEX, {self.worker_id: snapshot["at"]})
        await pipe.execute()

    async def _run(self) -> None:
        while True:
            try:
                await self.beat()
            except Exception as exc:  # noqa: BLE001 - metrics must never stop calls
                log.warning("heartbeat failed: %s", exc)
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        """Stop beating and remove our key: a worker that exits cleanly is gone at once."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.delete(WORKER_KEY.format(worker_id=self.worker_id))
            pipe.zrem(WORKER_INDEX, self.worker_id)
            await pipe.execute()
        except Exception as exc:  # noqa: BLE001
            log.warning("could not remove the heartbeat: %s", exc)


def live_workers(redis: Any) -> list[dict[str, Any]]:
    """Snapshots of every worker whose heartbeat has not expired (sync client, for the API).
    Ids whose key expired are dropped from the index on the way."""
    ids = [i.decode() if isinstance(i, bytes) else i for i in redis.zrange(WORKER_INDEX, 0, -1)]
    if not ids:
        return []
    raw = redis.mget([WORKER_KEY.format(worker_id=i) for i in ids])
    gone = [i for i, value in zip(ids, raw, strict=True) if value is None]
    if gone:
        redis.zrem(WORKER_INDEX, *gone)
    return [json.loads(value) for value in raw if value is not None]


@dataclass(frozen=True)
class QueueFigures:
    """One Redis Stream job queue as its consumer group sees it."""

    name: str
    length: int  # entries in the stream (acked ones too, until trimmed)
    pending: int  # delivered to a consumer, not acked yet
    waiting: int  # not delivered to any consumer yet (the group's lag)
    oldest_age_s: float  # age of the oldest entry not acked yet (0 when all are done)
    consumers: int


def _id_time(entry_id: bytes | str) -> float:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0]) / 1000


def _get(info: dict[Any, Any], name: str) -> Any:
    return info.get(name, info.get(name.encode()))


def queue_figures(redis: Any, name: str, stream: str, group: str) -> QueueFigures:
    """Length, pending, waiting and age of the oldest unfinished job of one stream. A stream
    or group that does not exist yet is an empty queue."""
    length = int(redis.xlen(stream))
    groups = redis.xinfo_groups(stream) if length or redis.exists(stream) else []
    info = next((g for g in groups if _get(g, "name") in (group, group.encode())), None)
    if info is None:
        # Nobody consumes it yet: every entry waits.
        oldest = redis.xrange(stream, count=1) if length else []
        age = time.time() - _id_time(oldest[0][0]) if oldest else 0.0
        return QueueFigures(name, length, 0, length, max(0.0, age), 0)
    pending = int(_get(info, "pending") or 0)
    waiting = _get(info, "lag")
    last = _get(info, "last-delivered-id")
    if waiting is None:  # an entry was deleted: Redis cannot tell; count after last delivered
        waiting = len(redis.xrange(stream, min=f"({_text(last)}", count=10_000))
    oldest_at: float | None = None
    if pending:
        summary = redis.xpending(stream, group)
        oldest_at = _id_time(summary["min"])
    elif int(waiting):
        after = redis.xrange(stream, min=f"({_text(last)}", count=1)
        oldest_at = _id_time(after[0][0]) if after else None
    age = max(0.0, time.time() - oldest_at) if oldest_at is not None else 0.0
    consumers = int(_get(info, "consumers") or 0)
    return QueueFigures(name, length, pending, int(waiting), age, consumers)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
