"""Settings → a worker's endpoint: who may call it, what it may dial, the trunk's realm."""

from __future__ import annotations

import pytest

from ivr.config import Settings
from sip.cli import endpoint_config, trunk_host


@pytest.mark.parametrize(
    ("uri", "host"),
    [("sip:{number}@trunk.example:5060;transport=udp", "trunk.example"),
     ("sip:trunk.example", "trunk.example"), ("trunk.example:5060", "trunk.example"),
     ("sips:{number}@10.0.0.9", "10.0.0.9")],
)  # fmt: skip
def test_the_default_realm_is_the_trunk_host(uri: str, host: str) -> None:
    assert trunk_host(uri) == host


def test_a_worker_trusts_the_trunks_and_the_edge_and_nobody_else() -> None:
    settings = Settings(
        sip_trusted=["198.51.100.0/24"], edge_bind="10.0.0.5:5060", sip_bind="10.0.0.5:5060"
    )
    config = endpoint_config(settings, "127.0.0.1", 5070)
    assert config.trusts("198.51.100.7:5060") and config.trusts("10.0.0.5:5060")
    assert not config.trusts("203.0.113.9:5060") and not config.trusts("127.0.0.1:5060")


def test_trunk_credentials_go_to_the_configured_or_the_trunk_realm() -> None:
    base = dict(trunk_uri="sip:{number}@trunk.example", trunk_username="u", trunk_password="s3cr3t")
    auth = endpoint_config(Settings(**base), "127.0.0.1", 5070).trunk_auth
    assert auth is not None and (auth.username, auth.realm) == ("u", "trunk.example")
    assert "s3cr3t" not in repr(auth)  # the password stays out of logs and reprs
    named = endpoint_config(Settings(**base, trunk_realm="sip.carrier"), "127.0.0.1", 5070)
    assert named.trunk_auth is not None and named.trunk_auth.realm == "sip.carrier"
    assert "s3cr3t" not in repr(Settings(**base))  # SecretStr


def test_the_dial_rule_comes_from_the_settings() -> None:
    narrow = endpoint_config(Settings(dial_geographic=False, dial_allow=[r"^\+1202\d{7}$"]),
                             "127.0.0.1", 5070)  # fmt: skip
    assert narrow.dial_rule is not None
    assert narrow.dial_rule.allows("+12025550123") and not narrow.dial_rule.allows("+13125550123")
    with pytest.raises(ValueError, match="regular expression"):
        Settings(dial_allow=["("])
    with pytest.raises(ValueError, match="CIDR"):
        Settings(sip_trusted=["not-an-address"])
