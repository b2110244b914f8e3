"""`driveline import` and `driveline demo-data`: both migrate the database first, so they work
on a fresh install without a separate `driveline db upgrade`."""

from __future__ import annotations

import click
from sqlalchemy import Engine

from ivr.config import get_settings


def _engine() -> Engine:
    from records.db import make_engine, upgrade

    engine = make_engine(get_settings().database_url)
    upgrade(engine)
    return engine


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def import_file(file: str) -> None:
    """Upsert stores, advisors, customers, phones, vehicles and repair orders from CSV or JSON.

    The row format is described in records/IMPORT.md. Bad rows are listed with their row
    number and skipped; the exit code is 1 if any row failed. A changed RO status has the
    status webhook's effects (thread entry, promises, the pickup call).
    """
    from events.bus import EventBus
    from records.importer import ImportFileError, import_path

    settings = get_settings()
    engine = _engine()
    bus = EventBus(settings.redis_url)  # status changes are announced, pickup calls queued
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

    settings = get_settings()
    engine = _engine()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"call writer {consumer}: {settings.redis_url} → {engine.url.render_as_string()}")
    try:
        run_call_writer(engine, settings.redis_url, consumer_name=consumer, stop_event=stop)
    finally:
        engine.dispose()
