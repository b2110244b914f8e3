"""The outbound call queue: the job a SIP worker places, the Redis stream it waits in, and the
call's live state (`GET /calls/{id}` reads it).

    usecases/outbound.py ─▶ enqueue(OutboundJob) ─▶ stream QUEUE (or DELAYED until not_before)
    SIP worker (sip/outbound.py) ─▶ take_job only with free call slots ─▶ set_state ─▶ done_job

The queue is a Redis stream read through one consumer group: each job goes to exactly one
worker, and a worker reads only when it has the slots the job needs, so a worker at its 4-call
cap never takes one. A job carries everything the worker needs (who to ring, caller ID, the
whisper), so the worker reads nothing from the database for a click-to-call. Jobs expire: a
click-to-call nobody could place within `JOB_TTL_S` is dropped, not dialled minutes later.
A retry (a proactive call nobody answered) waits in a sorted set until it is due.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from redis.exceptions import ResponseError

QUEUE = "driveline:outbound"
GROUP = "driveline:sip-workers"
DELAYED = "driveline:outbound:delayed"  # sorted set: job JSON scored by when it is due
STATE_KEY = "driveline:outbound:state:"  # + call_uuid: the latest `call.outbound` progress
STATE_TTL_S = 86_400
JOB_TTL_S = 60.0
CALL_OUTBOUND = "call.outbound"  # progress event on the store's channel (SSE)
PICKUP_FLOW = "pickup_confirm"  # what a pickup job runs when the customer answers


class OutboundJob(BaseModel):
    """One call for a SIP worker to place (the queue's payload)."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["click_to_call", "pickup"]
    call_uuid: str
    call_id: int
    store_id: int
    destination: str  # E.164, already checked against the store's policy
    caller_id: str  # the store's DID: From and P-Asserted-Identity of the customer leg
    customer_id: int | None = None
    customer_name: str = ""
    advisor_id: int | None = None
    advisor_name: str = ""
    advisor_contact: str | None = None  # SIP URI or E.164: rung first (click-to-call)
    whisper: str = ""  # said to the advisor before the customer is dialled
    repair_order_id: int | None = None
    flow: str | None = None  # automated calls: the flow to run when the customer answers
    advisor_ring_s: float = 25.0
    customer_ring_s: float = 30.0
    attempt: int = 1
    retries: int = 0  # further attempts on no answer (proactive calls: 1)
    retry_after_s: float = 600.0
    expires_at: datetime
    # Not to be dialled before this (a pickup call made outside hours waits for the opening).
    not_before: datetime | None = None

    @property
    def slots(self) -> int:
        """Call slots the job takes on a worker: advisor + customer, or the customer alone."""
        return 2 if self.kind == "click_to_call" else 1


def _now() -> datetime:
    return datetime.now(UTC)


def enqueue(redis: Any, job: OutboundJob) -> None:
    """Hand the job to the SIP workers, or (`not_before`) to the delayed set they release it
    from when it is due, and record its first state (sync Redis client)."""
    pipe = redis.pipeline(transaction=False)
    if job.not_before is not None and job.not_before > _now():
        pipe.zadd(DELAYED, {job.model_dump_json(): job.not_before.timestamp()})
        state = {"state": "scheduled", "detail": f"not before {job.not_before.isoformat()}"}
    else:
        pipe.xadd(QUEUE, {"job": job.model_dump_json()}, maxlen=10_000, approximate=True)
        state = {"state": "queued", "detail": ""}
    wait_s = (job.not_before - _now()).total_seconds() if job.not_before else 0.0
    pipe.hset(STATE_KEY + job.call_uuid, mapping=state)
    pipe.expire(STATE_KEY + job.call_uuid, STATE_TTL_S + int(max(0.0, wait_s)))
    pipe.execute()


def read_state(redis: Any, call_uuid: str) -> dict[str, str] | None:
    raw = redis.hgetall(STATE_KEY + call_uuid)
    if not raw:
        return None
    return {_text(k): _text(v) for k, v in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def set_state(redis: Any, call_uuid: str, state: str, detail: str = "") -> None:
    """The worker's side (async Redis client)."""
    pipe = redis.pipeline(transaction=False)
    pipe.hset(STATE_KEY + call_uuid, mapping={"state": state, "detail": detail})
    pipe.expire(STATE_KEY + call_uuid, STATE_TTL_S)
    await pipe.execute()


async def ensure_group(redis: Any) -> None:
    try:
        await redis.xgroup_create(QUEUE, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def take_job(redis: Any, consumer: str, block_ms: int) -> tuple[str, OutboundJob] | None:
    """One job for this worker (it has checked its free slots), or None. A job that cannot be
    read is acked and dropped: it would block nobody, but nobody could place it either."""
    reply: Any = await redis.xreadgroup(GROUP, consumer, {QUEUE: ">"}, count=1, block=block_ms)
    if not reply:
        return None
    entries = reply[0][1] if isinstance(reply, list) else next(iter(reply.values()))[0]
    if not entries:
        return None
    entry_id, fields = entries[0]
    entry = _text(entry_id)
    try:
        job = OutboundJob.model_validate_json((fields or {}).get(b"job") or b"")
    except ValidationError:
        await redis.xack(QUEUE, GROUP, entry)
        return None
    return entry, job


async def done_job(redis: Any, entry: str) -> None:
    await redis.xack(QUEUE, GROUP, entry)


async def requeue(redis: Any, job: OutboundJob, *, delay_s: float = 0.0) -> None:
    """Put a job back: at once (this worker lost its free slot) or after `delay_s` (a retry)."""
    if delay_s <= 0:
        await redis.xadd(QUEUE, {"job": job.model_dump_json()}, maxlen=10_000, approximate=True)
        return
    due = _now().timestamp() + delay_s
    await redis.zadd(DELAYED, {job.model_dump_json(): due})


async def release_due(redis: Any) -> int:
    """Move retries that are due into the queue; ZREM decides which worker moves each one."""
    now = _now().timestamp()
    moved = 0
    for raw in await redis.zrangebyscore(DELAYED, "-inf", now, start=0, num=20):
        if await redis.zrem(DELAYED, raw):
            await redis.xadd(QUEUE, {"job": raw}, maxlen=10_000, approximate=True)
            moved += 1
    return moved
