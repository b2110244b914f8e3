from pathlib import Path

import pytest
from pydantic import ValidationError

from ivr.config import Settings


def test_defaults_are_the_embedded_single_box() -> None:
    s = Settings()
    assert s.database_url.startswith("sqlite:///var/")
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.sip_bind == "127.0.0.1:5060"
    assert (s.http_host, s.http_port) == ("127.0.0.1", 8000)


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIVELINE_HTTP_BIND", "0.0.0.0:9000")
    monkeypatch.setenv("DRIVELINE_RECORDINGS_DIR", "/srv/rec")
    s = Settings()
    assert s.http_port == 9000
    assert s.recordings_dir == Path("/srv/rec")


def test_toml_file_is_read_and_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "driveline.toml"
    cfg.write_text('sip_bind = "127.0.0.2:5070"\nredis_url = "redis://10.0.0.1:6379/1"\n')
    monkeypatch.setenv("DRIVELINE_CONFIG", str(cfg))
    monkeypatch.setenv("DRIVELINE_REDIS_URL", "redis://127.0.0.1:6379/2")
    s = Settings()
    assert s.sip_bind == "127.0.0.2:5070"
    assert s.redis_url == "redis://127.0.0.1:6379/2"


@pytest.mark.parametrize(
    "name, value",
    [("DRIVELINE_SIP_BIND", "5060"), ("DRIVELINE_DATABASE_URL", "mysql://x")],
)
def test_bad_values_are_refused_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.removeprefix("DRIVELINE_").lower()):
        Settings()


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql+psycopg://app:p%40ss@db:5432/x", "postgresql+psycopg://app:***@db:5432/x"),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://cache:6379/0?password=s3cret&db=1", "redis://cache:6379/0?password=***&db=1"),
        ("sqlite:///var/driveline.db", "sqlite:///var/driveline.db"),
        ("postgresql://app@db/x", "postgresql://app@db/x"),
    ],
)
def test_urls_are_shown_without_their_password(url: str, shown: str) -> None:
    from ivr.config import hide_password

    assert hide_password(url) == shown
