"""Endpointing the caller's audio during a speech gather: when speech starts, when it ends.

Fed the caller's 8 kHz 16-bit frames one by one (20 ms each, from the media port in
sip/listen.py), `Endpointer` runs webrtcvad on each and reports:
- `SpeechStarted` once enough of the last frames are voiced and the run holds `min_speech` of
  voiced audio: the channel stops the prompt (barge-in). A shorter run that falls silent (a
  cough, a click, a bump of the handset: 30-200 ms of noise makes 5-15 voiced frames, one
  spoken word 19-25) is dropped without a sound: the prompt plays on and the endpointer keeps
  listening for the answer;
- `Pause` after `pause` of unvoiced frames: the utterance as it would end now, so the channel
  can start recognizing it while the VAD waits out the rest of its silence (if the caller does
  not speak again, the `Utterance` is the same audio and its transcript is ready sooner);
- `Utterance` after `end_silence` of unvoiced frames, or at `max_seconds`: the audio from a
  little before the start (`preroll`, so the first syllable is not clipped) to the end. The
  cap is what ends a ramble, and also steady noise the VAD takes for speech (loud hum, hiss,
  hold music): the gather never waits on it for longer than `max_seconds`.
Pure Python and numpy-free, so it is tested without pjsua2 by feeding it WAV frames.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import webrtcvad

RATE = 8000
FRAME_MS = 20
FRAME_BYTES = RATE * FRAME_MS // 1000 * 2  # 320: 160 samples of 16-bit PCM
TRAILING_KEPT = 5  # frames of an utterance's trailing silence kept (Whisper likes an ending)


@dataclass(frozen=True)
class SpeechStarted:
    at_frame: int  # frames fed before the first voiced frame of the run that started it


@dataclass(frozen=True)
class Pause:
    pcm: bytes  # the utterance if it ended here (what `Utterance.pcm` will be if it does)


@dataclass(frozen=True)
class Utterance:
    pcm: bytes  # 16-bit mono PCM at 8 kHz, preroll included, trailing silence cut
    speech_frames: int
    truncated: bool  # cut at max_seconds rather than ended by silence


EndpointEvent = SpeechStarted | Pause | Utterance


class Endpointer:
    def __init__(
        self,
        *,
        aggressiveness: int = 2,
        start_frames: int = 5,  # voiced frames among the last `start_window` to start
        start_window: int = 8,
        end_silence: float = 0.5,  # seconds of unvoiced audio that end the utterance
        pause: float = 0.24,  # seconds of unvoiced audio that report a `Pause`
        max_seconds: float = 8.0,
        preroll: float = 0.3,
        min_speech: float = 0.24,  # seconds of voiced frames before a run counts as speech
    ) -> None:
        self.vad = webrtcvad.Vad(aggressiveness)
        self.start_frames = start_frames
        self.start_window = start_window
        self.end_frames = round(end_silence * 1000 / FRAME_MS)
        self.pause_frames = round(pause * 1000 / FRAME_MS)
        self.max_frames = round(max_seconds * 1000 / FRAME_MS)
        self.preroll_frames = round(preroll * 1000 / FRAME_MS)
        self.min_speech_frames = max(start_frames, round(min_speech * 1000 / FRAME_MS))
        self._recent: deque[tuple[bytes, bool]] = deque(
            maxlen=max(start_window, self.preroll_frames)
        )
        self._pending = b""
        self._frames: list[bytes] = []
        self._speech_frames = 0
        self._silent_run = 0
        self._start_at = 0
        self.fed = 0
        self.speaking = False  # a run of voiced frames is under way (speech or a burst of noise)
        self.confirmed = False  # ... and it holds `min_speech`: `SpeechStarted` was reported
        self.done = False

    def feed(self, data: bytes) -> list[EndpointEvent]:
        """Any amount of PCM; returns what happened (usually nothing). After the `Utterance`
        the endpointer ignores further audio (one utterance per gather)."""
        events: list[EndpointEvent] = []
        self._pending += data
        while len(self._pending) >= FRAME_BYTES and not self.done:
            frame, self._pending = self._pending[:FRAME_BYTES], self._pending[FRAME_BYTES:]
            event = self._frame(frame)
            if event is not None:
                events.append(event)
        return events

    def _frame(self, frame: bytes) -> EndpointEvent | None:
        self.fed += 1
        voiced = self.vad.is_speech(frame, RATE)
        if not self.speaking:
            self._recent.append((frame, voiced))
            window = list(self._recent)[-self.start_window :]
            if sum(v for _, v in window) < self.start_frames:
                return None
            self.speaking = True
            self._frames = [f for f, _ in self._recent][-self.preroll_frames - self.start_window :]
            self._speech_frames = sum(v for _, v in window)
            self._start_at = self.fed - len(window)
            return self._confirm()
        self._frames.append(frame)
        if voiced:
            self._speech_frames += 1
            self._silent_run = 0
        else:
            self._silent_run += 1
        if not self.confirmed:
            if voiced:
                return self._confirm()
            if self._silent_run >= self.end_frames or len(self._frames) >= self.max_frames:
                self._drop()
            return None
        if self._silent_run >= self.end_frames:
            return self._finish(truncated=False)
        if len(self._frames) >= self.max_frames:
            return self._finish(truncated=True)
        if self._silent_run == self.pause_frames < self.end_frames:
            return Pause(self._cut())
        return None

    def _confirm(self) -> SpeechStarted | None:
        if self._speech_frames < self.min_speech_frames:
            return None
        self.confirmed = True
        return SpeechStarted(self._start_at)

    def _drop(self) -> None:
        """Too little voiced audio before the silence: noise, not speech; listen again."""
        self.speaking = False
        self._frames, self._speech_frames, self._silent_run = [], 0, 0
        self._recent.clear()

    def _cut(self) -> bytes:
        """The audio so far without its trailing silence (a tenth of a second of it is kept)."""
        keep = len(self._frames) - max(0, self._silent_run - TRAILING_KEPT)
        return b"".join(self._frames[:keep])

    def _finish(self, *, truncated: bool) -> Utterance:
        self.done = True
        pcm = b"".join(self._frames) if truncated else self._cut()
        return Utterance(pcm, self._speech_frames, truncated)

    def flush(self) -> Utterance | None:
        """The utterance so far when the gather must stop listening (its time is up)."""
        if not self.confirmed or self.done:
            return None
        return self._finish(truncated=True)
