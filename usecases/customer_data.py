"""A customer's data on request: everything we keep about them as a zip (`export_customer`),
or all of it that names them taken out (`erase_customer`). Managers and admins of the
customer's store; each one leaves an audit-log row saying who did it, when, and what.

Erasure keeps counts for the reports: the rows stay (calls, repair orders, thread entries,
callbacks, follow-ups), emptied of the person (records/customer_data.py says field by field);
recordings (files and rows) and transcripts are deleted. It refuses while one of their calls
is in progress (its recordings are still being written): erase once it has ended.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy.orm import Session

from ivr.domain import AuditAction
from ivr.policies import call_in_progress
from recordings import storage
from records import audit_log, call_media, customer_data, queries
from records.models import Customer, User, utcnow
from usecases.access import require_manager, scope_of
from usecases.errors import Conflict, NotFound

DOCUMENT = "customer.json"


def _customer(session: Session, actor: User, customer_id: int) -> Customer:
    """In the actor's stores (else NotFound, even for an advisor), then managers only."""
    customer = queries.get_customer(session, scope=scope_of(actor), customer_id=customer_id)
    if customer is None:
        raise NotFound("customer not found")
    require_manager(actor)
    return customer


@dataclass(frozen=True)
class Exported:
    customer_id: int
    store_id: int
    calls: int
    recordings: int
    missing_files: int  # recording rows whose file is gone (listed with "file": null)
    audio_bytes: int


def export_customer(
    session: Session,
    actor: User,
    *,
    customer_id: int,
    recordings_dir: Path,
    out: IO[bytes],
    now: datetime | None = None,
) -> Exported:
    """Write the customer's zip to `out`: `customer.json` (customer, phones, vehicles, repair
    orders, purchases, calls with legs and transcripts, thread entries, callbacks, follow-ups)
    and `recordings/<id>-<name>` with each recording's audio. Audited, then committed."""
    customer = _customer(session, actor, customer_id)
    now = now or utcnow()
    calls = customer_data.customer_calls(session, customer)
    call_ids = [c.id for c in calls]
    recordings = call_media.recordings_of_calls(session, call_ids)
    files: dict[int, str | None] = {}
    sources: dict[str, Path] = {}
    for rec in recordings:
        path = storage.resolve(recordings_dir, rec.path)
        files[rec.id] = None if path is None else f"recordings/{rec.id}-{path.name}"
        if path is not None:
            sources[f"recordings/{rec.id}-{path.name}"] = path
    document = customer_data.export_document(
        session,
        customer,
        calls,
        recordings,
        files,
        call_media.transcripts_of_calls(session, call_ids),
    )
    document = {"exported_at": now.isoformat(), "exported_by": actor.username, **document}
    audio = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(DOCUMENT, json.dumps(document, indent=2, ensure_ascii=False))
        for name, path in sources.items():
            archive.write(path, name, compress_type=zipfile.ZIP_STORED)  # audio: no gain
            audio += path.stat().st_size
    exported = Exported(
        customer.id, customer.store_id, len(calls), len(sources), len(files) - len(sources), audio
    )
    _audit(session, actor, customer, AuditAction.customer_export, exported.__dict__, now)
    session.commit()
    return exported


@dataclass(frozen=True)
class Erased:
    customer_id: int
    store_id: int
    counts: dict[str, int]  # rows emptied (calls, thread entries, ...) and deleted (media)


def erase_customer(
    session: Session,
    actor: User,
    *,
    customer_id: int,
    recordings_dir: Path,
    now: datetime | None = None,
) -> Erased:
    """Erase the customer (see the module). Idempotent: a second erasure finds nothing more to
    take out (it is audited again all the same)."""
    customer = _customer(session, actor, customer_id)
    now = now or utcnow()
    calls = customer_data.customer_calls(session, customer)
    live = [
        c.id
        for c in calls
        if call_in_progress(started_at=c.started_at, ended_at=c.ended_at, now=now)
    ]
    if live:
        raise Conflict("a call with this customer is in progress; erase once it has ended")
    call_ids = [c.id for c in calls]
    recordings = call_media.recordings_of_calls(session, call_ids)
    removed = [storage.remove(recordings_dir, r.path) for r in recordings]
    transcripts = call_media.transcripts_of_calls(session, call_ids)
    call_media.delete_media(
        session,
        recording_ids=[r.id for r in recordings],
        transcript_ids=[t.id for t in transcripts],
        call_ids=call_ids,
        note=f"erased on request {now.date().isoformat()}",
    )
    counts = customer_data.erase_rows(session, customer, calls, now=now)
    counts |= {
        "recordings": len(recordings),
        "files_removed": sum(r.outcome == "removed" for r in removed),
        "files_missing": sum(r.outcome == "missing" for r in removed),
        "transcripts": len(transcripts),
    }
    _audit(session, actor, customer, AuditAction.customer_erase, counts, now)
    session.commit()
    return Erased(customer.id, customer.store_id, counts)


def _audit(
    session: Session,
    actor: User,
    customer: Customer,
    action: AuditAction,
    details: dict[str, Any],
    now: datetime,
) -> None:
    audit_log.record(
        session,
        store_id=customer.store_id,
        actor=actor,
        action=action,
        subject=f"customer:{customer.id}",
        details={k: v for k, v in details.items() if k not in ("customer_id", "store_id")},
        at=now,
    )
