"""The flows Driveline ships, their YAML flow tests, and the `driveline flows` commands."""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime
from pathlib import Path

from click.testing import CliRunner

from driveline.flows import _run, flows
from ivr.flow import load_flows
from ivr.flow.fakes import FakeRecords
from tests.ivr.conftest import GIVEN

SHIPPED = Path(__file__).resolve().parents[2] / "flows"


def test_shipped_flows_load() -> None:
    flow_set = load_flows(SHIPPED)
    assert {"main", "status_check", "pickup_confirm", "advisor"} <= set(flow_set.flows)


def test_flows_check_ok() -> None:
    result = CliRunner().invoke(flows, ["check", str(SHIPPED)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: 9 flows")


def test_flows_check_reports_file_line_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "main.yaml").write_text("name: main\nstart: a\nsteps:\n  a: {say: hi, next: b}\n")
    result = CliRunner().invoke(flows, ["check", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output == (
        f"{tmp_path}/main.yaml:4: steps.a.next: no step named 'b' in flow main\n"
    )


def test_shipped_flow_tests_pass() -> None:
    result = CliRunner().invoke(flows, ["test", "--flows-dir", str(SHIPPED)])
    assert result.exit_code == 0, result.output
    assert " 0 failed" in result.output
    assert "FAIL" not in result.output


def test_flows_test_reports_a_failing_case(tmp_path: Path) -> None:
    shutil.copytree(SHIPPED, tmp_path / "flows")
    (tmp_path / "flows" / "tests" / "broken.yaml").write_text(
        "cases:\n"
        "  - name: expects the wrong greeting\n"
        "    inputs: [hangup]\n"
        "    expect: {said: Welcome to the moon, transfer: Nobody}\n"
    )
    result = CliRunner().invoke(flows, ["test", "--flows-dir", str(tmp_path / "flows")])
    assert result.exit_code == 1
    assert "FAIL  broken.yaml: expects the wrong greeting" in result.output
    assert '- expected the IVR to say "Welcome to the moon"' in result.output
    assert "+ got caller hung up" in result.output
    assert "1 failed" in result.output


def test_flows_run_prints_the_call_as_a_script(capsys: object) -> None:
    records = FakeRecords.from_dict({**GIVEN, "users": GIVEN["users"]})
    asyncio.run(
        _run(
            load_flows(SHIPPED),
            records,
            "main",
            "+15552010001",
            ["0", "9"],
            None,
            1,
            at=datetime(2026, 11, 25, 12, 0),
        )  # a Wednesday noon: open
    )
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    lines = out.splitlines()
    assert lines[0].startswith('IVR: "Thanks for calling Hometown Motors service.')
    assert "CALLER: presses 0" in lines
    assert "ENDS: transfer to Alice Smith (sip:alice@pbx)" in lines
    assert lines[-1] == "(inputs not used: 9)"


def test_flows_run_shows_the_intent_and_score_of_a_request(capsys: object) -> None:
    """`driveline flows run main --input "I'm calling to check on my truck"`."""
    records = FakeRecords.from_dict({**GIVEN, "users": GIVEN["users"]})
    asyncio.run(
        _run(
            load_flows(SHIPPED),
            records,
            "main",
            "+15552010001",
            ["I'm calling to check on my truck", "hangup"],
            None,
            1,
            at=datetime(2026, 11, 25, 12, 0),
        )
    )
    lines = capsys.readouterr().out.splitlines()  # type: ignore[attr-defined]
    assert 'IVR: "How can I help you today?"' in lines
    assert 'CALLER: says "I\'m calling to check on my truck"' in lines
    (note,) = [line for line in lines if line.startswith("  (intent ")]
    assert note.startswith("  (intent status (0.") and "scores status 0." in note
