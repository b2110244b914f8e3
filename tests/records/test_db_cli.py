"""`driveline db upgrade` says which database it migrated without printing its password."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from driveline.cli import main


@pytest.mark.usefixtures("fresh_settings")
def test_db_upgrade_masks_the_password(pg_schema_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Trust authentication ignores the password, so the URL still reaches the database.
    url = pg_schema_url.replace("://postgres@", "://postgres:hunter2-secret@", 1)
    assert "hunter2-secret" in url
    monkeypatch.setenv("DRIVELINE_DATABASE_URL", url)
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "database at head: postgresql://postgres:***@127.0.0.1" in result.output
    assert "hunter2-secret" not in result.output
