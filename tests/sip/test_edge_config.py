"""`driveline edge`'s rendered Kamailio configuration: Kamailio accepts it, and the lists say
what the settings say."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
from click.testing import CliRunner

from driveline.cli import main
from ivr.config import Settings
from sip.edge import check, render, render_template, worker_addresses
from tests.e2e.stack import kamailio_path


def test_the_rendered_config_passes_kamailio_check(tmp_path: Path) -> None:
    kamailio = kamailio_path()
    settings = Settings(
        sip_bind="127.0.0.1:15060",
        edge_workers=["127.0.0.1:15070", "10.0.0.7:5060"],
        sip_trusted=["203.0.113.10", "198.51.100.0/24"],
    )
    files = render(settings, tmp_path / "run")
    result = check(files, kamailio)
    assert result.returncode == 0, result.stderr[-3000:]
    dispatcher = (files.run_dir / "dispatcher.list").read_text().splitlines()[1:]
    assert dispatcher == [
        "1 sip:127.0.0.1:15070 0 0 duid=w1",
        "1 sip:10.0.0.7:5060 0 0 duid=w2",
    ]
    addresses = (files.run_dir / "address.list").read_text().splitlines()[1:]
    assert addresses == ["1 203.0.113.10 32 0", "1 198.51.100.0 24 0"]
    config = files.config.read_text()
    assert "listen=udp:127.0.0.1:15060\n" in config
    assert f'"unix:{files.run_dir}/kamailio_ctl"' in config
    assert "{{" not in config


def test_a_broken_config_fails_the_check(tmp_path: Path) -> None:
    kamailio = kamailio_path()
    files = render(Settings(), tmp_path)
    files.config.write_text(files.config.read_text().replace("request_route {", "request_route "))
    assert check(files, kamailio).returncode != 0


def test_local_workers_follow_the_base_port() -> None:
    settings = Settings(sip_workers=3, sip_worker_base_port=6000)
    assert worker_addresses(settings) == ["127.0.0.1:6000", "127.0.0.1:6001", "127.0.0.1:6002"]
    assert worker_addresses(settings, 1) == ["127.0.0.1:6000"]
    listed = Settings(edge_workers=["10.0.0.7:5060"])
    assert worker_addresses(listed) == ["10.0.0.7:5060"]


def test_template_values_must_all_be_given() -> None:
    with pytest.raises(jinja2.UndefinedError, match="is undefined"):
        render_template({"log_level": 2, "children": 4})


def test_bad_edge_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="edge_workers"):
        Settings(edge_workers=["no-port"])
    with pytest.raises(ValueError):
        render(Settings(sip_trusted=["not-an-address"]), tmp_path)


def test_edge_check_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kamailio_path()
    monkeypatch.setenv("DRIVELINE_SIP_BIND", "127.0.0.1:15061")
    monkeypatch.setenv("DRIVELINE_SIP_TRUSTED", '["not-an-address"]')
    from ivr.config import get_settings

    get_settings.cache_clear()
    try:
        bad = CliRunner().invoke(main, ["edge", "--check", "--run-dir", str(tmp_path)])
        assert bad.exit_code != 0 and "sip_trusted" in bad.output
        monkeypatch.setenv("DRIVELINE_SIP_TRUSTED", '["192.0.2.0/24"]')
        get_settings.cache_clear()
        good = CliRunner().invoke(main, ["edge", "--check", "--run-dir", str(tmp_path)])
        assert good.exit_code == 0, good.output
        assert "config OK" in good.output
    finally:
        get_settings.cache_clear()
