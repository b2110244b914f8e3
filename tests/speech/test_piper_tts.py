"""PiperTTS: phone-ready audio, a cache shared by processes, one synthesis per text."""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ivr.config import Settings
from ivr.speech import PHONE_RATE, FakeTTS, cache_key
from speech import prerender
from speech.piper_tts import PEAK, PiperTTS, default_tts, to_phone_audio, write_wav_atomically
from tests.needs import require

GREETING = "Thanks for calling Demo Chevrolet service."


def read_wav(path: Path) -> tuple[tuple[int, int, int], np.ndarray]:
    """(channels, bytes per sample, rate) and the samples."""
    with wave.open(str(path), "rb") as wav:
        form = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate())
        return form, np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def band_level(samples: np.ndarray, rate: int, hz: float) -> float:
    """Magnitude of the spectrum at `hz` (Hann window), for comparing tones."""
    window = np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(samples * window))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    near = np.abs(freqs - hz) < 20
    return float(spectrum[near].max())


async def test_greeting_is_an_8khz_mono_16bit_wav_of_speech(tts: PiperTTS) -> None:
    path = await tts.render(GREETING)

    form, samples = read_wav(path)
    assert form == (1, 2, PHONE_RATE)
    assert path.name == f"{cache_key('en_US-joe-medium', GREETING)}.wav"
    assert 1.5 <= len(samples) / PHONE_RATE <= 5.0
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    assert rms > 1000  # speech, not silence (int16 full scale is 32767)
    assert np.abs(samples).max() <= round(PEAK * 32767) + 1  # headroom, nothing clipped
    assert abs(int(samples[0])) < 50 and abs(int(samples[-1])) < 50  # faded: no click


async def test_resampling_matches_sox(tts: PiperTTS, tmp_path: Path) -> None:
    """Same piper samples through our path and through sox's resampler: the same signal."""
    require(shutil.which("sox"), "sox is not installed (apt install sox)")
    native = await asyncio.to_thread(tts.synthesize, GREETING)
    ours = to_phone_audio(native, tts.sample_rate).astype(np.float64)

    raw_in, raw_out = tmp_path / "in.f32", tmp_path / "out.f32"
    native.astype("<f4").tofile(raw_in)
    fmt = ["-t", "raw", "-e", "floating-point", "-b", "32", "-c", "1"]
    sox_in, sox_out = [*fmt, "-r", str(tts.sample_rate), str(raw_in)], [*fmt, str(raw_out)]
    subprocess.run(["sox", *sox_in, *sox_out, "vol", "0.5", "rate", "-v", "8000"], check=True)
    reference = np.fromfile(raw_out, dtype="<f4").astype(np.float64)

    # Ours starts later (leading silence trimmed): align by cross-correlation, then compare.
    n = len(ours) + len(reference)
    xcorr = np.fft.irfft(np.fft.rfft(reference, n) * np.conj(np.fft.rfft(ours, n)), n)
    lag = int(np.argmax(xcorr))
    aligned = reference[lag : lag + len(ours)]
    ours = ours[: len(aligned)]
    correlation = np.corrcoef(ours, aligned)[0, 1]
    assert correlation > 0.999  # naive decimation scores about 0.99 here


def test_tones_above_4khz_do_not_fold_back_into_the_band() -> None:
    """A 6 kHz tone would land on 2 kHz if samples were just dropped; soxr filters it out."""
    rate = 22050
    t = np.arange(rate) / rate
    native = 0.4 * np.sin(2 * np.pi * 1000 * t) + 0.4 * np.sin(2 * np.pi * 6000 * t)

    phone = to_phone_audio(native, rate).astype(np.float64)[800:-800]  # skip the fades
    wanted, alias = band_level(phone, PHONE_RATE, 1000), band_level(phone, PHONE_RATE, 2000)
    assert 20 * np.log10(alias / wanted) < -60

    naive = native[np.round(np.arange(0, len(native), rate / PHONE_RATE)).astype(int)]
    assert band_level(naive, PHONE_RATE, 2000) > 0.5 * band_level(naive, PHONE_RATE, 1000)


async def test_second_render_comes_from_the_cache(tts: PiperTTS, piper_model: Path) -> None:
    first = await tts.render("Hi Maria.")
    second = await tts.render("Hi Maria.")
    other_process = PiperTTS(tts.cache_dir, piper_model)  # same folder, fresh in-memory state

    assert second == first == await other_process.render("Hi Maria.")
    assert tts.rendered == ["Hi Maria."]
    assert other_process.rendered == []


async def test_concurrent_renders_of_one_text_synthesize_once(tts: PiperTTS) -> None:
    paths = await asyncio.gather(*(tts.render("Hi Maria.") for _ in range(4)))

    assert len(set(paths)) == 1
    assert tts.rendered == ["Hi Maria."]


async def test_a_caller_hanging_up_does_not_cancel_a_shared_render(tts: PiperTTS) -> None:
    hung_up = asyncio.create_task(tts.render("Hi Maria."))
    waiting = asyncio.create_task(tts.render("Hi Maria."))
    await asyncio.sleep(0)
    hung_up.cancel()

    path = await waiting
    assert path.exists()
    assert tts.rendered == ["Hi Maria."]
    with pytest.raises(asyncio.CancelledError):
        await hung_up


async def test_different_texts_and_voices_get_different_files(
    tts: PiperTTS, piper_model: Path
) -> None:
    maria, jose = await tts.render("Maria."), await tts.render("Jose.")
    slower = PiperTTS(tts.cache_dir, piper_model, length_scale=1.2)

    assert maria != jose
    assert slower.voice == "en_US-joe-medium@length_scale=1.2"
    assert slower.path_for("Maria.") != maria
    assert sorted(p.name for p in tts.cache_dir.iterdir()) == sorted([maria.name, jose.name])


async def test_renders_leave_no_temp_files(tts: PiperTTS) -> None:
    await asyncio.gather(tts.render("Maria."), tts.render("Jose."))

    assert all(p.suffix == ".wav" and not p.name.startswith(".") for p in tts.cache_dir.iterdir())


def test_a_failed_write_leaves_neither_a_partial_file_nor_a_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_replace(src: str, dst: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    target = tmp_path / "prompt.wav"
    with pytest.raises(OSError, match="disk full"):
        write_wav_atomically(target, np.zeros(800, dtype=np.int16))

    assert list(tmp_path.iterdir()) == []


async def test_empty_text_renders_a_short_silence(tts: PiperTTS) -> None:
    form, samples = read_wav(await tts.render(""))

    assert form == (1, 2, PHONE_RATE)
    assert 0 < len(samples) <= PHONE_RATE // 5
    assert not samples.any()


async def test_rendering_never_blocks_the_event_loop(tts: PiperTTS) -> None:
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    started = time.perf_counter()
    await tts.render("For your advisor, press 0.")
    took = time.perf_counter() - started
    ticking.cancel()

    assert max(gaps) < max(0.1, took / 3)  # the loop kept turning while piper worked


def test_a_missing_model_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        PiperTTS(tmp_path, tmp_path / "nope.onnx")


def test_default_tts_caches_prompts_in_the_prompts_dir(tmp_path: Path) -> None:
    settings = Settings(prompts_dir=tmp_path / "var" / "prompts")

    tts = default_tts(settings)
    assert tts.cache_dir == tmp_path / "var" / "prompts"
    assert tts.voice == "en_US-joe-medium"
    assert default_tts(settings, tmp_path / "elsewhere").cache_dir == tmp_path / "elsewhere"


async def test_prerender_renders_each_distinct_text_once(tmp_path: Path) -> None:
    fake = FakeTTS(tmp_path)

    paths = await prerender(fake, ["Welcome.", "Press 1.", "Welcome."])

    assert list(paths) == ["Welcome.", "Press 1."]
    assert all(p.exists() for p in paths.values())
    assert fake.rendered == ["Welcome.", "Press 1."]


async def test_render_times(
    piper_model: Path, tmp_path: Path, report_timing: Callable[[str, str], None]
) -> None:
    """Measured, not asserted: cache-miss render (synthesis + resample + write), median of 5."""
    await PiperTTS(tmp_path / "warm", piper_model).warm()
    for label, text in [
        ("greeting", "Thanks for calling Demo Chevrolet service. Hi Maria."),
        ("first name", "Maria."),
    ]:
        times = []
        for run in range(5):
            fresh = PiperTTS(tmp_path / f"{label}-{run}", piper_model)
            started = time.perf_counter()
            await fresh.render(text)
            times.append(time.perf_counter() - started)
        report_timing(
            f"{label} {text!r}",
            f"median {statistics.median(times) * 1000:.0f} ms "
            f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})",
        )
