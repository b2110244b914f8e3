"""Recording paths, tone files, finishing WAVs a recorder never closed, trunk dialling."""

from __future__ import annotations

import struct
import wave
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from ivr.phone import FICTIONAL, DestinationRule
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
        (None, "+12025550123", None),
        ("sip:{number}@trunk.example;transport=tcp", "+12025550123",
         "sip:+12025550123@trunk.example;transport=tcp"),
        ("sip:trunk.example:5060", "+12025550123", "sip:+12025550123@trunk.example:5060"),
        ("trunk.example", "+14165550123", "sip:+14165550123@trunk.example"),  # Toronto
        ("sip:trunk.example", "2025550123", None),  # not E.164
        # Outside the default dial rule: premium, toll-free, Jamaica, London, a 976 exchange.
        ("trunk.example", "+19005550123", None),
        ("trunk.example", "+18005550123", None),
        ("trunk.example", "+18765550123", None),
        ("trunk.example", "+442079460958", None),
        ("trunk.example", "+12129761234", None),
        (None, "sip:+19005550123@trunk.example", None),  # a number in a SIP URI too
        (None, "sip:011442079460958@trunk.example", None),
        (None, "sip:+12025550123@pbx", "sip:+12025550123@pbx"),
    ],
)  # fmt: skip
def test_dial_uri(trunk: str | None, contact: str, uri: str | None) -> None:
    assert EndpointConfig(trunk_uri=trunk).dial_uri(contact) == uri


def test_the_dial_rule_can_allow_more_and_the_dial_tool_anything() -> None:
    wider = EndpointConfig(trunk_uri="trunk.example", dial_rule=DestinationRule(allow=(FICTIONAL,)))
    assert wider.dial_uri("+15552010001") == "sip:+15552010001@trunk.example"
    assert wider.dial_uri("+19005550123") is None
    assert EndpointConfig(trunk_uri="trunk.example", dial_rule=None).dial_uri("+19005550123")


@pytest.mark.parametrize(
    ("source", "trusted"),
    [("127.0.0.1:5060", True), ("127.0.0.2:5060", False), ("10.1.2.3:5060", True),
     ("203.0.113.9:5060", False), ("[::1]:5060", False), ("garbage", False)],
)  # fmt: skip
def test_only_trusted_sources_may_call(source: str, trusted: bool) -> None:
    config = EndpointConfig(trusted=("127.0.0.1", "10.0.0.0/8"))
    assert config.trusts(source) is trusted
    assert EndpointConfig(trusted=None).trusts(source)


def test_outbound_reserve_must_leave_an_inbound_slot() -> None:
    with pytest.raises(ValueError, match="outbound_reserve"):
        EndpointConfig(max_calls=2, outbound_reserve=2)


def test_started_at_is_aware() -> None:
    assert recording_path(Path("/r"), datetime(2026, 1, 2, tzinfo=UTC), "u", "x").name == "u-x.wav"
