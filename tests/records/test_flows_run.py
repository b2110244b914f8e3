"""The foundation's promise end to end: the shipped flows, run against the demo store in the
real database, tell each demo caller the status of their own repair order."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from driveline.cli import main

WEDNESDAY_MORNING = "2026-11-25T10:00"  # store-local; the demo store is open

EXPECTED = {
    # caller ID as a person might type it -> words the IVR must say
    "(555) 020-0001": "is checked in and waiting for a technician",
    "555.020.0002": "is in the shop",
    "+1 555 020 0003": "A technician is working on your",
    "5550200004": "is ready for pickup",
}


@pytest.mark.parametrize("caller, says", EXPECTED.items())
def test_flows_run_speaks_the_callers_status(
    db_url: str, demo: dict[str, Any], fresh_settings: None, caller: str, says: str
) -> None:
    result = CliRunner().invoke(
        main,
        ["flows", "run", "main", "--caller", caller, "--input", "1", "--now", WEDNESDAY_MORNING],
        env={"DRIVELINE_DATABASE_URL": db_url, "DRIVELINE_FLOWS_DIR": "flows"},
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == 'IVR: "Thanks for calling Demo Chevrolet service."'
    assert lines[1].startswith('IVR: "Hi ')
    status_line = next(line for line in lines if says in line)
    assert status_line.startswith("IVR: ")
    assert lines[-1] == "ENDS: hangup"


def test_unknown_caller_is_asked_for_the_ro_number(
    db_url: str, demo: dict[str, Any], fresh_settings: None
) -> None:
    result = CliRunner().invoke(
        main,
        [
            "flows",
            "run",
            "main",
            "--caller",
            "+15550299999",
            "--input",
            "1",
            "--input",
            "500002#",
            "--now",
            WEDNESDAY_MORNING,
        ],
        env={"DRIVELINE_DATABASE_URL": db_url, "DRIVELINE_FLOWS_DIR": "flows"},
    )
    assert result.exit_code == 0, result.output
    assert 'IVR: "Hi ' not in result.output
    assert "repair order number" in result.output
    assert "is in the shop" in result.output
