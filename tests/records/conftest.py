"""Fixtures for the records tests (the database ones come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from ivr.config import get_settings
from records.demo import seed_demo


@pytest.fixture
def demo(engine: Engine) -> dict[str, Any]:
    """The demo store, seeded into this test's database."""
    return seed_demo(engine)


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    """CLI tests set DRIVELINE_* in the environment; get_settings() caches the first read."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
