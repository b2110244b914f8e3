"""Transcripts in SQL: store one per call (idempotently), the store's vocabulary, full-text search.

Search runs on each database's own engine (migration 0002): SQLite an FTS5 table over
`transcript_segments` kept in sync by triggers, PostgreSQL a GIN index on
`to_tsvector('english', text)`. Both stem English words, so "brakes" finds "brake". A hit is one
segment: its text, speaker and start time (the page seeks the recording there).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, column, func, literal_column, select, table
from sqlalchemy.orm import Session, selectinload

from ivr.domain import Role, ThreadKind
from records.models import (
    Call,
    Customer,
    Store,
    ThreadEntry,
    Transcript,
    TranscriptSegment,
    User,
    Vehicle,
    user_stores,
)
from records.queries import Scope

FTS_TABLE = "transcript_segments_fts"  # SQLite only; see migration 0002
PG_CONFIG = "'english'::regconfig"  # literal, so the planner matches the expression index
HIGHLIGHT = ("«", "»")  # around the matched words in a snippet ("[" is the redaction mask's)
EXCERPT_CHARS = 200


@dataclass(frozen=True)
class SegmentRow:
    speaker: str
    start: float
    end: float
    text: str
    confidence: float | None


@dataclass(frozen=True)
class Saved:
    """What was written, for the `thread.updated` event."""

    store_id: int
    transcript_id: int
    entry_id: int | None
    customer_id: int | None
    entry_kind: str
    created: bool


def call_entry_key(call_uuid: str) -> str:
    """The call writer's dedupe key for a call's thread entry."""
    return f"call:{call_uuid}"


def save_transcript(
    session: Session,
    *,
    call_uuid: str,
    segments: Sequence[SegmentRow],
    text: str,
    model: str,
    language: str = "en",
) -> Saved | None:
    """The call's one transcript, replaced if it exists (a rerun never duplicates), linked on
    the call's thread entry (and its voicemail entry). None when the call has no row (yet)."""
    call = session.scalar(select(Call).where(Call.call_uuid == call_uuid))
    if call is None:
        return None
    transcript = session.scalar(
        select(Transcript)
        .where(Transcript.call_id == call.id)
        .options(selectinload(Transcript.segments))
    )
    created = transcript is None
    if transcript is None:
        transcript = Transcript(call_id=call.id, model=model, language=language, text=text)
        session.add(transcript)
    else:
        transcript.model, transcript.language, transcript.text = model, language, text
        transcript.segments.clear()
        session.flush()  # old segments out (and out of the FTS index) before the new go in
    transcript.segments.extend(
        TranscriptSegment(
            speaker=s.speaker, start_s=s.start, end_s=s.end, text=s.text, confidence=s.confidence
        )
        for s in segments
    )
    session.flush()

    # The call's own entry, and a voicemail left on the call (the call writer links it).
    entries = session.scalars(
        select(ThreadEntry)
        .where(
            ThreadEntry.call_id == call.id,
            ThreadEntry.kind.in_([ThreadKind.call.value, ThreadKind.voicemail.value]),
        )
        .order_by(case((ThreadEntry.dedupe_key == call_entry_key(call_uuid), 0), else_=1))
        .order_by(ThreadEntry.id)
    ).all()
    spoken = " ".join(s.text for s in segments if s.speaker != "IVR")
    for linked in entries:
        linked.data = {
            **(linked.data or {}),
            "transcript_id": transcript.id,
            "transcript_excerpt": _excerpt(spoken),
            "transcript_lines": len(segments),
        }
    entry = entries[0] if entries else None
    return Saved(
        store_id=call.store_id,
        transcript_id=transcript.id,
        entry_id=entry.id if entry else None,
        customer_id=entry.customer_id if entry else call.customer_id,
        entry_kind=entry.kind if entry else ThreadKind.call.value,
        created=created,
    )


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= EXCERPT_CHARS:
        return text
    return text[: EXCERPT_CHARS - 1].rsplit(" ", 1)[0] + "…"


def store_vocabulary(session: Session, store_id: int, *, vehicles: int = 15) -> str:
    """Words a phone call to this store is likely to hold, as Whisper's initial prompt: the
    store's name, its advisors, its most common makes and models, service words."""
    store_name = session.scalar(select(Store.name).where(Store.id == store_id)) or ""
    advisors = session.scalars(
        select(User.name)
        .join(user_stores, user_stores.c.user_id == User.id)
        .where(
            user_stores.c.store_id == store_id,
            User.active.is_(True),
            User.role == Role.advisor.value,
        )
        .order_by(User.name)
        .limit(20)
    ).all()
    common = session.execute(
        select(Vehicle.make, Vehicle.model)
        .where(Vehicle.store_id == store_id, Vehicle.make != "")
        .group_by(Vehicle.make, Vehicle.model)
        .order_by(func.count().desc(), Vehicle.make, Vehicle.model)
        .limit(vehicles)
    ).all()
    parts = [f"Service department call at {store_name}." if store_name else "Service call."]
    parts.append("Repair order, RO number, oil change, brakes, tires, pickup, loaner.")
    if advisors:
        parts.append("Advisors: " + ", ".join(advisors) + ".")
    if common:
        parts.append("Vehicles: " + ", ".join(f"{m} {n}".strip() for m, n in common) + ".")
    return " ".join(parts)


# --- search -------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 12


def search_terms(q: str) -> list[str]:
    """The words of a query; operators and quotes are dropped so user text is never syntax."""
    return _WORD.findall(q)[:MAX_TERMS]


@dataclass(frozen=True)
class Hit:
    call_id: int
    call_uuid: str
    store_id: int
    started_at: datetime
    customer_id: int | None
    customer_name: str | None
    entry_id: int | None
    transcript_id: int
    segment_id: int
    speaker: str
    start_s: float
    end_s: float
    snippet: str


def search_transcripts(
    session: Session, scope: Scope, terms: Sequence[str], *, limit: int, offset: int
) -> list[Hit]:
    """Segments holding every term, newest call first; `limit + 1` rows for paging."""
    if not terms:
        return []
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        fts = table(FTS_TABLE, column("rowid"))
        name = literal_column(FTS_TABLE)
        match = " ".join('"' + t.replace('"', "") + '"' for t in terms)
        snippet = func.snippet(name, 0, *HIGHLIGHT, "…", 16)
        stmt = select(fts.c.rowid.label("segment_id"), snippet.label("snippet")).where(
            name.op("MATCH")(match)
        )
    else:
        config = literal_column(PG_CONFIG)
        query = func.plainto_tsquery(config, " ".join(terms))
        vector = func.to_tsvector(config, TranscriptSegment.text)
        options = f"StartSel={HIGHLIGHT[0]},StopSel={HIGHLIGHT[1]},MaxWords=24,MinWords=8"
        snippet = func.ts_headline(config, TranscriptSegment.text, query, options)
        stmt = select(TranscriptSegment.id.label("segment_id"), snippet.label("snippet")).where(
            vector.op("@@")(query)
        )
    return _hits(session, scope, stmt, limit=limit, offset=offset)


def _hits(
    session: Session, scope: Scope, matches: Select[Any], *, limit: int, offset: int
) -> list[Hit]:
    found = matches.subquery("found")
    entry = (
        select(ThreadEntry.id)
        .where(
            ThreadEntry.call_id == Call.id,
            ThreadEntry.kind.in_([ThreadKind.call.value, ThreadKind.voicemail.value]),
        )
        .order_by(ThreadEntry.kind != ThreadKind.call.value, ThreadEntry.id)
        .limit(1)
        .correlate(Call)
        .scalar_subquery()
    )
    stmt = (
        select(
            Call.id,
            Call.call_uuid,
            Call.store_id,
            Call.started_at,
            Customer.id,
            Customer.first_name,
            Customer.last_name,
            entry,
            Transcript.id,
            TranscriptSegment.id,
            TranscriptSegment.speaker,
            TranscriptSegment.start_s,
            TranscriptSegment.end_s,
            found.c.snippet,
        )
        .select_from(TranscriptSegment)
        .join(found, found.c.segment_id == TranscriptSegment.id)
        .join(Transcript, Transcript.id == TranscriptSegment.transcript_id)
        .join(Call, Call.id == Transcript.call_id)
        .outerjoin(Customer, Customer.id == Call.customer_id)
        .where(scope.where(Call.store_id))
        .order_by(Call.started_at.desc(), Call.id.desc(), TranscriptSegment.start_s)
        .limit(limit + 1)
        .offset(offset)
    )
    return [
        Hit(
            call_id=r[0],
            call_uuid=r[1],
            store_id=r[2],
            started_at=r[3],
            customer_id=r[4],
            customer_name=f"{r[5]} {r[6]}".strip() if r[4] is not None else None,
            entry_id=r[7],
            transcript_id=r[8],
            segment_id=r[9],
            speaker=r[10],
            start_s=r[11],
            end_s=r[12],
            snippet=r[13],
        )
        for r in session.execute(stmt)
    ]
