"""`driveline` command line: one group; each part registers its own commands."""

from __future__ import annotations

import logging

import click

from ivr.config import get_settings


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """Driveline: IVR and call-center server for dealership service departments."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply Alembic migrations to the configured database."""
    from records.db import make_engine, upgrade

    settings = get_settings()
    upgrade(make_engine(settings.database_url))
    click.echo(f"database at head: {settings.database_url}")


def _register() -> None:
    from api.cli import serve, tokens, users
    from ivr.cli_flows import flows
    from records.cli import call_writer, demo_data, import_file
    from sip.cli import sip
    from sip.dial import dial

    commands = (serve, sip, users, tokens, flows, demo_data, import_file, call_writer, dial)
    for command in commands:
        main.add_command(command)


_register()

if __name__ == "__main__":  # `python -m ivr.cli`: how `serve` starts its SIP worker process
    main()
