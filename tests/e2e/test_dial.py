"""`driveline dial` (sip/dial.py) against the test worker: it hears the prompt, its key press
reaches the flow, and `--say` audio reaches a recording."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sip.media import _tone, _write_atomic
from tests.e2e.harness import REPO, WorkerProcess, wav_info

ECHO, SPEECH = "+15550100001", "+15550100006"


def dial(worker: WorkerProcess, number: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sip.dial", f"sip:{number}@127.0.0.1:{worker.port}", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=20,
    )


def timeline(output: str) -> list[str]:
    return [line.split("s  ", 1)[1] for line in output.splitlines() if "s  " in line[:12]]


def test_dial_hears_the_prompt_and_presses_a_key(worker: WorkerProcess, tmp_path: Path) -> None:
    heard = tmp_path / "heard.wav"
    start = len(worker.events)
    done = dial(worker, ECHO, "--from", "+15552010001", "--press", "1", "--save", str(heard),
                "--wait", "5", "--quiet", "0.5")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    gathered = worker.wait_for(lambda e: e["event"] == "gathered", start=start)
    assert gathered["digits"] == "1" and gathered["methods"] == ["rfc2833"]
    offered = worker.wait_for(lambda e: e["event"] == "offered", start=start)
    assert offered["caller"] == "+15552010001"
    steps = timeline(done.stdout)
    assert steps[0].startswith("INVITE sent")
    assert [s.split(":")[0] for s in steps[1:3]] == ["180 Ringing", "200 OK"]
    assert steps.index("first audio from the far end") < steps.index("pressed 1 (RFC 2833)")
    assert "BYE received (the far end hung up)" in steps  # the echo handler hangs up
    assert "INVITE → 200 OK" in done.stdout and "talk time" in done.stdout
    seconds, peak, _ = wav_info(heard)
    assert seconds > 1.0 and peak > 2000  # the prompt and "You pressed 1", not silence
    worker.wait_idle()


def test_dial_says_a_wav_into_the_call(worker: WorkerProcess, tmp_path: Path) -> None:
    speech = _write_atomic(tmp_path / "speech.wav", _tone(1.5, (300.0, 700.0), 12000))
    start = len(worker.events)
    done = dial(worker, SPEECH, "--say", str(speech), "--gap", "0.2", "--wait", "5")
    assert done.returncode == 0, done.stdout + done.stderr
    recorded = worker.wait_for(lambda e: e["event"] == "recorded", start=start)
    _, peak, _ = wav_info(recorded["path"])
    assert peak > 2000, "the dialler's audio did not reach the worker"
    assert any(s.startswith("saying ") for s in timeline(done.stdout))
    worker.wait_idle()
