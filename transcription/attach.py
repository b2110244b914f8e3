"""Put a merged transcript on the call's thread: rows, link on the thread entry, event.

Card numbers are masked by `merge.merge` before lines reach here; `attach` masks the text once
more (cheap, and nothing unmasked can be stored through this function whoever calls it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from events.bus import EventBus
from events.calls import THREAD_UPDATED, ThreadUpdated
from ivr.redact import redact
from records.db import transaction
from records.transcripts import Saved, SegmentRow, save_transcript
from transcription.merge import Line, as_text

log = logging.getLogger(__name__)


class CallNotWritten(Exception):
    """The call's row is not in the database (yet): the job is retried later."""


def attach(
    sessions: sessionmaker[Session],
    bus: EventBus | None,
    *,
    call_uuid: str,
    lines: Sequence[Line],
    model: str,
) -> Saved:
    """Store the call's one transcript (replacing an earlier one) and announce it."""
    rows = [SegmentRow(x.speaker, x.start, x.end, redact(x.text), x.confidence) for x in lines]
    text = redact(as_text(lines))
    try:
        saved = _save(sessions, call_uuid, rows, text, model)
    except IntegrityError:  # another worker inserted the same call's transcript just now
        saved = _save(sessions, call_uuid, rows, text, model)
    if bus is not None and saved.entry_id is not None:
        update = ThreadUpdated(
            customer_id=saved.customer_id,
            entry_id=saved.entry_id,
            kind=saved.entry_kind,
            call_uuid=call_uuid,
        )
        try:
            bus.publish(saved.store_id, THREAD_UPDATED, update.model_dump(mode="json"))
        except Exception:  # noqa: BLE001 - the transcript is saved; a lost event is not fatal
            log.exception("call %s: could not publish thread.updated", call_uuid)
    return saved


def _save(
    sessions: sessionmaker[Session],
    call_uuid: str,
    rows: list[SegmentRow],
    text: str,
    model: str,
) -> Saved:
    with transaction(sessions) as session:
        saved = save_transcript(session, call_uuid=call_uuid, segments=rows, text=text, model=model)
        if saved is None:
            raise CallNotWritten(f"call {call_uuid} has no row yet")
        return saved
