"""Alembic environment: the engine comes from records.db (or DRIVELINE_DATABASE_URL)."""

from __future__ import annotations

from alembic import context

from records.db import in_models, make_engine
from records.models import Base

config = context.config


def _engine():  # type: ignore[no-untyped-def]
    engine = config.attributes.get("engine")
    if engine is None:
        from ivr.config import get_settings

        engine = make_engine(get_settings().database_url)
    return engine


def run_migrations_online() -> None:
    engine = _engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_name=in_models,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
