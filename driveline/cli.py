"""`driveline` command line: one group; each part owns its commands, loaded when run."""

from __future__ import annotations

import importlib
import os

import click

from ivr.config import get_settings, hide_password
from ivr.logs import LogFormat, setup_logging

# Each part's commands, imported only when run: a SIP worker process (`driveline sip`) then
# loads the SIP side alone, never FastAPI, the web pages or Whisper (tests/test_process_imports.py).
COMMANDS: dict[str, str] = {
    "serve": "driveline.serve:serve",
    "users": "api.cli:users",
    "tokens": "api.cli:tokens",
    "sip": "driveline.pool:sip",
    "dial": "sip.dial:dial",
    "edge": "sip.edge:edge",
    "sip-ping": "sip.edge:sip_ping",
    "flows": "driveline.flows:flows",
    "demo-data": "records.cli:demo_data",
    "import": "records.cli:import_file",
    "integrations": "records.cli:integrations",
    "call-writer": "records.cli:call_writer",
    "morning-summary": "records.morning_summary:morning_summary_command",
    "retention": "driveline.retention:retention_command",
    "transcribe": "transcription.cli:transcribe",
    "speech": "speech.cli:speech",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *COMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return super().get_command(ctx, name)
        module, _, attr = COMMANDS[name].partition(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command


@click.group(cls=_LazyGroup)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Log lines as text or JSON (with the call id); default: the log_format setting.",
)
def main(verbose: bool, log_format: LogFormat | None) -> None:
    """Driveline: IVR and call-center server for dealership service departments."""
    if log_format is not None:
        os.environ["DRIVELINE_LOG_FORMAT"] = log_format  # processes we start log alike
    else:
        try:
            log_format = get_settings().log_format
        except ValueError:  # bad settings: the command itself reports them
            log_format = "text"
    setup_logging(log_format, verbose=verbose)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply Alembic migrations to the configured database."""
    from records.db import make_engine, upgrade

    settings = get_settings()
    upgrade(make_engine(settings.database_url))
    click.echo(f"database at head: {hide_password(settings.database_url)}")
