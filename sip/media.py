"""Audio files around a call: generated tones, recording paths, and finishing recorded WAVs.

Tones (the beep before a voicemail, the ringback a caller hears while an advisor rings) are
rendered once into a cache directory shared by every worker process; the write is atomic, so two
processes rendering the same tone at once both end up with a whole file.

Recordings are pjsua `AudioMediaRecorder` WAVs (8 kHz, mono, 16-bit). pjsua writes the final
RIFF/data sizes only when the recorder is destroyed; a process killed before that leaves a file
whose header says 0 bytes. `finish_wav` waits for the real header and, if it never comes, repairs
it from the file size, so every leg recording handed on is a valid WAV.

A full recordings disk must not cost a call: pjsua creates a recorder on a full disk without a
word and then writes nothing (checked: a 0-byte file), so the channel checks `free_bytes` before
each leg's recorder and goes on unrecorded below `MIN_RECORDING_FREE_BYTES`. A disk that fills
up mid-recording leaves the samples written so far under a header that says 0 bytes (pjsua
cannot rewrite it at close); `finish_wav` repairs it like a killed worker's.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import struct
import tempfile
import time
import wave
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

RATE = 8000
DEFAULT_TONES_DIR = Path(tempfile.gettempdir()) / "driveline-tones"
# Below this much free space a leg is not recorded (a minute of 8 kHz audio is 960 kB): the
# default of `Settings.recordings_min_free_bytes`.
MIN_RECORDING_FREE_BYTES = 1 << 20


@dataclass(frozen=True)
class LegRecording:
    """One finished recording of a call: who is heard in it, where it is, what it holds."""

    role: str  # "caller" | "advisor" (whose voice the file holds)
    path: str
    sha256: str
    duration_s: float
    kind: str  # "call" (a leg of the conversation) | "voicemail"
    started_at: datetime  # UTC wall clock when recording started
    cut_short: bool = False  # the disk filled up while recording: it holds only the start


@dataclass(frozen=True)
class LegUnrecorded:
    """A recording that was due but not made: the call went on without it."""

    role: str  # "caller" | "advisor"
    kind: str  # "call" | "voicemail"
    reason: str  # "disk_full" | "recorder_failed"
    at: datetime  # UTC wall clock when recording should have started


def free_bytes(directory: Path) -> int | None:
    """Bytes a non-root process may still write where `directory` is (or would be created);
    None when the filesystem cannot say."""
    path = Path(directory).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        stats = os.statvfs(path)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


def recording_path(root: Path, started: datetime, call_uuid: str, suffix: str) -> Path:
    """`root/YYYY/MM/DD/<call-uuid>-<suffix>.wav`, dated by the call's start (UTC)."""
    day = started.astimezone(UTC)
    return root / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}" / f"{call_uuid}-{suffix}.wav"


# --- tones -----------------------------------------------------------------------------------


def _write_atomic(path: Path, frames: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    os.close(fd)
    try:
        with wave.open(tmp, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(frames)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _tone(seconds: float, freqs: tuple[float, ...], amplitude: int) -> bytes:
    count = int(RATE * seconds)
    share = amplitude / len(freqs)
    return b"".join(
        struct.pack("<h", int(sum(share * math.sin(2 * math.pi * f * i / RATE) for f in freqs)))
        for i in range(count)
    )


def beep_wav(directory: Path, seconds: float = 0.25, hz: float = 1000.0) -> Path:
    """The short tone before a voicemail recording."""
    path = directory / f"beep-{hz:g}-{seconds:g}.wav"
    if not path.exists():
        _write_atomic(path, _tone(seconds, (hz,), 6000))
    return path


def ringback_wav(directory: Path = DEFAULT_TONES_DIR) -> Path:
    """North-American ringback (440 + 480 Hz, 2 s on, 4 s off): one 6 s cycle, played looped."""
    path = directory / "ringback-us.wav"
    if not path.exists():
        _write_atomic(path, _tone(2.0, (440.0, 480.0), 8000) + b"\0\0" * (RATE * 4))
    return path


# --- finishing recordings -------------------------------------------------------------------


def header_complete(path: Path) -> bool:
    """True when the RIFF size matches the file, i.e. the recorder closed the file."""
    try:
        with path.open("rb") as wav:
            head = wav.read(8)
        size = path.stat().st_size
    except OSError:
        return False
    return len(head) == 8 and head[:4] == b"RIFF" and struct.unpack("<I", head[4:])[0] == size - 8


def repair_wav(path: Path) -> bool:
    """Rewrite the RIFF and data sizes of a PCM WAV from the file's real size (a recorder that
    never closed). Returns True when the file is a valid WAV afterwards."""
    try:
        with path.open("r+b") as wav:
            data = wav.read(4096)
            if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
                return False
            pos = 12
            while pos + 8 <= len(data):
                chunk, length = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
                if chunk == b"data":
                    size = path.stat().st_size
                    payload = (size - pos - 8) & ~1  # whole 16-bit samples
                    wav.seek(4)
                    wav.write(struct.pack("<I", pos + payload))
                    wav.seek(pos + 4)
                    wav.write(struct.pack("<I", payload))
                    wav.truncate(pos + 8 + payload)
                    return True
                pos += 8 + length + (length & 1)
    except OSError:
        return False
    return False


def wav_seconds(path: str | Path) -> float:
    with wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
        return wav.getnframes() / rate if rate else 0.0


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


async def finish_wav(path: Path, timeout: float = 2.0) -> tuple[float, str] | None:
    """(duration in seconds, sha256) of a WAV pjsua is closing, or None without a file.

    The bridge removes a stopped recorder on its next clock tick, so the header is normally
    final a few ms after the stop; a file still open after `timeout` is repaired instead."""
    deadline = time.monotonic() + timeout
    while not header_complete(path):
        if not path.exists() and time.monotonic() > deadline:
            return None
        if time.monotonic() > deadline:
            log.warning("recording %s was not closed in %.1fs; repairing its header", path, timeout)
            if not await asyncio.to_thread(repair_wav, path):
                return None
            break
        await asyncio.sleep(0.02)
    try:
        duration = wav_seconds(path)
        return duration, await asyncio.to_thread(sha256_file, path)
    except (OSError, wave.Error, EOFError):
        return None
