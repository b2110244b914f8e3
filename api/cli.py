"""`driveline serve`, `driveline users`, `driveline tokens`."""

import click


@click.command()
@click.option("--demo", is_flag=True, help="Seed the demo store if the database is empty.")
def serve(demo: bool) -> None:
    """Run Driveline: API (and, in later issues, SIP and transcription workers)."""
    raise click.ClickException("not implemented yet")


@click.group()
def users() -> None:
    """Manage users (admin)."""


@click.group()
def tokens() -> None:
    """Manage API tokens."""
