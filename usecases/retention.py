"""Retention per store: recordings and transcripts of calls older than the store's
`retention_days` are deleted, files and rows (the call rows stay, so reports still count them).

    plan_retention    what a run would delete now, store by store (the dry run; changes nothing)
    apply_retention   delete it: files first, then rows, one audit-log row per store (also when
                      nothing was due, so the morning view shows the last run), committed per store
    due_store_ids     the stores whose daily run is due (`driveline serve` runs it once a local day)

"Older than the period" is `ivr.policies.retention_cutoff` (whole local days in the store's
zone); a call still in progress (`ivr.policies.call_in_progress`) is never touched. The cutoff
lies a day back at least, so what it spares in practice is a call being recorded: its files
have no rows until it ends, and a run deletes only files that rows name. A file
already gone counts as `missing` and its row is deleted all the same, so a run interrupted
half-way is finished by the next one.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.domain import AuditAction
from ivr.policies import call_in_progress, retention_cutoff
from recordings import storage
from records import audit_log, call_media
from records.models import Store, User, utcnow


@dataclass(frozen=True)
class RetentionPlan:
    """One store's due deletions: recordings (with their files) and transcripts."""

    store_id: int
    store_name: str
    timezone: str
    retention_days: int
    cutoff: datetime  # calls that started before this are past the period
    recordings: list[call_media.MediaRow] = field(default_factory=list)
    transcripts: list[call_media.MediaRow] = field(default_factory=list)
    skipped_live: int = 0  # media of calls still in progress, left alone

    @property
    def call_ids(self) -> set[int]:
        return {row.call_id for row in (*self.recordings, *self.transcripts)}

    def summary(self) -> dict[str, Any]:
        started = sorted(row.started_at for row in (*self.recordings, *self.transcripts))
        return {
            "retention_days": self.retention_days,
            "cutoff": self.cutoff.isoformat(),
            "calls": len(self.call_ids),
            "recordings": len(self.recordings),
            "transcripts": len(self.transcripts),
            "oldest_call": started[0].isoformat() if started else None,
            "newest_call": started[-1].isoformat() if started else None,
            "skipped_live": self.skipped_live,
        }


def _stores(session: Session, store_ids: Collection[int] | None) -> list[Store]:
    stmt = select(Store).where(Store.retention_days.is_not(None)).order_by(Store.id)
    if store_ids is not None:
        stmt = stmt.where(Store.id.in_(sorted(store_ids)))
    return list(session.scalars(stmt))


def plan_retention(
    session: Session, *, now: datetime | None = None, store_ids: Collection[int] | None = None
) -> list[RetentionPlan]:
    """What is past each store's period now (stores that keep everything are left out)."""
    now = now or utcnow()
    plans = []
    for store in _stores(session, store_ids):
        assert store.retention_days is not None
        cutoff = retention_cutoff(now, store.retention_days, store.timezone)
        assert cutoff is not None
        found = call_media.recordings_of_calls_before(session, store_id=store.id, before=cutoff)
        found += call_media.transcripts_of_calls_before(session, store_id=store.id, before=cutoff)
        due, live = [], 0
        for row in found:
            if call_in_progress(started_at=row.started_at, ended_at=row.ended_at, now=now):
                live += 1
            else:
                due.append(row)
        plans.append(
            RetentionPlan(
                store.id,
                store.name,
                store.timezone,
                store.retention_days,
                cutoff,
                recordings=[r for r in due if r.path is not None],
                transcripts=[r for r in due if r.path is None],
                skipped_live=live,
            )
        )
    return plans


@dataclass(frozen=True)
class RetentionRun:
    plan: RetentionPlan
    files_removed: int
    files_missing: int
    files_outside: int  # rows naming a path outside the recordings dir: row deleted, file kept
    bytes_freed: int
    audit_id: int


def apply_retention(
    session: Session,
    *,
    recordings_dir: Path,
    now: datetime | None = None,
    store_ids: Collection[int] | None = None,
    actor: User | None = None,
) -> list[RetentionRun]:
    """Delete what `plan_retention` finds, store by store, each committed with its audit row
    (`actor` None: the daily job)."""
    now = now or utcnow()
    runs = []
    for plan in plan_retention(session, now=now, store_ids=store_ids):
        removed = [storage.remove(recordings_dir, r.path or "") for r in plan.recordings]
        call_media.delete_media(
            session,
            recording_ids=[r.id for r in plan.recordings],
            transcript_ids=[t.id for t in plan.transcripts],
            call_ids=plan.call_ids,
            note=f"retention {now.date().isoformat()}",
        )
        counts = {
            "files_removed": sum(r.outcome == "removed" for r in removed),
            "files_missing": sum(r.outcome == "missing" for r in removed),
            "files_outside": sum(r.outcome == "outside" for r in removed),
            "bytes_freed": sum(r.bytes for r in removed),
        }
        row = audit_log.record(
            session,
            store_id=plan.store_id,
            actor=actor,
            action=AuditAction.retention,
            subject=f"store:{plan.store_id}",
            details=plan.summary() | counts,
            at=now,
        )
        session.commit()
        runs.append(RetentionRun(plan, **counts, audit_id=row.id))
    return runs


def due_store_ids(session: Session, *, now: datetime, hour: int = 0) -> set[int]:
    """Stores with a retention period whose local time is past `hour` and that had no run yet
    on their local today: the daily job runs these."""
    due = set()
    for store in _stores(session, None):
        zone = ZoneInfo(store.timezone)
        local = now.astimezone(zone)
        if local.hour < hour:
            continue
        last = audit_log.latest(session, store_id=store.id, action=AuditAction.retention)
        if last is None or last.at.astimezone(zone).date() < local.date():
            due.add(store.id)
    return due
