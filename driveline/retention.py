"""`driveline retention [--apply]` and the daily run inside `driveline serve`.

Both call usecases/retention.py: the command prints what is past each store's period (a dry run
by default, nothing deleted) and deletes it with `--apply`; `RetentionPart` is a light thread
that, every few minutes, applies it for each store whose local time is past `retention_hour`
and that has had no run yet that local day (the audit log says when the last one was, so a
restart does not run it twice).
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from sqlalchemy import Engine

from ivr.config import Settings, get_settings
from ivr.parts import ThreadPart, every
from records.db import make_engine, session_factory, upgrade
from records.models import utcnow
from usecases import retention

log = logging.getLogger(__name__)

TICK_S = 300.0


def _local(at: datetime, timezone: str) -> str:
    return at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z")


def run_due(engine: Engine, recordings_dir: Path, *, hour: int, now: datetime) -> int:
    """Apply retention for every store due now; returns how many stores ran."""
    with session_factory(engine)() as session:
        due = retention.due_store_ids(session, now=now, hour=hour)
        if not due:
            return 0
        runs = retention.apply_retention(
            session, recordings_dir=recordings_dir, now=now, store_ids=due
        )
    for run in runs:
        log.info(
            "retention store %s: %d recordings (%d files, %d bytes), %d transcripts deleted",
            run.plan.store_id,
            len(run.plan.recordings),
            run.files_removed,
            run.bytes_freed,
            len(run.plan.transcripts),
        )
    return len(runs)


class RetentionPart(ThreadPart):
    """The daily run as a `driveline serve` part (driveline/supervisor.py). A failed tick is
    logged and tried again on the next; it never stops the server."""

    def __init__(self, engine: Engine, settings: Settings, tick_s: float = TICK_S) -> None:
        def tick() -> None:
            run_due(engine, settings.recordings_dir, hour=settings.retention_hour, now=utcnow())

        super().__init__("retention", every(tick_s, tick, "retention tick"))


@click.command("retention")
@click.option("--apply", "apply_", is_flag=True, help="Delete (default: only print what would go).")
@click.option("--store", "store_ids", type=int, multiple=True, help="Only this store (repeat).")
def retention_command(apply_: bool, store_ids: tuple[int, ...]) -> None:
    """Recordings and transcripts of calls older than each store's retention_days.

    Prints, store by store, what is past its period and each recording file; nothing is
    deleted unless --apply is given (files, then rows; the call rows stay for reports). Stores
    without retention_days keep everything and are not listed.
    """
    settings = get_settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    wanted = set(store_ids) or None
    now = utcnow()
    try:
        with session_factory(engine)() as session:
            plans = retention.plan_retention(session, now=now, store_ids=wanted)
            for plan in plans:
                verb = "deleting" if apply_ else "would delete"
                click.echo(
                    f"store {plan.store_id} {plan.store_name} ({plan.retention_days} days, calls "
                    f"before {_local(plan.cutoff, plan.timezone)}): {verb} "
                    f"{len(plan.recordings)} recordings and {len(plan.transcripts)} transcripts "
                    f"of {len(plan.call_ids)} calls"
                    + (
                        f" ({plan.skipped_live} of calls in progress left)"
                        if plan.skipped_live
                        else ""
                    )
                )
                for row in plan.recordings:
                    click.echo(f"  call {row.call_id} {row.started_at:%Y-%m-%d}: {row.path}")
            if not plans:
                click.echo("no store has a retention period (retention_days): nothing to do")
            if not apply_:
                if plans:
                    click.echo("dry run: nothing deleted; --apply deletes it")
                return
            runs = retention.apply_retention(
                session, recordings_dir=settings.recordings_dir, now=now, store_ids=wanted
            )
    finally:
        engine.dispose()
    for run in runs:
        click.echo(
            f"store {run.plan.store_id}: deleted {len(run.plan.recordings)} recordings "
            f"({run.files_removed} files, {run.bytes_freed} bytes; {run.files_missing} already "
            f"gone) and {len(run.plan.transcripts)} transcripts (audit log {run.audit_id})"
        )
