"""Calls with real recording files and transcripts, as the call writer and the transcriber
leave them (rows, files under a recordings dir, the call's thread entry pointing at both)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from records.models import Call, CallLeg, Recording, ThreadEntry, Transcript, TranscriptSegment


def wav_bytes(tag: str) -> bytes:
    """A small file whose bytes say which call it is (what the export must carry)."""
    return b"RIFF" + tag.encode() * 64


def add_call(
    session: Session,
    recordings_dir: Path,
    *,
    store_id: int,
    started_at: datetime,
    customer_id: int | None = None,
    from_number: str = "+15550209999",
    ended: bool = True,
    said: str = "my brakes squeal",
) -> Call:
    """An inbound call with a caller-leg recording (file on disk), a transcript, and its entry."""
    tag = uuid.uuid4().hex[:8]
    call = Call(
        call_uuid=f"media-{tag}",
        store_id=store_id,
        customer_id=customer_id,
        direction="inbound",
        from_number=from_number,
        to_number="+15550300100",
        started_at=started_at,
        answered_at=started_at,
        ended_at=started_at + timedelta(minutes=2) if ended else None,
        disposition="handled_by_ivr" if ended else None,
        flow_path=["greet"],
        legs=[CallLeg(role="caller", party=from_number, started_at=started_at)],
    )
    session.add(call)
    session.flush()
    relative = f"{started_at:%Y/%m/%d}/{call.call_uuid}-caller.wav"
    (recordings_dir / relative).parent.mkdir(parents=True, exist_ok=True)
    (recordings_dir / relative).write_bytes(wav_bytes(tag))
    recording = Recording(
        call_id=call.id,
        leg_id=call.legs[0].id,
        path=relative,
        sha256="0" * 64,
        duration_s=120.0,
        created_at=started_at,
    )
    transcript = Transcript(
        call_id=call.id,
        model="tiny.en",
        text=f"Caller: {said}",
        segments=[TranscriptSegment(speaker="Caller", start_s=1.0, end_s=3.0, text=said)],
    )
    session.add_all([recording, transcript])
    session.flush()
    session.add(
        ThreadEntry(
            store_id=store_id,
            customer_id=customer_id,
            kind="call",
            at=started_at,
            body=f"Inbound call from {from_number}, 2 min",
            data={
                "call_uuid": call.call_uuid,
                "disposition": "handled_by_ivr",
                "duration": 120.0,
                "caller": from_number,
                "recordings": [{"path": relative}],
                "transcript_id": transcript.id,
                "transcript_excerpt": said,
                "transcript_lines": 1,
            },
            call_id=call.id,
            dedupe_key=f"call:{call.call_uuid}",
        )
    )
    session.flush()
    return call
