"""`CallChannel` over one pjsua2 call: prompts, DTMF gathers, recordings, hang-up.

The channel lives on the asyncio loop. It asks `SipEndpoint` (the pjsua2 thread) to start and
stop players and recorders, and the worker feeds it the call's events (`deliver`). Every wait
also watches for the caller hanging up, so a hang-up mid-prompt or mid-gather surfaces at once
as `CallerHungUp`, and every later method raises it too (except `record`, see the protocol).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import struct
import time
import wave
from collections.abc import Sequence
from pathlib import Path

from ivr.flow.channel import (
    CallerHungUp,
    GatherResult,
    Prompt,
    PromptFinished,
    Recording,
    TransferResult,
    TransferStatus,
)
from ivr.speech import PHONE_RATE, TTS
from sip.endpoint import CallGone, EndpointError, SipEndpoint
from sip.events import CallConfirmed, CallEnded, DtmfDigit, MediaReady, PlaybackDone, SipEvent

log = logging.getLogger(__name__)

EOF_GRACE = 1.0  # seconds past a file's length before we stop waiting for the player's EOF
SILENCE_LEVEL = 4  # pjsua signal level (0..255); sipp's speech pcap measured 6-30, quiet 0


def wav_seconds(path: str | Path) -> float:
    with wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
        return wav.getnframes() / rate if rate else 0.0


def write_beep(path: Path, seconds: float = 0.25, hz: float = 1000.0) -> Path:
    """The short tone before a recording, as an 8 kHz WAV."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        frames = int(PHONE_RATE * seconds)
        data = b"".join(
            struct.pack("<h", int(6000 * math.sin(2 * math.pi * hz * i / PHONE_RATE)))
            for i in range(frames)
        )
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(PHONE_RATE)
            out.writeframes(data)
    return path


async def _closed_wav_seconds(path: Path, timeout: float = 2.0) -> float:
    """The length of a WAV pjsua is closing. The bridge removes ports on its next clock tick,
    so the recorder writes the final header shortly after `stop_recorder` returns."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with path.open("rb") as wav:
                data = wav.read(8)
            size = path.stat().st_size
            if (
                len(data) == 8
                and data[:4] == b"RIFF"
                and struct.unpack("<I", data[4:])[0] == size - 8
            ):
                return wav_seconds(path)
        except (OSError, wave.Error, EOFError):
            pass
        if time.monotonic() > deadline:
            log.warning("recording %s was not closed in %.1fs", path, timeout)
            return 0.0
        await asyncio.sleep(0.02)


class PjsuaChannel:
    """One answered inbound call. Implements `ivr.flow.channel.CallChannel`."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        key: int,
        *,
        tts: TTS,
        recordings_dir: Path,
        name: str = "",
    ) -> None:
        self.endpoint = endpoint
        self.key = key
        self.tts = tts
        self.recordings_dir = Path(recordings_dir)
        self.name = re.sub(r"[^A-Za-z0-9_.-]", "_", name or f"call-{key}")[:80]
        self.log = logging.LoggerAdapter(log, {"call": self.name})
        self._digits: list[str] = []
        self._digit_times: list[float] = []
        self._finished_players: set[int] = set()
        self._changed = asyncio.Event()
        self.media_ready = asyncio.Event()
        self.ended = asyncio.Event()
        self.end_code = 0
        self.end_reason = ""
        self.rtp_timeout = False
        self.answered_at: float | None = None  # when our 200 OK went out
        self.confirmed_at: float | None = None
        self.first_audio_at: float | None = None  # when the first prompt was started
        self._recordings = 0
        self.events: list[SipEvent] = []  # every event seen, for logs and tests

    # --- events in (from the worker, on the loop) -----------------------------------------------

    def deliver(self, event: SipEvent) -> None:
        self.events.append(event)
        if isinstance(event, DtmfDigit):
            self.log.info("DTMF %s (%s)", event.digit, event.method)
            self._digits.append(event.digit)
            self._digit_times.append(time.monotonic())
        elif isinstance(event, PlaybackDone):
            self._finished_players.add(event.player)
        elif isinstance(event, MediaReady):
            self.media_ready.set()
        elif isinstance(event, CallConfirmed):
            self.confirmed_at = event.at
        elif isinstance(event, CallEnded):
            self.end_code, self.end_reason = event.code, event.reason
            self.rtp_timeout = event.rtp_timeout
            self.ended.set()
        self._changed.set()

    @property
    def hung_up(self) -> bool:
        return self.ended.is_set()

    # --- CallChannel ---------------------------------------------------------------------------

    async def say(self, text: str) -> PromptFinished:
        self._check()
        path = await self.tts.render(text)
        return await self.play(str(path))

    async def play(self, path: str) -> PromptFinished:
        self._check()
        finished = await self._play(path, barge_in=False)
        self._check()
        return finished

    async def gather(
        self,
        prompt: Prompt | None,
        *,
        max_digits: int = 1,
        terminator: str | None = "#",
        timeout: float = 5.0,
        inter_digit_timeout: float = 3.0,
        speech: bool = False,
        barge_in: bool = True,
    ) -> GatherResult:
        """DTMF only for now: `speech` is accepted and ignored (no recogniser wired yet)."""
        self._check()
        self._digits.clear()  # keys pressed before this gather started do not count
        self._digit_times.clear()
        if prompt is not None and (prompt.file or prompt.text):
            path = prompt.file or str(await self.tts.render(prompt.text))
            await self._play(path, barge_in=barge_in)
            self._check()
            if not barge_in:
                self._digits.clear()
                self._digit_times.clear()
        started = time.monotonic()

        def complete() -> str | None:
            keyed = "".join(self._digits)
            if terminator and terminator in keyed:
                return keyed.split(terminator, 1)[0][:max_digits]
            if len(keyed) >= max_digits:
                return keyed[:max_digits]
            return None

        while True:
            self._check()
            done = complete()
            if done is not None:
                return GatherResult(digits=done)
            if self._digit_times:
                deadline = self._digit_times[-1] + inter_digit_timeout
            else:
                deadline = started + timeout
            if not await self._wait_change(deadline):
                return GatherResult(digits="".join(self._digits)[:max_digits])

    async def record(
        self, *, max_seconds: float = 120.0, silence_timeout: float = 5.0, beep: bool = True
    ) -> Recording:
        """Record the caller to a WAV until `#`, `silence_timeout` of quiet, max length or hang-up.

        Silence is judged from pjsua's received signal level, polled every 100 ms; it starts
        counting once the caller has spoken or from the start of the recording.
        """
        self._check()
        if beep:
            await self._play(str(write_beep(self.recordings_dir / ".beep.wav")), barge_in=False)
            self._check()
        self._recordings += 1
        self.recordings_dir.mkdir(parents=True, exist_ok=True)
        path = self.recordings_dir / f"{self.name}-{self._recordings}.wav"
        self._digits.clear()
        self._digit_times.clear()
        try:
            recorder = await self.endpoint.start_recorder(self.key, str(path))
        except CallGone:
            raise CallerHungUp() from None
        started = time.monotonic()
        last_sound = started
        deadline = started + max_seconds
        try:
            while not self.hung_up and "#" not in self._digits:
                now = time.monotonic()
                if now >= deadline:
                    break
                try:
                    level = await self.endpoint.rx_level(self.key)
                except CallGone:
                    break
                now = time.monotonic()
                if level > SILENCE_LEVEL:
                    last_sound = now
                elif now - last_sound >= silence_timeout:
                    break
                await self._wait_change(min(deadline, now + 0.1))
        finally:
            await self.endpoint.stop_recorder(self.key, recorder)
        duration = await _closed_wav_seconds(path)
        return Recording(path=str(path), duration=duration, hung_up=self.hung_up)

    async def transfer(
        self, contacts: Sequence[str], *, ring_seconds: float = 20.0
    ) -> TransferResult:
        """Not built yet (the bridge is the next issue): always `failed`, so flows fall back."""
        self._check()
        self.log.warning("transfer to %s requested; bridging is not implemented", list(contacts))
        return TransferResult(TransferStatus.failed)

    async def hangup(self) -> None:
        if self.hung_up:
            return
        try:
            await self.endpoint.hangup(self.key, 603)
        except EndpointError:
            return
        try:
            await asyncio.wait_for(self.ended.wait(), 3.0)
        except TimeoutError:
            self.log.warning("no end of call 3s after hanging up")

    # --- helpers -------------------------------------------------------------------------------

    def _check(self) -> None:
        if self.hung_up:
            raise CallerHungUp()

    async def _wait_change(self, deadline: float) -> bool:
        """Wait for the next event or `deadline` (clock time); False when the deadline passed."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self._changed.clear()
        try:
            await asyncio.wait_for(self._changed.wait(), remaining)
        except TimeoutError:
            return False
        return True

    async def _play(self, path: str, *, barge_in: bool) -> PromptFinished:
        """Play a file to its end, the caller's first key (`barge_in`) or a hang-up."""
        length = wav_seconds(path)
        try:
            player = await self.endpoint.play(self.key, path)
        except CallGone:
            return PromptFinished(interrupted=True)
        if self.first_audio_at is None:
            self.first_audio_at = time.monotonic()
        deadline = time.monotonic() + length + EOF_GRACE
        interrupted = False
        keys_before = len(self._digits)
        try:
            while player not in self._finished_players and not self.hung_up:
                if barge_in and len(self._digits) > keys_before:
                    interrupted = True
                    break
                if not await self._wait_change(deadline):
                    break  # the EOF callback never came: the file's length is up anyway
        finally:
            self._finished_players.discard(player)
            try:
                await self.endpoint.stop_player(self.key, player)
            except EndpointError:
                pass
        return PromptFinished(interrupted=interrupted or self.hung_up)
