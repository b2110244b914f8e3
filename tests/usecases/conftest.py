"""Use-case tests run on the API tests' two-store world (SQLite and PostgreSQL) and real Redis,
calling the functions directly: no HTTP, so a refusal is the use case's own."""

from __future__ import annotations

from tests.api import conftest as api_fixtures
from tests.records import conftest as records_fixtures

world = api_fixtures.world  # the two-store world, shared
bus = api_fixtures.bus  # the Redis event bus, shared
fresh_settings = records_fixtures.fresh_settings  # CLI tests read DRIVELINE_* afresh
