"""A full recordings disk costs no call: the leg goes on unrecorded, says so, and the next leg
records again once there is room (PjsuaChannel against the scripted endpoint of test_channel)."""

from __future__ import annotations

import asyncio
import logging
import struct
import wave
from pathlib import Path
from typing import cast

import pytest

from events.health import WORKER_STATS
from ivr.config import Settings
from ivr.speech import FakeTTS
from sip.channel import PjsuaChannel
from sip.endpoint import RecorderFailed, SipEndpoint
from sip.events import MediaReady
from sip.media import MIN_RECORDING_FREE_BYTES, free_bytes, header_complete
from tests.sip.test_channel import KEY, ScriptedEndpoint, press

FULL = 1 << 62  # more than any disk has free: every check says "full"


@pytest.fixture
def endpoint() -> ScriptedEndpoint:
    return ScriptedEndpoint()


@pytest.fixture
def channel(endpoint: ScriptedEndpoint, tmp_path: Path) -> PjsuaChannel:
    ch = PjsuaChannel(
        cast(SipEndpoint, endpoint),
        KEY,
        tts=FakeTTS(tmp_path / "tts"),
        recordings_dir=tmp_path / "rec",
        media_dir=tmp_path / "tones",
        call_uuid="0000-uuid",
        min_free_bytes=FULL,
    )
    endpoint.channel = ch
    ch.deliver(MediaReady(KEY))
    return ch


def test_the_setting_defaults_to_the_channels_minimum() -> None:
    assert Settings().recordings_min_free_bytes == MIN_RECORDING_FREE_BYTES == 1 << 20


def test_free_bytes_reads_the_nearest_existing_folder(tmp_path: Path) -> None:
    free = free_bytes(tmp_path / "not" / "made" / "yet")
    assert free is not None and free > 0


async def test_a_full_disk_leaves_the_leg_unrecorded_and_the_call_going(
    channel: PjsuaChannel, endpoint: ScriptedEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    before = WORKER_STATS.recordings_failed["disk_full"]
    with caplog.at_level(logging.WARNING, logger="sip.channel"):
        await channel.start_recording()
    assert [a for a, _ in endpoint.actions] == []  # no recorder was asked for
    [missed] = channel.unrecorded
    assert (missed.role, missed.kind, missed.reason) == ("caller", "call", "disk_full")
    assert WORKER_STATS.recordings_failed["disk_full"] == before + 1
    [line] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "0000-uuid" in line.getMessage() and "not recorded: disk full" in line.getMessage()
    await channel.say("the call goes on")
    assert await channel.close() == []
    assert not list((channel.recordings_dir).rglob("*.wav"))


async def test_a_voicemail_on_a_full_disk_still_takes_the_message_then_space_returns(
    channel: PjsuaChannel, endpoint: ScriptedEndpoint
) -> None:
    press(channel, "#", after=0.1)
    message = await channel.record(max_seconds=5, silence_timeout=5, beep=False)
    assert (message.path, message.duration) == ("", 0.0)
    assert [u.kind for u in channel.unrecorded] == ["voicemail"]

    channel.min_free_bytes = 0  # space is back: the next recording checks again
    press(channel, "#", after=0.1)
    message = await channel.record(max_seconds=5, silence_timeout=5, beep=False)
    assert message.path.endswith("0000-uuid-voicemail.wav") and message.duration > 0
    assert len(channel.unrecorded) == 1 and len(channel.recordings) == 1


async def test_a_recorder_pjsua_cannot_create_leaves_no_file(
    channel: PjsuaChannel, endpoint: ScriptedEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel.min_free_bytes = 0

    async def refuse(key: int, path: str) -> int:
        Path(path).write_bytes(b"")  # what pjsua may leave behind
        raise RecorderFailed(f"cannot record to {path}: No such file or directory")

    monkeypatch.setattr(endpoint, "start_recorder", refuse)
    before = WORKER_STATS.recordings_failed["recorder_failed"]
    await channel.start_recording()
    assert [u.reason for u in channel.unrecorded] == ["recorder_failed"]
    assert WORKER_STATS.recordings_failed["recorder_failed"] == before + 1
    assert not list(channel.recordings_dir.rglob("*.wav"))
    await channel.say("the call goes on")


async def test_a_recording_the_disk_filled_mid_call_is_repaired_and_marked_cut_short(
    channel: PjsuaChannel, endpoint: ScriptedEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel.min_free_bytes = 0

    async def partly(key: int, path: str) -> int:
        """What pjsua leaves when the disk fills: 0.25 s of samples under a header of 0."""
        with wave.open(path, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(b"\1\0" * 2000)
        with open(path, "r+b") as wav:
            wav.seek(4)
            wav.write(struct.pack("<I", 0))
            wav.seek(40)
            wav.write(struct.pack("<I", 0))
        return 99

    monkeypatch.setattr(endpoint, "start_recorder", partly)
    before = WORKER_STATS.recordings_failed["cut_short"]
    await channel.start_recording()
    await asyncio.sleep(1.3)  # longer than what the file holds, by more than the slack
    channel.min_free_bytes = FULL  # the disk is full now
    [kept] = await channel.close()
    assert kept.cut_short and kept.duration_s == pytest.approx(0.25)
    assert header_complete(Path(kept.path))
    assert channel.unrecorded == []
    assert WORKER_STATS.recordings_failed["cut_short"] == before + 1
