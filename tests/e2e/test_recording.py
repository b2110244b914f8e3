"""Leg recordings on real calls: consent first, layout, checksums, and complete WAVs however the
call ends (BYE mid-prompt, RTP timeout, the worker stopped with SIGTERM)."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import (
    RtpPeer,
    Sipp,
    WorkerProcess,
    loud_packets,
    require_tools,
    wav_info,
)

RECORD = "+15550100004"
CONSENT_HOLD, RECORDED_HOLD = "+15550100008", "+15550100009"
CONSENT_SECONDS = 0.84  # FakeTTS: "Recorded call." at 60 ms a character
LAYOUT = re.compile(r"recordings/\d{4}/\d{2}/\d{2}/[0-9a-f-]{36}-(caller|advisor|voicemail)\.wav$")


@pytest.fixture
def caller_phone() -> Iterator[RtpPeer]:
    peer = RtpPeer()
    try:
        yield peer
    finally:
        peer.close()


def recordings_of(worker: WorkerProcess, prefix: str) -> list[dict]:
    (event,) = worker.wait_for_all(lambda e: e["event"] == "recordings", prefix, 1)
    for rec in event["recordings"]:
        assert LAYOUT.search(rec["path"]), rec["path"]
        seconds, _, digest = wav_info(rec["path"])  # asserts a finalized header
        assert digest == rec["sha256"]
        assert seconds == pytest.approx(rec["duration_s"])
    return event["recordings"]


def test_consent_plays_before_the_caller_leg_is_recorded_and_bye_mid_prompt_keeps_it(
    worker: WorkerProcess, sipp: Sipp, caller_phone: RtpPeer
) -> None:
    result = sipp.run("hold.xml", service=CONSENT_HOLD, call_id="consent", hold_ms=2500,
                      rtp_sink=caller_phone.port)  # fmt: skip
    assert result.returncode == 0, result.describe()
    worker.wait_for(lambda e: e["event"] == "hung_up" and e["call"].startswith("consent"))
    (rec,) = recordings_of(worker, "consent")
    assert (rec["role"], rec["kind"]) == ("caller", "call")
    # recording starts once the announcement has played: the call minus the consent prompt
    assert 2.5 - CONSENT_SECONDS - 0.5 < rec["duration_s"] < 2.5 - CONSENT_SECONDS + 0.4
    _, peak, _ = wav_info(rec["path"])
    assert peak > 2000  # the caller's speech
    assert len(loud_packets(caller_phone.drain())) > 20  # the announcement and the prompt
    worker.wait_idle()


def test_voicemail_is_its_own_recording(worker: WorkerProcess, sipp: Sipp) -> None:
    result = sipp.run("record.xml", service=RECORD, call_id="vm")
    assert result.returncode == 0, result.describe()
    recorded = worker.wait_for(lambda e: e["event"] == "recorded" and e["call"].startswith("vm"))
    (rec,) = recordings_of(worker, "vm")
    assert (rec["role"], rec["kind"]) == ("caller", "voicemail")
    assert rec["path"] == recorded["path"] and rec["path"].endswith("-voicemail.wav")
    worker.wait_idle()


@pytest.fixture
def own_worker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WorkerProcess]:
    require_tools()
    process = WorkerProcess(tmp_path, *getattr(request, "param", ()))
    try:
        yield process
    finally:
        process.close()


@pytest.mark.parametrize("own_worker", [("--rtp-timeout", "1.0")], indirect=True)
def test_rtp_timeout_leaves_a_complete_recording(own_worker: WorkerProcess, tmp_path: Path) -> None:
    sipp = Sipp(tmp_path, f"127.0.0.1:{own_worker.port}")
    result = sipp.run("wait_bye.xml", service=RECORDED_HOLD, call_id="quiet", timeout=8)
    assert result.returncode == 0, result.describe()
    hung_up = own_worker.wait_for(lambda e: e["event"] == "hung_up")
    assert hung_up["rtp_timeout"] is True
    (rec,) = recordings_of(own_worker, "quiet")
    assert 0.5 < rec["duration_s"] < 2.5
    own_worker.wait_idle()


def test_sigterm_mid_call_leaves_complete_recordings(
    own_worker: WorkerProcess, tmp_path: Path, caller_phone: RtpPeer
) -> None:
    sipp = Sipp(tmp_path, f"127.0.0.1:{own_worker.port}")
    running = sipp.start("hold.xml", service=RECORDED_HOLD, call_id="term", hold_ms=8000,
                         rtp_sink=caller_phone.port, timeout=10)  # fmt: skip
    own_worker.wait_for(lambda e: e["event"] == "recording")
    time.sleep(1.5)  # let the caller talk into the recording
    own_worker.proc.send_signal(signal.SIGTERM)
    assert own_worker.proc.wait(timeout=10) == 0
    own_worker.close()
    (rec,) = recordings_of(own_worker, "term")
    assert 1.0 < rec["duration_s"] < 3.0
    _, peak, _ = wav_info(rec["path"])
    assert peak > 2000
    result = running.wait()
    assert "\nBYE sip:" in result.messages, "the caller was not sent a BYE"
