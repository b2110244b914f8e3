"""Speech engines as the core sees them: small protocols, with fakes for unit tests.

The real engines (piper for TTS in `speech/`, faster-whisper for ASR in `transcription/`) are
adapters at the edge; tests of the flow engine and the SIP channel can use the fakes below.
"""

from __future__ import annotations

import hashlib
import math
import struct
import wave
from pathlib import Path
from typing import Protocol

PHONE_RATE = 8000  # every prompt file the SIP worker plays is 8 kHz, 16-bit, mono


class TTS(Protocol):
    voice: str

    async def render(self, text: str) -> Path:
        """An 8 kHz 16-bit mono WAV of `text`; from the disk cache when rendered before."""
        ...


def cache_key(voice: str, text: str) -> str:
    """One key for a voice and text, so every process finds the same cached file."""
    return hashlib.sha256(f"{voice}\n{text}".encode()).hexdigest()[:32]


class FakeTTS:
    """A tone whose length follows the text (60 ms a character): real audio, no model."""

    voice = "fake-tone"

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self.rendered: list[str] = []

    async def render(self, text: str) -> Path:
        path = self.cache_dir / f"{cache_key(self.voice, text)}.wav"
        if not path.exists():
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            self.rendered.append(text)
            frames = int(PHONE_RATE * max(0.2, 0.06 * len(text)))
            step = 2 * math.pi * 440 / PHONE_RATE
            samples = (int(8000 * math.sin(step * i)) for i in range(frames))
            with wave.open(str(path), "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(PHONE_RATE)
                out.writeframes(b"".join(struct.pack("<h", s) for s in samples))
        return path
