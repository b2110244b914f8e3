"""Synthesized bad input for speech gathers (tests/speech/test_bad_input.py,
tests/sip/test_channel_bad_input.py): 8 kHz phone audio as float samples; each noise has
its own seed, so a test hears the same noise whichever tests run before it."""

from __future__ import annotations

import numpy as np

from bench.speech_eval import DEFAULT_CACHE, read_pcm, render

RATE = 8000


def pcm(samples: np.ndarray) -> bytes:
    return bytes(np.clip(samples, -32767, 32767).astype("<i2").tobytes())


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(RATE * seconds))


def white(seconds: float, level: float, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, level, int(RATE * seconds))


def pink(seconds: float, level: float, seed: int = 2) -> np.ndarray:
    n = int(RATE * seconds)
    spectrum = np.fft.rfft(np.random.default_rng(seed).normal(0, 1, n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    noise = np.fft.irfft(spectrum, n)
    return noise / np.std(noise) * level


def hum(seconds: float, hz: float, level: float) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return level * (np.sin(2 * np.pi * hz * t) + 0.3 * np.sin(2 * np.pi * 3 * hz * t))


def cough(ms: float, level: float, seed: int = 3) -> np.ndarray:
    n = int(RATE * ms / 1000)
    return np.random.default_rng(seed).normal(0, level, n) * np.hanning(n)


def music(seconds: float, level: float) -> np.ndarray:
    """Plucked notes with harmonics, four a second: hold music from the caller's side."""
    t = np.arange(int(RATE * seconds)) / RATE
    out = np.zeros_like(t)
    notes = [262, 330, 392, 523, 440, 349]
    for i in range(int(seconds * 4)):
        a, b = int(i * RATE / 4), min(len(t), int((i + 1) * RATE / 4))
        for harmonic, amp in ((1, 1.0), (2, 0.5), (3, 0.25)):
            out[a:b] += amp * np.sin(2 * np.pi * notes[i % len(notes)] * harmonic * t[a:b])
        out[a:b] *= np.exp(-np.arange(b - a) / RATE * 3)
    return out / np.max(np.abs(out)) * level


def spoken(text: str, voice: str = "piper") -> np.ndarray:
    """`text` through a μ-law phone line (bench/speech_eval.py, cached)."""
    return np.frombuffer(read_pcm(render(text, voice, DEFAULT_CACHE)), dtype="<i2").astype(float)
