"""`driveline flows run --input wav:FILE`: a recording is recognized by the local model (real
tiny.en) and routes the shipped main menu; the script shows what was heard, the intent and its
score."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from bench.speech_eval import DEFAULT_CACHE, render
from driveline.flows import _run
from ivr.flow.fakes import FakeRecords
from ivr.flow.startup import load_or_exit
from tests.ivr.conftest import GIVEN


async def test_a_wav_input_is_heard_and_routes_the_menu(capsys: pytest.CaptureFixture[str]) -> None:
    clip = render("I want to pick up my car.", "piper", DEFAULT_CACHE)
    records = FakeRecords.from_dict(GIVEN)
    flows = load_or_exit(Path("flows"))
    await _run(flows, records, "main", "+15552010001", [f"wav:{clip}", "1"], None, 1, True,
               datetime(2026, 11, 25, 10, 0))  # fmt: skip
    script = capsys.readouterr().out
    assert "main.menu" in script and "CALLER: says" in script
    assert "(intent pickup (0." in script, script
    assert "pickup_confirm.ask_time" in script and "ENDS: hangup" in script


async def test_a_missing_wav_is_refused_before_the_call() -> None:
    from click.testing import CliRunner

    from driveline.cli import main

    result = CliRunner().invoke(
        main, ["flows", "run", "main", "--caller", "5552010001", "--input", "wav:/nope.wav"]
    )
    assert result.exit_code == 2 and "no such WAV file: /nope.wav" in result.output


async def test_a_spoken_request_shows_its_intent_score_and_slots(
    capsys: pytest.CaptureFixture[str],
) -> None:
    customer = {
        **GIVEN["customer"],
        "repair_orders": [
            {"number": "4711", "status": "Ready for Pickup", "vehicle": "2019 Chevrolet Tahoe"},
            {"number": "4712", "status": "Tech Working", "vehicle": "2020 Chevrolet Silverado"},
        ],
    }
    records = FakeRecords.from_dict({**GIVEN, "customer": customer})
    flows = load_or_exit(Path("flows"))
    await _run(flows, records, "main", "+15552010001",
               ["I'll pick up my Tahoe tomorrow around nine"], None, 1, False,
               datetime(2026, 11, 25, 10, 0))  # fmt: skip
    script = capsys.readouterr().out
    assert (
        "(slots: time tomorrow around 9 AM (2026-11-26 09:00), vehicle 2019 Chevrolet Tahoe)"
        in (script)
    ), script
    assert "(intent pickup (0." in script
    assert "we'll see you tomorrow around 9 AM for your 2019 Chevrolet Tahoe" in script
    assert records.thread_entries[-1]["data"]["pickup_at"] == "2026-11-26T09:00:00-05:00"
