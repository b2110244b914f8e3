"""A worker's journal of its calls in progress, so a killed worker loses no call and no recording.

A worker that is SIGKILLed (or loses power) never publishes `call.ended`: the call stays open in
the record and its WAVs keep the unfinished headers pjsua writes until a recorder closes. So the
lifecycle keeps one small JSON file per call while it is up:

    <recordings_dir>/.journal/<worker>/<call-uuid>.json
        written when the call rings (store known), again when answered; removed once its
        `call.ended` is on Redis, not merely held by the bus while Redis is away (masked
        outbound calls too: sip/outbound.py, from the first leg dialled)

and a worker starting on the same `<worker>` name (its SIP port, or `sip_worker_id`) first
recovers what its previous life left: repairs the call's WAVs (`<call-uuid>-*.wav` in the call's
date folder), publishes `call.ended` with disposition `failed` and those recordings (the call
writer then closes the row and files the recordings), and removes the file. Each worker only
touches its own folder: the others' calls are still live.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ValidationError

from events.bus import AsyncEventBus
from events.calls import (
    CallEnded,
    Disposition,
    LegInfo,
    RecordingInfo,
    publish_call_event_async,
)
from sip.media import header_complete, repair_wav, sha256_file, wav_seconds

log = logging.getLogger(__name__)


class JournalEntry(BaseModel):
    """What `call.ended` needs that the WAVs on disk do not say."""

    call_uuid: str
    store_id: int
    did: str
    caller: str | None = None
    caller_raw: str = ""
    customer_id: int | None = None
    started_at: AwareDatetime
    answered_at: AwareDatetime | None = None
    consent_played: bool = False
    flow_path: list[str] = []
    # Masked outbound calls: `caller` is the customer's number, `did` the store's caller ID.
    direction: Literal["inbound", "outbound"] = "inbound"
    call_id: int | None = None  # the row the API created when the call was asked for
    advisor_id: int | None = None
    advisor_party: str | None = None  # the advisor's contact, for their leg
    queue_entry: str | None = None  # the job's entry on the outbound queue, acked on recovery
    lookup_failed: bool = False  # the caller was never looked up (the record was down)


def journal_dir(recordings_dir: Path, worker: str) -> Path:
    return Path(recordings_dir) / ".journal" / worker


class CallJournal:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def write(self, entry: JournalEntry) -> None:
        """Atomically (re)write a call's entry: a crash mid-write leaves the old one."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as out:
                out.write(entry.model_dump_json())
            os.replace(tmp, self.directory / f"{entry.call_uuid}.json")
        except BaseException:  # a full disk: no half-written temp file left behind
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def remove(self, call_uuid: str) -> None:
        (self.directory / f"{call_uuid}.json").unlink(missing_ok=True)

    def leftovers(self) -> list[JournalEntry]:
        """Entries of calls a previous run of this worker never ended (unreadable ones are
        logged and dropped: a half-written temp file is never one of them)."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                found.append(JournalEntry.model_validate_json(path.read_text()))
            except (OSError, ValidationError) as exc:
                log.error("unreadable journal entry %s dropped: %s", path, exc)
                path.unlink(missing_ok=True)
        for tmp in self.directory.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
        return found


def call_recordings(recordings_dir: Path, entry: JournalEntry) -> list[RecordingInfo]:
    """Repair and describe the WAVs of a call whose worker died (see media.recording_path)."""
    root = Path(recordings_dir)
    found: list[RecordingInfo] = []
    days = {entry.started_at.astimezone(UTC) + timedelta(days=d) for d in (0, 1)}
    for day in sorted(days):
        folder = root / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
        for path in sorted(folder.glob(f"{entry.call_uuid}-*.wav")):
            if not header_complete(path) and not repair_wav(path):
                log.error("recording %s could not be repaired; left out of the record", path)
                continue
            suffix = path.stem[len(entry.call_uuid) + 1 :]
            voicemail = suffix.startswith("voicemail")
            try:
                duration = wav_seconds(path)
            except Exception:  # noqa: BLE001 - wave raises several kinds on a truncated file
                log.exception("recording %s unreadable after repair", path)
                continue
            found.append(
                RecordingInfo(
                    leg_role="advisor" if suffix.startswith("advisor") else "caller",
                    path=path.relative_to(root).as_posix(),
                    sha256=sha256_file(path),
                    duration_s=duration,
                    kind="voicemail" if voicemail else "leg",
                    consent_played=entry.consent_played and not voicemail,
                    # The caller leg starts as the call is answered; others are not known.
                    started_at=entry.answered_at if suffix.startswith("caller") else None,
                )
            )
    return found


def ended_event(entry: JournalEntry, recordings: list[RecordingInfo], at: datetime) -> CallEnded:
    legs = [
        LegInfo(
            role="caller",
            party=(entry.caller or entry.caller_raw or "unknown")[:200],
            started_at=entry.started_at,
            answered_at=entry.answered_at,
            ended_at=at,
        )
    ]
    if entry.advisor_party:
        legs.append(
            LegInfo(
                role="advisor",
                party=entry.advisor_party[:200],
                user_id=entry.advisor_id,
                started_at=entry.started_at,
                ended_at=at,
            )
        )
    return CallEnded(
        call_uuid=entry.call_uuid,
        store_id=entry.store_id,
        at=at,
        disposition=Disposition.failed,  # our error: the worker died with the caller on
        direction=entry.direction,
        did=entry.did,
        caller=entry.caller,
        caller_raw=entry.caller_raw,
        customer_id=entry.customer_id,
        started_at=entry.started_at,
        answered_at=entry.answered_at,
        flow_path=entry.flow_path,
        legs=legs,
        recordings=recordings,
        lookup_failed=entry.lookup_failed,
    )


RECOVER_WAIT_S = 3.0
_closing: set[asyncio.Task[CallEnded | None]] = set()  # closes still waiting for Redis


async def recover(
    journal: CallJournal,
    recordings_dir: Path,
    bus: AsyncEventBus,
    after: Callable[[JournalEntry], Awaitable[None]] | None = None,
    *,
    wait_s: float = RECOVER_WAIT_S,
) -> list[CallEnded]:
    """Close every call a previous run of this worker left open; returns those closed within
    `wait_s` seconds.

    An entry is removed only once its `call.ended` is on Redis. While Redis is away the worker
    starts anyway (the bus holds the events) and the rest close in the background as soon as
    it answers; a worker stopped before that leaves them for its next start. `after` runs for
    each closed call (the outbound queue marks a dropped masked call's job failed:
    sip/outbound.close_lost_call)."""
    tasks = [
        asyncio.ensure_future(_close(journal, recordings_dir, bus, entry, after))
        for entry in journal.leftovers()
    ]
    if not tasks:
        return []
    _done, waiting = await asyncio.wait(tasks, timeout=wait_s)
    if waiting:
        log.warning("Redis is away: %d dropped call(s) close once it answers", len(waiting))
    for task in waiting:
        _closing.add(task)
        task.add_done_callback(_closing.discard)
    return [ended for task in tasks if task.done() and (ended := task.result()) is not None]


async def _close(
    journal: CallJournal,
    recordings_dir: Path,
    bus: AsyncEventBus,
    entry: JournalEntry,
    after: Callable[[JournalEntry], Awaitable[None]] | None,
) -> CallEnded | None:
    recordings = await asyncio.to_thread(call_recordings, recordings_dir, entry)
    # The hangup time is unknown; the last write to its files is the best estimate.
    at = max(
        [entry.answered_at or entry.started_at]
        + [_mtime(Path(recordings_dir) / r.path) for r in recordings]
    )
    ended = ended_event(entry, recordings, at)
    try:
        event = await publish_call_event_async(bus, ended)
    except Exception:  # noqa: BLE001 - keep it for the next start
        log.exception("could not publish call.ended for dropped call %s", entry.call_uuid)
        return None
    if not await bus.delivered(event):
        log.error("call.ended for dropped call %s was dropped; kept", entry.call_uuid)
        return None
    if after is not None:
        try:
            await after(entry)
        except Exception:  # noqa: BLE001 - the record is closed; the rest is tidying up
            log.exception("could not tidy up after dropped call %s", entry.call_uuid)
    journal.remove(entry.call_uuid)
    log.warning(
        "recovered call %s dropped by a previous run: %d recording(s)",
        entry.call_uuid,
        len(recordings),
    )
    return ended


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)
