"""A recorded call with known speech ends up on the customer's thread, searchable, masked.

`driveline serve --demo` (SIP worker, call writer, in-process transcription worker with the
shipped tiny.en model, API); sipp calls as a demo customer and speaks a sentence synthesized
with piper, sent as PCMA RTP from a pcap this test writes; then hangs up. The words must come
back through the API: on the call's thread entry, and from transcript search with the time.
"""

from __future__ import annotations

import asyncio
import sqlite3
import struct
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from ivr.redact import MASK
from tests.e2e.harness import Sipp, alaw_to_linear, require_tools
from tests.e2e.test_demo_store import DID, DemoServer

CALLER = "+15550200003"  # a demo customer
LEAD_S = 6.0  # silence first: the consent announcement and greeting play meanwhile
SPEECH = (
    "Hello, the Silverado needs new brake pads and a tire rotation. "
    "My card number is four one one one, one one one one, one one one one, one one one one."
)
FRAME = 160  # 20 ms at 8 kHz


def _alaw(samples: np.ndarray) -> bytes:
    """16-bit linear → G.711 A-law (ITU-T G.711 segment encoding)."""
    pcm = samples.astype(np.int32) >> 3
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    pcm = np.where(pcm >= 0, pcm, -pcm - 1)
    ends = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
    seg = np.searchsorted(ends, pcm)
    low = np.where(seg < 2, (pcm >> 1) & 0xF, (pcm >> np.maximum(seg, 1)) & 0xF)
    value = np.where(seg >= 8, 0x7F, (seg << 4) | low)
    return bytes((value ^ mask).astype(np.uint8))


def write_rtp_pcap(pcm: bytes, path: Path) -> float:
    """8 kHz 16-bit PCM → a pcap of PCMA RTP packets, 20 ms apart, as sipp replays them.
    Returns the audio's length in seconds."""
    payload = _alaw(np.frombuffer(pcm, dtype="<i2"))
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]  # Ethernet
    for n, start in enumerate(range(0, len(payload) - FRAME + 1, FRAME)):
        rtp = (
            struct.pack("!BBHII", 0x80, 8, n & 0xFFFF, n * FRAME, 0x1234)
            + payload[start : start + FRAME]
        )
        udp = struct.pack("!HHHH", 6000, 6002, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n & 0xFFFF, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp  # fmt: skip
        frame = b"\0" * 12 + b"\x08\x00" + ip
        usec = n * 20_000
        out.append(
            struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(frame), len(frame))
        )
        out.append(frame)
    path.write_bytes(b"".join(out))
    return len(payload) / 8000


def test_alaw_encoding_round_trips() -> None:
    samples = np.array([0, 1, -1, 100, -100, 1000, -1000, 12000, -12000, 32767, -32768])
    decoded = [alaw_to_linear(b) for b in _alaw(samples)]
    for original, back in zip(samples.tolist(), decoded, strict=True):
        assert abs(original - back) <= max(16, abs(original) // 16), (original, back)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[DemoServer]:
    require_tools()
    demo = DemoServer(tmp_path_factory.mktemp("serve"), redis_url)
    try:
        demo.wait_ready()
        yield demo
    finally:
        code = demo.stop()
        assert code == 0, "serve did not stop cleanly:\n" + "\n".join(demo.lines[-40:])


def _speech_pcm(workdir: Path) -> bytes:
    from speech.piper_tts import PiperTTS, default_model_path

    tts = PiperTTS(workdir / "piper", default_model_path())
    with wave.open(str(asyncio.run(tts.render(SPEECH))), "rb") as wav:
        speech = wav.readframes(wav.getnframes())
    return b"\0\0" * int(8000 * LEAD_S) + speech + b"\0\0" * 8000


def test_the_words_of_a_recorded_call_reach_the_thread_and_search(
    server: DemoServer, tmp_path: Path
) -> None:
    api = f"http://127.0.0.1:{server.http_port}/api/v1"
    headers = {"Authorization": f"Bearer {server.token('admin')}"}
    customer = httpx.get(f"{api}/customers", params={"phone": CALLER}, headers=headers).json()
    customer_id = customer["items"][0]["id"]

    workdir = tmp_path / "sipp"
    workdir.mkdir()
    seconds = write_rtp_pcap(_speech_pcm(tmp_path), workdir / "speech.pcap")
    sipp = Sipp(workdir, f"127.0.0.1:{server.sip_port}")
    result = sipp.run(
        "speak_and_hang_up.xml",
        service=DID,
        call_id="spoken",
        caller=CALLER,
        hold_ms=int(seconds * 1000),
        timeout=seconds + 15,
    )
    assert result.returncode == 0, result.describe() + "\n".join(server.lines[-60:])
    hung_up = time.monotonic()

    # The transcript reaches the call's thread entry (transcription runs after the hangup).
    entry = None
    while time.monotonic() - hung_up < 90:
        thread = httpx.get(f"{api}/customers/{customer_id}/thread", headers=headers).json()
        calls = [
            e for e in thread["items"] if e["kind"] == "call" and e["data"].get("transcript_id")
        ]
        if calls:
            entry = calls[0]
            break
        time.sleep(0.5)
    log = "\n".join(server.lines[-40:])
    assert entry is not None, f"no transcript on the thread after 90 s:\n{log}"
    excerpt = entry["data"]["transcript_excerpt"].lower()
    assert "silverado" in excerpt and "brake" in excerpt, excerpt
    assert MASK in entry["data"]["transcript_excerpt"] and "4111" not in excerpt, excerpt

    # Search finds it, with the line's time in the call (after the lead-in silence).
    hits = httpx.get(
        f"{api}/search/transcripts", params={"q": "brake pads"}, headers=headers
    ).json()["items"]
    mine = [h for h in hits if h["entry_id"] == entry["id"]]
    assert mine, hits
    assert mine[0]["speaker"] == "Caller" and mine[0]["customer_id"] == customer_id
    assert LEAD_S - 1 <= mine[0]["start_s"] <= LEAD_S + 8, mine[0]
    assert "«" in mine[0]["snippet"]

    # The stored transcript holds the IVR's own lines too, and never the card number.
    database = server.env["DRIVELINE_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT speaker, text FROM transcript_segments WHERE transcript_id = ?",
            (entry["data"]["transcript_id"],),
        ).fetchall()
    assert {"IVR", "Caller"} <= {speaker for speaker, _ in rows}, rows
    assert not any("4111" in text or "one one one" in text.lower() for _, text in rows), rows
