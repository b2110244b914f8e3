"""`driveline` command line: one group; each part registers its own commands."""

from __future__ import annotations

import os

import click

from ivr.config import get_settings, hide_password
from ivr.logs import LogFormat, setup_logging


@click.group()
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


def _register() -> None:
    from api.cli import serve, tokens, users
    from ivr.cli_flows import flows
    from records.cli import call_writer, demo_data, import_file, integrations
    from records.morning_summary import morning_summary_command
    from sip.cli import sip
    from sip.dial import dial
    from sip.edge import edge, sip_ping
    from speech.cli import speech
    from transcription.cli import transcribe

    commands = (
        serve,
        sip,
        users,
        tokens,
        flows,
        demo_data,
        import_file,
        integrations,
        call_writer,
        dial,
        transcribe,
        speech,
        edge,
        sip_ping,
        morning_summary_command,
    )
    for command in commands:
        main.add_command(command)


_register()

if __name__ == "__main__":  # `python -m ivr.cli`: how `serve` starts its SIP worker process
    main()
