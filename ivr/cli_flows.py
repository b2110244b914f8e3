"""`driveline flows check|run|test` (owned by the flow engine work)."""

import click


@click.group()
def flows() -> None:
    """Validate, run and test YAML call flows."""
