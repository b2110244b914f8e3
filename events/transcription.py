"""The transcription job queue: the job a call that ended with recordings gets, and the Redis
stream it waits in (the call writer enqueues, `driveline transcribe` workers consume:
transcription/jobs.py). The IVR's lines are kept per call until its job is made, so the
transcript can show what the caller heard.

Enqueueing is one Lua script that sets a per-call marker and XADDs in one step, so an event
applied twice (redelivery) enqueues once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime

import redis
from pydantic import BaseModel, ConfigDict, Field

from events.calls import CallEnded, LegRole

log = logging.getLogger(__name__)

STREAM = "driveline:jobs:transcribe"
GROUP = "driveline:transcribers"
DEAD_LETTER_STREAM = "driveline:jobs:transcribe:dead"
QUEUED_KEY = "driveline:jobs:transcribe:queued:{call_uuid}"  # one job per call
PROMPTS_KEY = "driveline:jobs:transcribe:prompts:{call_uuid}"  # the IVR's lines, by event id
QUEUED_TTL_S = 30 * 86400
PROMPTS_TTL_S = 2 * 86400
STREAM_MAXLEN = 100_000

# Set the marker and add the job atomically: either both happen or neither.
_ENQUEUE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'job', ARGV[1])
end
return false
"""


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class JobRecording(_Model):
    role: LegRole
    kind: str = "leg"  # leg / voicemail
    path: str  # relative to Settings.recordings_dir
    duration_s: float
    offset_s: float = Field(ge=0)  # when the recording started, seconds from the call start


class JobPrompt(_Model):
    offset_s: float
    text: str


class TranscribeJob(_Model):
    """Everything the worker needs besides the audio files and the store's vocabulary."""

    call_uuid: str
    store_id: int
    started_at: datetime
    recordings: list[JobRecording]
    prompts: list[JobPrompt] = Field(default_factory=list)

    @property
    def audio_s(self) -> float:
        return sum(r.duration_s for r in self.recordings)


def job_for(ended: CallEnded, prompts: Sequence[tuple[datetime, str]] = ()) -> TranscribeJob:
    """The job for an ended call. A recording without a start time (an older worker) is taken
    to have run until the hangup, which leg and voicemail recordings do."""
    length = ended.duration_s
    recordings = []
    for r in ended.recordings:
        if r.started_at is not None:
            offset = (r.started_at - ended.started_at).total_seconds()
        else:
            offset = length - r.duration_s
        recordings.append(
            JobRecording(
                role=r.leg_role,
                kind=r.kind,
                path=r.path,
                duration_s=r.duration_s,
                offset_s=round(max(0.0, offset), 3),
            )
        )
    return TranscribeJob(
        call_uuid=ended.call_uuid,
        store_id=ended.store_id,
        started_at=ended.started_at,
        recordings=recordings,
        prompts=[
            JobPrompt(offset_s=round(max(0.0, (at - ended.started_at).total_seconds()), 3), text=t)
            for at, t in sorted(prompts)
        ],
    )


def remember_prompt(
    client: redis.Redis, call_uuid: str, event_id: str, at: datetime, text: str
) -> None:
    """Keep an IVR line (from `call.step`) until the call's job is made; keyed by event id so a
    redelivered step is kept once."""
    key = PROMPTS_KEY.format(call_uuid=call_uuid)
    pipe = client.pipeline(transaction=True)
    pipe.hset(key, event_id, json.dumps({"at": at.isoformat(), "text": text}))
    pipe.expire(key, PROMPTS_TTL_S)
    pipe.execute()


def remembered_prompts(client: redis.Redis, call_uuid: str) -> list[tuple[datetime, str]]:
    raw: dict[bytes, bytes] = client.hgetall(PROMPTS_KEY.format(call_uuid=call_uuid))  # type: ignore[assignment]
    lines = [json.loads(v) for v in raw.values()]
    return sorted((datetime.fromisoformat(x["at"]), x["text"]) for x in lines)


def enqueue(
    client: redis.Redis, job: TranscribeJob, *, stream: str = STREAM, force: bool = False
) -> bytes | None:
    """Add the call's job unless it was added before (`force`: again, e.g. a new model).
    Returns the stream entry id, or None when it was already queued."""
    key = QUEUED_KEY.format(call_uuid=job.call_uuid)
    if force:
        client.delete(key)
    entry: bytes | None = client.eval(  # type: ignore[assignment]
        _ENQUEUE, 2, key, stream, job.model_dump_json(), QUEUED_TTL_S, STREAM_MAXLEN
    )
    if entry:
        forget_prompts(client, job.call_uuid)
    return entry or None


def forget_prompts(client: redis.Redis, call_uuid: str) -> None:
    """The IVR's lines are in the job now (or the call had nothing to transcribe)."""
    client.delete(PROMPTS_KEY.format(call_uuid=call_uuid))
