"""The hand-maintained migration must build exactly the schema the models describe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Engine, MetaData, String, select, text
from sqlalchemy.orm import Session

from records.db import alembic_config, in_models, upgrade
from records.models import NAMING, ApiToken, Base


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


def test_tokens_that_exist_at_the_upgrade_expire_90_days_after_it(engine: Engine) -> None:
    """0006 gives every existing token an expiry (none expires at once, none lives forever)."""
    command.downgrade(alembic_config(engine), "0005")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (username, name, role, active, groups, created_at)"
                " VALUES ('old', 'Old', 'admin', true, '[]', :now)"
            ),
            {"now": datetime(2026, 1, 1)},
        )
        conn.execute(
            text(
                "INSERT INTO api_tokens (user_id, name, token_sha256, created_at)"
                " SELECT id, 'legacy', :sha, :now FROM users WHERE username = 'old'"
            ),
            {"sha": "a" * 64, "now": datetime(2026, 1, 1)},
        )
    before = datetime.now(UTC)
    upgrade(engine)
    with Session(engine) as session:
        token = session.scalars(select(ApiToken)).one()
    assert before + timedelta(days=90) <= token.expires_at <= datetime.now(UTC) + timedelta(days=90)
    assert _diffs(engine) == []
