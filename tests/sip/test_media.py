"""Recording paths, tone files, finishing WAVs a recorder never closed, trunk dialling."""

from __future__ import annotations

import struct
import wave
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from sip.endpoint import EndpointConfig
from sip.media import (
    finish_wav,
    header_complete,
    recording_path,
    repair_wav,
    ringback_wav,
    sha256_file,
    wav_seconds,
)


def test_recording_path_is_dated_in_utc(tmp_path: Path) -> None:
    late_evening = datetime(2026, 3, 9, 22, 30, tzinfo=timezone(timedelta(hours=-5)))
    path = recording_path(tmp_path, late_evening, "abc", "caller")
    assert path == tmp_path / "2026" / "03" / "10" / "abc-caller.wav"


def test_ringback_is_rendered_once(tmp_path: Path) -> None:
    path = ringback_wav(tmp_path)
    assert wav_seconds(path) == pytest.approx(6.0)
    stamp = path.stat().st_mtime_ns
    assert ringback_wav(tmp_path).stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == ["ringback-us.wav"]  # no temp file left


def unclosed_wav(path: Path, seconds: float) -> None:
    """What pjsua leaves when the process dies mid-recording: sizes still 0 in the header."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x01\x00" * int(8000 * seconds))
    raw = bytearray(path.read_bytes())
    raw[4:8] = struct.pack("<I", 0)
    raw[40:44] = struct.pack("<I", 0)
    path.write_bytes(bytes(raw) + b"\x07")  # and half a sample


def test_repair_wav_restores_the_sizes(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    unclosed_wav(path, 0.5)
    assert not header_complete(path)
    assert repair_wav(path)
    assert header_complete(path)
    assert wav_seconds(path) == pytest.approx(0.5)


async def test_finish_wav_repairs_after_its_timeout(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    unclosed_wav(path, 0.25)
    finished = await finish_wav(path, timeout=0.05)
    assert finished is not None
    assert finished == (pytest.approx(0.25), sha256_file(path))
    assert await finish_wav(tmp_path / "missing.wav", timeout=0.05) is None


@pytest.mark.parametrize(
    ("trunk", "contact", "uri"),
    [
        (None, "sip:alice@pbx", "sip:alice@pbx"),
        (None, "+15552010001", None),
        ("sip:{number}@trunk.example;transport=tcp", "+15552010001",
         "sip:+15552010001@trunk.example;transport=tcp"),
        ("sip:trunk.example:5060", "+15552010001", "sip:+15552010001@trunk.example:5060"),
        ("trunk.example", "+15552010001", "sip:+15552010001@trunk.example"),
        ("sip:trunk.example", "5552010001", None),  # not E.164
    ],
)  # fmt: skip
def test_dial_uri(trunk: str | None, contact: str, uri: str | None) -> None:
    assert EndpointConfig(trunk_uri=trunk).dial_uri(contact) == uri


def test_outbound_reserve_must_leave_an_inbound_slot() -> None:
    with pytest.raises(ValueError, match="outbound_reserve"):
        EndpointConfig(max_calls=2, outbound_reserve=2)


def test_started_at_is_aware() -> None:
    assert recording_path(Path("/r"), datetime(2026, 1, 2, tzinfo=UTC), "u", "x").name == "u-x.wav"
