"""`driveline import` and `driveline demo-data` (owned by the records work)."""

import click


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def import_file(file: str) -> None:
    """Upsert stores, advisors, customers, phones, vehicles and repair orders from CSV or JSON."""
    raise click.ClickException("not implemented yet")


@click.command("demo-data")
def demo_data() -> None:
    """Create the demo store."""
    raise click.ClickException("not implemented yet")
