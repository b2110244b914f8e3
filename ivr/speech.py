"""Speech engines as the core sees them: small protocols, with fakes for unit tests.

The real engines (piper for TTS in `speech/`, faster-whisper for ASR in `transcription/`) are
adapters at the edge; tests of the flow engine and the SIP channel can use the fakes below.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import wave
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class SpeechSegment:
    """One stretch of recognized speech; times in seconds from the start of the audio."""

    start: float
    end: float
    text: str
    confidence: float  # 0..1 (faster-whisper: exp of the segment's average log-probability)


Audio = Path | bytes  # a WAV/audio file, or raw 16-bit mono PCM at `sample_rate`


class STT(Protocol):
    """Speech to text. Blocking (CPU-bound): async callers run it in a thread or a service."""

    name: str

    def transcribe(
        self, audio: Audio, *, sample_rate: int = PHONE_RATE, prompt: str | None = None
    ) -> list[SpeechSegment]:
        """Segments of `audio` in time order; `prompt` biases the vocabulary (store words)."""
        ...


class FakeSTT:
    """Scripted recognizer: answers by file name (or for raw PCM, `pcm_text`); no model."""

    name = "fake"

    def __init__(self, script: Mapping[str, str] | None = None, pcm_text: str = "") -> None:
        self.script = dict(script or {})
        self.pcm_text = pcm_text
        self.calls: list[tuple[Audio, str | None]] = []

    def transcribe(
        self, audio: Audio, *, sample_rate: int = PHONE_RATE, prompt: str | None = None
    ) -> list[SpeechSegment]:
        self.calls.append((audio, prompt))
        if isinstance(audio, bytes):
            text, seconds = self.pcm_text, len(audio) / (2 * sample_rate)
        else:
            text = self.script.get(audio.name, "")
            with wave.open(str(audio), "rb") as wav:
                seconds = wav.getnframes() / wav.getframerate()
        return [SpeechSegment(0.0, seconds, text, 0.9)] if text else []


# What Whisper writes for a sound it hears no words in (a cough, line noise, hum, hold music):
# seen from tiny.en on synthesized noise and a cough over a real call (tests/speech/
# test_bad_input.py, tests/e2e/test_speech_gather.py). Never an answer to a gather.
NOISE_WORDS = frozenset({"you", "thank you", "thank you very much", "thanks for watching", "bye"})


def no_words(text: str) -> bool:
    """True when a transcript holds no answer: empty, or only what Whisper invents for noise."""
    said = " ".join(re.sub(r"[^a-z' ]", " ", text.lower()).split())
    return not said or said in NOISE_WORDS


def hint_prompt(hints: Sequence[str], vocabulary: str = "") -> str | None:
    """A recogniser's initial prompt from a gather's phrases (and the store's words): Whisper
    continues the prompt's style and words, so the menu's phrases become likelier."""
    words = [h.strip() for h in hints if h.strip()]
    text = " ".join(filter(None, [vocabulary.strip(), ", ".join(words) + "." if words else ""]))
    return text or None


class Understanding(Protocol):
    """What a caller's words mean among a gather's intents (speech/intents.py has the model).

    Async because a SIP worker asks the speech service over Redis (one warm model for every
    worker); `driveline flows run` classifies in its own process."""

    async def classify(
        self, text: str, intents: Mapping[str, Sequence[str]]
    ) -> dict[str, float] | None:
        """Each intent's score for `text` (cosine, best first); None when no model answered."""
        ...
