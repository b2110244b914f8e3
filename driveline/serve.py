"""`driveline serve`: the whole product on one box, as parts of one supervisor; `--demo` seeds
the demo store and prints how to try it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import click
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.auth import issue_token
from api.cli import migrated_engine
from api.server import ApiServer
from api.web.sessions import set_password
from driveline.retention import RetentionPart
from driveline.supervisor import Supervisor
from ivr.config import get_settings
from ivr.domain import Role
from records import queries
from records.call_writer import CallWriterPart
from records.db import session_factory
from records.models import User

DEMO_ADMIN = "admin"
DEMO_PASSWORD = "demo-password"  # the demo users' web-page password (README); local demos only


@dataclass
class DemoAccess:
    """What `serve --demo` prints: the seed summary, what it did to users, a token per role."""

    seeded: dict[str, Any] | None
    tokens: dict[str, str] = field(default_factory=dict)  # username -> token
    notes: list[str] = field(default_factory=list)


def prepare_demo(engine: Engine) -> DemoAccess:
    """Seed the demo store into an empty database, then issue an admin and an advisor token.

    The demo admin is created (with `DEMO_PASSWORD`) only when the database has no admin: an
    existing admin's password is never touched, so `--demo` against a real database opens no
    way in. Tokens are issued on every run: only their hashes are kept, so old ones cannot be
    shown.
    """
    sessions = session_factory(engine)
    with sessions() as session:
        empty = not queries.any_store(session)
        had_admin = queries.first_user_with_role(session, role=Role.admin) is not None
    seeded = None
    if empty:
        from records.demo import seed_demo  # lazily: only --demo needs the demo data module

        seeded = seed_demo(engine)
    access = DemoAccess(seeded=seeded)
    with sessions() as session:
        admin = _demo_admin(session, had_admin, access.notes)
        if admin is not None:
            access.tokens[admin.username] = issue_token(session, admin, "demo")
        _demo_passwords(session)
        advisor = queries.first_user_with_role(session, role=Role.advisor)
        if advisor is not None:
            access.tokens[advisor.username] = issue_token(session, advisor, "demo")
    return access


def _demo_admin(session: Session, had_admin: bool, notes: list[str]) -> User | None:
    """The admin to issue a demo token for. Only one this run created (the seed's, else
    `DEMO_ADMIN`) gets `DEMO_PASSWORD`; an admin that was there before is left as it was."""
    admin = queries.first_user_with_role(session, role=Role.admin)
    if had_admin and admin is not None:
        notes.append(f"admin {admin.username!r} exists: no demo admin created, no password changed")
        return admin
    if admin is None:
        if queries.get_user_by_username(session, username=DEMO_ADMIN) is not None:
            notes.append(f"no admin, and the name {DEMO_ADMIN!r} is taken: no demo admin created")
            return None
        admin = queries.create_user(
            session, username=DEMO_ADMIN, name="Demo Admin", role=Role.admin, stores=[]
        )
    if admin.password_hash is None:
        set_password(session, admin, DEMO_PASSWORD)
    notes.append(f"created demo admin {admin.username!r}, password {DEMO_PASSWORD!r}")
    return admin


def _demo_passwords(session: Session) -> None:
    """The demo store's own advisors and managers (`DEMO-U-*`) log in to the web pages with
    `DEMO_PASSWORD`, unless they have a password already; nobody else is touched, and no
    admin (only `prepare_demo` gives one it just created the demo password)."""
    for user in queries.list_users(session, limit=1000, offset=0):
        demo_staff = (user.dms_id or "").startswith("DEMO-U-") and user.role != Role.admin
        if demo_staff and user.password_hash is None:
            set_password(session, user, DEMO_PASSWORD)


@click.command()
@click.option("--demo", is_flag=True, help="Seed the demo store if the database is empty.")
@click.option("--host", default=None, help="Listen address (default: from http_bind).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Listen port.")
@click.option("--sip/--no-sip", default=True, help="Run a SIP worker on sip_bind (default on).")
@click.option(
    "--sip-workers",
    type=click.IntRange(1, 64),
    default=None,
    help="SIP worker processes (default sip_workers); more than 1 puts Kamailio on sip_bind "
    "in front of them (`driveline edge`).",
)
@click.option(
    "--transcribe/--no-transcribe",
    default=True,
    help="Run a transcription worker in this process (default on; `driveline transcribe` adds).",
)
def serve(
    demo: bool,
    host: str | None,
    port: int | None,
    sip: bool,
    sip_workers: int | None,
    transcribe: bool,
) -> None:
    """Run Driveline on one box: call writer, SIP worker, transcription worker and API."""
    from api.app import create_app  # FastAPI is only needed by this command
    from ivr.flow.startup import load_or_exit

    settings = get_settings()
    flow_set = load_or_exit(settings.flows_dir, refusing="driveline serve")
    click.echo(f"flows: {', '.join(sorted(flow_set.flows))} (from {settings.flows_dir})")
    engine = migrated_engine()
    host = host or settings.http_host
    port = settings.http_port if port is None else port
    if demo:
        access = prepare_demo(engine)
        for note in access.notes:
            click.echo(note)
        if access.seeded is not None:
            counts = access.seeded.get("counts", access.seeded)
            click.echo(f"demo data: {counts}")
            for status, phones in access.seeded.get("samples", {}).items():
                click.echo(f"  call in as {', '.join(phones)}: {status}")
        base = f"http://{host}:{port}/api/v1"
        for username, token in access.tokens.items():
            click.echo(f"token for {username}: {token}")
            click.echo(f'  curl -H "Authorization: Bearer {token}" {base}/me')
        click.echo(f"API docs: http://{host}:{port}/docs")

    supervisor = Supervisor()
    supervisor.add(CallWriterPart(engine, settings.redis_url))
    if transcribe:
        from transcription.worker import TranscriberPart

        supervisor.add(
            TranscriberPart(
                engine,
                settings.redis_url,
                settings.recordings_dir,
                settings.stt_model_dir,
                settings.stt_threads,
            )
        )
    if sip:
        from speech.recognizer import SpeechPart  # speech gathers: one model for every worker

        supervisor.add(SpeechPart(settings.redis_url, settings.stt_model_dir, settings.stt_threads))
        from driveline.pool import serve_parts

        count = sip_workers or settings.sip_workers
        click.echo(f"SIP: answering on {settings.sip_bind} (udp and tcp), {count} worker(s)")
        for part in serve_parts(settings, count, settings.recordings_dir.parent / "edge"):
            supervisor.add(part)
    if settings.import_watch_dir is not None:
        from events.bus import EventBus
        from records.drop_folder import DropFolder, DropFolderPart

        folder = DropFolder(
            engine, settings.import_watch_dir, bus=EventBus(settings.redis_url),
            region=settings.default_region,
        )  # fmt: skip
        click.echo(f"DMS drop folder: {settings.import_watch_dir}")
        supervisor.add(DropFolderPart(folder, settings.import_watch_interval_s))
    if settings.morning_webhook_url:
        from records.morning_summary import MorningSummaryPart

        supervisor.add(MorningSummaryPart(engine, settings))
    supervisor.add(RetentionPart(engine, settings))  # stores without retention_days: no-op
    supervisor.add(ApiServer(create_app(settings, engine=engine), host=host, port=port))
    raise SystemExit(supervisor.run())
