"""The hand-maintained migration must build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Engine, MetaData, String

from records.db import in_models
from records.models import NAMING, Base


def _diffs(engine: Engine, metadata: MetaData = Base.metadata) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_name": in_models,
            },
        )
        return list(compare_metadata(context, metadata))


def test_migration_matches_models(engine: Engine) -> None:
    """`engine` is migrated with `records.db.upgrade` (tests/conftest.py) on both databases."""
    assert _diffs(engine) == []


def test_the_comparison_notices_a_drift(engine: Engine) -> None:
    """Guard against a comparison that can never fail: a column only the models have shows up.
    Works on a copy of the metadata so the real models stay untouched."""
    copy = MetaData(naming_convention=NAMING)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(copy)
    copy.tables["stores"].append_column(Column("drift_probe", String(10)))
    diffs = _diffs(engine, copy)
    assert len(diffs) == 1 and "drift_probe" in repr(diffs[0])
