"""`driveline import` and `driveline demo-data`: both migrate the database first, so they work
on a fresh install without a separate `driveline db upgrade`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Engine

from ivr.config import get_settings, hide_password


def _engine() -> Engine:
    from records.db import make_engine, upgrade

    engine = make_engine(get_settings().database_url)
    upgrade(engine)
    return engine


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False), required=False)
@click.option(
    "--watch",
    "watch_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A DMS drop folder: import each CSV/JSON file dropped there once, moving it to "
    "done/ or failed/ beside its report (records/drop_folder.py).",
)
@click.option("--interval", type=click.FloatRange(0.1), default=10.0, show_default=True,
              help="--watch: seconds between scans.")  # fmt: skip
@click.option("--once", is_flag=True, help="--watch: one scan of what has settled, then exit.")
def import_file(file: str | None, watch_dir: Path | None, interval: float, once: bool) -> None:
    """Upsert stores, advisors, customers, phones, vehicles and repair orders from CSV or JSON.

    The row format is described in records/IMPORT.md. Bad rows are listed with their row
    number and skipped; the exit code is 1 if any row failed. A changed RO status has the
    status webhook's effects (thread entry, promises, the pickup call).
    """
    from events.bus import EventBus
    from records.importer import ImportFileError, import_path

    if (file is None) == (watch_dir is None):
        raise click.UsageError("give a FILE to import, or --watch DIR")
    settings = get_settings()
    engine = _engine()
    bus = EventBus(settings.redis_url)  # status changes are announced, pickup calls queued
    try:
        if watch_dir is not None:
            _watch(engine, bus, watch_dir, interval, once, settings.default_region)
            return
        assert file is not None
        try:
            report = import_path(engine, file, region=settings.default_region, bus=bus)
        except ImportFileError as exc:
            raise click.ClickException(str(exc)) from None
    finally:
        bus.close()
        engine.dispose()
    for error in report.errors:
        click.echo(error, err=True)
    for line in report.summary_lines():
        click.echo(line)
    if not report.ok:
        raise SystemExit(1)


def _watch(
    engine: Engine, bus: Any, directory: Path, interval: float, once: bool, region: str
) -> None:
    from records.drop_folder import DropFolder

    folder = DropFolder(engine, directory, bus=bus, region=region, settle_s=0 if once else 2.0)
    click.echo(f"watching {directory} every {interval:g}s (done/, failed/ beside it)")
    while True:
        for item in folder.scan_once():
            click.echo(f"{item.name}: {item.outcome} → {item.moved_to} ({item.report.name})")
        if once:
            return
        time.sleep(interval)


@click.command("demo-data")
@click.option("--reset", is_flag=True, help="Delete the demo store first (refreshes its times).")
def demo_data(reset: bool) -> None:
    """Create the demo store "Demo Chevrolet" with staff, 200 customers and repair orders."""
    from records.demo import seed_demo

    engine = _engine()
    try:
        summary = seed_demo(engine, reset=reset)
    finally:
        engine.dispose()
    store = summary["store"]
    verb = "created" if summary["created"] else "already present (use --reset to re-seed)"
    click.echo(f"{store['name']} (store {store['id']}, DID {', '.join(store['dids'])}): {verb}")
    click.echo("  " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in summary["counts"].items()))
    click.echo("staff:")
    for user in summary["users"]:
        contact = " ".join(x for x in (user["phone"], user["contact"]) if x)
        click.echo(f"  {user['username']:<8} {user['role']:<8} {contact}")
    click.echo("call in as (caller ID → open repair order status):")
    for status, phones in summary["samples"].items():
        click.echo(f"  {status + ':':<22} {', '.join(phones)}")


@click.command("call-writer")
@click.option(
    "--consumer",
    default="call-writer",
    show_default=True,
    help="Consumer name in the Redis group; keep it stable so a restart re-reads its pending.",
)
def call_writer(consumer: str) -> None:
    """Write call events from Redis into the database (calls, thread entries, callbacks).

    Run exactly one per database: it is the single writer SIP workers hand their call records
    to. Stops on Ctrl-C / SIGTERM; anything read but not yet written is re-read on restart.
    """
    import signal
    import threading

    from records.call_writer import run_call_writer
    from records.db import make_engine, upgrade_when_reachable

    settings = get_settings()
    engine = make_engine(settings.database_url)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    redis, db = hide_password(settings.redis_url), hide_password(settings.database_url)
    click.echo(f"call writer {consumer}: {redis} → {db}")
    try:
        if upgrade_when_reachable(engine, stop):  # started during an outage: wait it out
            run_call_writer(engine, settings.redis_url, consumer_name=consumer, stop_event=stop)
    finally:
        engine.dispose()


@click.group()
def integrations() -> None:
    """Webhook credentials for a store's DMS (admin): a key id and a signing secret."""


@integrations.command("add")
@click.argument("name")
@click.option("--store", "store_dms_id", required=True, metavar="DMS_ID", help="The store.")
def integrations_add(name: str, store_dms_id: str) -> None:
    """Make an integration NAME for a store and print its key id and secret (only this once)."""
    from records import queries
    from records.db import session_factory
    from usecases import integrations as usecase
    from usecases.errors import UseCaseError

    engine = _engine()
    try:
        with session_factory(engine)() as session:
            store = queries.stores_by_dms_ids(session, dms_ids=[store_dms_id]).get(store_dms_id)
            if store is None:
                raise click.BadParameter(f"no such store: {store_dms_id}", param_hint="--store")
            try:
                made = usecase.add_integration(session, store_id=store.id, name=name)
            except UseCaseError as exc:
                raise click.ClickException(exc.message) from None
            click.echo(f"integration {made.integration.name!r} for {store.name}")
            click.echo(f"key id: {made.integration.key_id}")
            click.echo(f"secret: {made.secret}")
            click.echo("The secret is not shown again: give it to the DMS integrator now.")
    finally:
        engine.dispose()


@integrations.command("list")
def integrations_list() -> None:
    """Every integration with its store, key id and state (never the secret)."""
    from records import integrations as rows
    from records.db import session_factory

    engine = _engine()
    try:
        with session_factory(engine)() as session:
            for i in rows.list_all(session):
                state = f"revoked {i.revoked_at:%Y-%m-%d}" if i.revoked_at else "active"
                used = f"last used {i.last_used_at:%Y-%m-%d %H:%M}" if i.last_used_at else "unused"
                click.echo(f"{i.key_id}  {i.store.dms_id}  {i.name}  {state}  {used}")
    finally:
        engine.dispose()


@integrations.command("revoke")
@click.argument("key_id")
def integrations_revoke(key_id: str) -> None:
    """Refuse KEY_ID's signatures from now on."""
    from records import integrations as rows
    from records.db import session_factory
    from usecases import integrations as usecase

    engine = _engine()
    try:
        with session_factory(engine)() as session:
            found = rows.active_by_key(session, key_id)
            if found is None:
                raise click.ClickException(f"no active integration {key_id!r}")
            usecase.revoke_integration(session, integration_id=found.id)
            click.echo(f"revoked {key_id} ({found.name})")
    finally:
        engine.dispose()
