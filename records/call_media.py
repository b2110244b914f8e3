"""A call's media in SQL: its recording rows and transcript, found by age (retention) or by
call (erasure), deleted, and unlinked from the thread entries that pointed at them.

The call row itself stays (reports count it); only what was said and heard goes. Files are
removed by the use case (recordings/storage.py) before these rows are deleted, so a failed
delete leaves a row without a file (served as 404, deleted by the next run) rather than a file
nobody knows about.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from records.models import Call, Recording, ThreadEntry, Transcript, TranscriptSegment

# What a call's thread entry says about its media (records/call_wording.py, records/transcripts.py).
MEDIA_KEYS = ("recordings", "transcript_id", "transcript_excerpt", "transcript_lines")


@dataclass(frozen=True)
class MediaRow:
    """A recording or transcript, with its call's times (to tell a live call from an old one)."""

    id: int
    call_id: int
    path: str | None  # a recording's file, relative to the recordings dir; None: a transcript
    started_at: datetime
    ended_at: datetime | None


def recordings_of_calls_before(
    session: Session, *, store_id: int, before: datetime
) -> list[MediaRow]:
    """The store's recordings of calls that started before `before`, oldest first."""
    rows = session.execute(
        select(Recording.id, Recording.call_id, Recording.path, Call.started_at, Call.ended_at)
        .join(Call, Call.id == Recording.call_id)
        .where(Call.store_id == store_id, Call.started_at < before)
        .order_by(Call.started_at, Recording.id)
    )
    return [MediaRow(*row) for row in rows]


def transcripts_of_calls_before(
    session: Session, *, store_id: int, before: datetime
) -> list[MediaRow]:
    rows = session.execute(
        select(Transcript.id, Transcript.call_id, Call.started_at, Call.ended_at)
        .join(Call, Call.id == Transcript.call_id)
        .where(Call.store_id == store_id, Call.started_at < before)
        .order_by(Call.started_at, Transcript.id)
    )
    return [MediaRow(id_, call_id, None, started, ended) for id_, call_id, started, ended in rows]


def recordings_of_calls(session: Session, call_ids: Collection[int]) -> list[Recording]:
    if not call_ids:
        return []
    return list(
        session.scalars(
            select(Recording).where(Recording.call_id.in_(sorted(call_ids))).order_by(Recording.id)
        )
    )


def transcripts_of_calls(session: Session, call_ids: Collection[int]) -> list[Transcript]:
    if not call_ids:
        return []
    return list(
        session.scalars(
            select(Transcript)
            .where(Transcript.call_id.in_(sorted(call_ids)))
            .order_by(Transcript.call_id)
        )
    )


def delete_media(
    session: Session,
    *,
    recording_ids: Sequence[int],
    transcript_ids: Sequence[int],
    call_ids: Collection[int],
    note: str,
) -> int:
    """Delete those rows (segments go with their transcript, and out of the search index by
    migration 0002's triggers) and drop the media keys from the calls' thread entries, which
    then carry `note` ("deleted by retention 2026-12-04"). Returns the entries changed."""
    for chunk in _chunks(recording_ids):
        session.execute(delete(Recording).where(Recording.id.in_(chunk)))
    for chunk in _chunks(transcript_ids):
        # Segments first, in bulk: migration 0002's triggers take each out of the SQLite index.
        session.execute(delete(TranscriptSegment).where(TranscriptSegment.transcript_id.in_(chunk)))
        session.execute(delete(Transcript).where(Transcript.id.in_(chunk)))
    changed = 0
    for chunk in _chunks(sorted(call_ids)):
        for entry in session.scalars(select(ThreadEntry).where(ThreadEntry.call_id.in_(chunk))):
            data = dict(entry.data or {})
            if not any(key in data for key in MEDIA_KEYS):
                continue
            for key in MEDIA_KEYS:
                data.pop(key, None)
            entry.data = {**data, "media_deleted": note}
            changed += 1
    session.flush()
    return changed


def _chunks(ids: Sequence[int], size: int = 500) -> list[Sequence[int]]:
    """IN lists of a bounded length (SQLite's and psycopg's parameter limits)."""
    return [ids[i : i + size] for i in range(0, len(ids), size)]
