"""`CallChannel` over one pjsua2 call: prompts, DTMF gathers, recordings, bridged transfer.

The channel lives on the asyncio loop. It asks `SipEndpoint` (the pjsua2 thread) to start and
stop players and recorders, and the worker feeds it the call's events (`deliver`). Every wait
also watches for the caller hanging up, so a hang-up mid-prompt or mid-gather surfaces at once
as `CallerHungUp`, and every later method raises it too (except `record`, see the protocol).

Transfer (`transfer`): the advisor legs are outbound calls from the same endpoint, whose events
come straight to this channel (`_deliver_leg`). While they ring, the caller hears a looped
ringback tone. The first leg to answer is joined with the caller in the conference bridge and
the other legs are cancelled. `transfer` returns when the bridged conversation ends, not at the
answer: the engine treats `answered` as the end of the flow and the worker hangs up after the
flow, so returning at the answer would cut the conversation off. Either side hanging up sends a
BYE to the other, and the result is `answered` whoever left first. Unanswered: `no_answer` after
`ring_seconds` (legs cancelled), `busy` when every leg was refused 486/600/603, `failed` for other
refusals, undiallable contacts or no free call slot; the flow's fallbacks then run on a call
that is still up. The caller hanging up while it rings cancels the legs and raises
`CallerHungUp`.

Recordings: `start_recording` records the caller's leg from then to the hang-up (a consent
announcement first when given); a bridged transfer then also records the advisor's leg from
the bridge to the hang-up; `record` (voicemail) keeps its own file. Files go to
`recordings_dir/YYYY/MM/DD/<call_uuid>-{caller,advisor,voicemail}.wav`; `close` (the worker calls
it when the call is over) finishes them and `recordings` lists them with sha256 and duration.

A recording is never worth a call: when the recordings disk has less than `min_free_bytes`
free, or pjsua cannot create the file, that leg goes on unrecorded. The channel logs a warning,
counts it in the worker's `recordings_failed` (for /metrics) and lists it in `unrecorded`, which
`call.ended` carries. Each leg checks again, so recording resumes by itself once there is room.
A disk that fills up mid-recording leaves a partial file; it is repaired, kept and marked
`cut_short`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from events.health import WORKER_STATS
from ivr.flow.channel import (
    CallerHungUp,
    GatherResult,
    Prompt,
    PromptFinished,
    Recording,
    TransferResult,
    TransferStatus,
)
from ivr.speech import TTS, SpeechSegment, hint_prompt, no_words
from sip.endpoint import CallGone, EndpointError, NoCapacity, RecorderFailed, SipEndpoint
from sip.events import (
    CallConfirmed,
    CallEnded,
    CallProgress,
    DtmfDigit,
    MediaHold,
    MediaReady,
    PlaybackDone,
    SipEvent,
)
from sip.listen import Listener
from sip.media import (
    DEFAULT_TONES_DIR,
    MIN_RECORDING_FREE_BYTES,
    LegRecording,
    LegUnrecorded,
    beep_wav,
    finish_wav,
    free_bytes,
    recording_path,
    ringback_wav,
    wav_seconds,
)

log = logging.getLogger(__name__)

EOF_GRACE = 1.0  # seconds past a file's length before we stop waiting for the player's EOF
SILENCE_LEVEL = 4  # pjsua signal level (0..255); sipp's speech pcap measured 6-30, quiet 0


TYPEAHEAD_MAX = 16  # digits kept from between gathers (type-ahead); older ones are dropped


BUSY_CODES = frozenset({486, 600, 603})  # busy here, busy everywhere, declined
LEG_END_WAIT = 3.0  # seconds to wait for a cancelled or hung-up leg to report its end
SPEECH_GRACE = 1.0  # seconds past the VAD's max utterance before a started utterance is cut
FULL_DISK_CLOSE_WAIT = 0.2  # s for pjsua to close a recording on a full disk (normally ms)
CUT_SHORT_SLACK = 1.0  # seconds a WAV may fall short of its wall-clock span before it is "cut"
UNRECORDED_REASONS = {"disk_full": "disk full", "recorder_failed": "the recorder failed"}


class Recognizer(Protocol):
    """Speech to text for a gather, out of process (speech/recognizer.py `SpeechClient`).
    Returns None when it cannot (no service, timeout): the gather then heard nothing."""

    async def recognize(
        self, pcm: bytes, *, sample_rate: int = 8000, prompt: str | None = None
    ) -> SpeechSegment | None: ...


@dataclass
class _Leg:
    """One outbound call of a transfer, as its events describe it."""

    contact: str
    uri: str
    key: int = 0  # set once `dial` returns; its events may come before that
    progress: int = 0
    media: bool = False
    confirmed: bool = False
    ended: bool = False
    code: int = 0
    reason: str = ""


@dataclass
class _Recorder:
    key: int  # the call whose audio it records
    recorder: int
    role: str
    kind: str
    path: Path
    started_at: datetime


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
        media_dir: Path | None = None,
        call_uuid: str | None = None,
        roles: tuple[str, str] = ("caller", "advisor"),
        recognizer: Recognizer | None = None,
        min_free_bytes: int = MIN_RECORDING_FREE_BYTES,
    ) -> None:
        """`roles` name this call's leg and a bridged leg in recordings; a masked outbound
        call whose own leg is the advisor's passes ("advisor", "caller"). A leg is recorded
        only while `recordings_dir` has `min_free_bytes` free."""
        self.endpoint = endpoint
        self.own_role, self.bridged_role = roles
        self.recognizer = recognizer  # speech gathers; None: DTMF only
        self.vocabulary = ""  # store words (makes, models, names) added to the recogniser prompt
        self.speech_ended_at: float | None = None  # monotonic end of the last utterance heard
        self._sensitive = False  # a sensitive gather runs: keys are not logged
        self.key = key
        self.tts = tts
        self.recordings_dir = Path(recordings_dir)
        self.min_free_bytes = min_free_bytes
        self.media_dir = Path(media_dir) if media_dir is not None else DEFAULT_TONES_DIR
        self.call_uuid = call_uuid or str(uuid.uuid4())  # names this call's recording files
        self.started_at = datetime.now(UTC)
        self.name = re.sub(r"[^A-Za-z0-9_.-]", "_", name or f"call-{key}")[:80]
        self.log = logging.LoggerAdapter(log, {"call": self.name})
        # Keys the caller pressed: during a gather or record, its input; between them, the
        # type-ahead the next gather starts from (the last TYPEAHEAD_MAX of them).
        self._digits: list[str] = []
        self._digit_times: list[float] = []
        self._collecting = False  # a gather or record is reading `_digits`
        self.on_hold = False  # the caller holds the call (re-INVITE sendonly/inactive)
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
        self.events: list[SipEvent] = []  # every event seen, for logs and tests
        self.recordings: list[LegRecording] = []  # finished ones, in the order they ended
        self._recorders: list[_Recorder] = []  # running ones
        self.unrecorded: list[LegUnrecorded] = []  # legs that were due a recording but got none
        self._recording_call = False  # start_recording ran: legs are recorded
        self.bridged_to: str | None = None  # the contact of the bridged leg, once answered
        self._closed = False

    # --- events in (from the worker, on the loop) -----------------------------------------------

    def deliver(self, event: SipEvent) -> None:
        self.events.append(event)
        if isinstance(event, DtmfDigit):
            self.log.info("DTMF %s (%s)", "*" if self._sensitive else event.digit, event.method)
            self._digits.append(event.digit)
            self._digit_times.append(time.monotonic())
            if not self._collecting and len(self._digits) > TYPEAHEAD_MAX:
                del self._digits[:-TYPEAHEAD_MAX]
                del self._digit_times[:-TYPEAHEAD_MAX]
        elif isinstance(event, MediaHold):
            self.on_hold = event.held
            self.log.info("caller %s the call", "holds" if event.held else "resumed")
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

    def _deliver_leg(self, leg: _Leg, event: SipEvent) -> None:
        """Events of one of this channel's outbound (advisor) legs, straight from the endpoint.
        Bound to the leg, not looked up by key: a fast answer can arrive before `dial` returns."""
        self.events.append(event)
        if isinstance(event, CallProgress):
            leg.progress = event.code
            self.log.info("leg %s: %d %s", leg.contact, event.code, event.reason)
        elif isinstance(event, MediaReady):
            leg.media = True
        elif isinstance(event, CallConfirmed):
            leg.confirmed = True
        elif isinstance(event, CallEnded):
            leg.ended, leg.code, leg.reason = True, event.code, event.reason
            self.log.info("leg %s ended: %d %s", leg.contact, event.code, event.reason)
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
        hints: Sequence[str] = (),
        sensitive: bool = False,
    ) -> GatherResult:
        """Keys, and with `speech` (and a recogniser) the caller's voice, whichever comes first.

        Speech: a media port hears the caller from the start of the prompt (sip/listen.py); the
        start of speech stops the prompt like a key (barge-in), the end of the utterance (VAD
        silence, or its longest length) sends it to the recogniser with `hints` as its prompt;
        recognition already starts at the caller's first quarter second of silence (`Pause`),
        so when the utterance does end there its transcript is ready sooner.
        Keys still win: a key pressed while the caller speaks or while the recogniser works
        ends the gather with the keys. A started utterance keeps the gather open past `timeout`.
        An utterance the recogniser finds no words in (a cough, a noise) is not an answer: the
        gather listens on for the rest of its `timeout` (one cut at the VAD's cap ends it).

        Type-ahead: keys pressed since the last gather or record (during a `say` before this
        gather, say; the last TYPEAHEAD_MAX of them) are this gather's first input, and any
        type-ahead skips the prompt (the caller is already answering); when it completes the
        gather, the gather returns at once. A prompt without `barge_in` is the exception: it
        plays out and only keys pressed after it count. The gather consumes the buffer:
        whatever is left over (keys past the terminator, say) is dropped.
        """
        self._check()
        self._collecting = True
        self._sensitive = sensitive
        listener: Listener | None = None
        if speech and self.recognizer is not None:
            listener = Listener(self.endpoint, self.key, self._changed.set)
            try:
                await listener.attach()
            except EndpointError as exc:
                self.log.warning("cannot listen for speech (%s): keys only", exc)
                listener = None
        try:
            return await self._gather(
                prompt,
                max_digits=max_digits,
                terminator=terminator,
                timeout=timeout,
                inter_digit_timeout=inter_digit_timeout,
                barge_in=barge_in,
                listener=listener,
                hints=hints,
            )
        finally:
            self._collecting = False
            self._sensitive = False
            self._digits.clear()
            self._digit_times.clear()
            if listener is not None:
                await listener.detach()

    async def _gather(
        self,
        prompt: Prompt | None,
        *,
        max_digits: int,
        terminator: str | None,
        timeout: float,
        inter_digit_timeout: float,
        barge_in: bool,
        listener: Listener | None = None,
        hints: Sequence[str] = (),
    ) -> GatherResult:
        def complete() -> str | None:
            keyed = "".join(self._digits)
            if terminator and terminator in keyed:
                return keyed.split(terminator, 1)[0][:max_digits]
            if len(keyed) >= max_digits:
                return keyed[:max_digits]
            return None

        if self._digits:
            self.log.info("type-ahead: %s", "*" * len(self._digits) if self._sensitive
                          else "".join(self._digits))  # fmt: skip
        has_prompt = prompt is not None and bool(prompt.file or prompt.text)
        if has_prompt and not barge_in:
            self._digits.clear()
            self._digit_times.clear()
        if prompt is not None and has_prompt and not self._digits:
            path = prompt.file or str(await self.tts.render(prompt.text))
            await self._play(path, barge_in=barge_in, listener=listener)
            self._check()
            if not barge_in:
                self._digits.clear()
                self._digit_times.clear()
        started = time.monotonic()
        speech_limit = listener.endpointer.max_frames * 0.02 + SPEECH_GRACE if listener else 0.0

        while True:
            self._check()
            done = complete()
            if done is not None:
                return GatherResult(digits=done)
            if listener is not None and listener.utterance is not None and not self._digits:
                result = await self._recognize(listener, hints, complete)
                if result.heard or result.digits or listener.utterance.truncated:
                    return result
                if time.monotonic() >= started + timeout:
                    return result
                # no words in that sound (a cough, a bump, a burst of music): listen on
                listener.rearm()
                continue
            if listener is not None and listener.pause is not None:
                self._guess(listener, listener.pause, hints)
            if self._digit_times:
                # type-ahead keys are older than the gather: their gap counts from its start
                deadline = max(self._digit_times[-1], started) + inter_digit_timeout
            elif listener is not None and listener.started_at is not None:
                # an utterance under way: its end (or the VAD's longest one) ends the gather
                deadline = max(started + timeout, listener.started_at + speech_limit)
            else:
                deadline = started + timeout
            if not await self._wait_change(deadline):
                if listener is not None and not self._digits and listener.flush() is not None:
                    return await self._recognize(listener, hints, complete)
                return GatherResult(digits="".join(self._digits)[:max_digits])

    def _guess(
        self, listener: Listener, pcm: bytes, hints: Sequence[str]
    ) -> asyncio.Future[object]:
        """Recognition of `pcm`, started at most once per audio: at the caller's pause it runs
        while the VAD waits out the silence, and serves the utterance if it ends there."""
        if listener.guess is not None and listener.guess[0] == pcm:
            return listener.guess[1]
        if listener.guess is not None:
            listener.guess[1].cancel()  # the caller spoke again: that guess is stale
        assert self.recognizer is not None
        task = asyncio.ensure_future(
            self.recognizer.recognize(
                pcm, sample_rate=8000, prompt=hint_prompt(hints, self.vocabulary)
            )
        )
        listener.guess = (pcm, task)
        return task

    async def _recognize(
        self, listener: Listener, hints: Sequence[str], complete: Callable[[], str | None]
    ) -> GatherResult:
        """The utterance's transcript (from the pause's guess when the audio is the same);
        a key pressed meanwhile wins."""
        assert listener.utterance is not None and self.recognizer is not None
        self.speech_ended_at = time.monotonic()
        pcm = listener.utterance.pcm
        task = self._guess(listener, pcm, hints)
        try:
            while not task.done():
                self._check()
                done = complete()
                if done is not None:
                    self.log.info("keys during recognition win")
                    return GatherResult(digits=done)
                self._changed.clear()
                changed = asyncio.ensure_future(self._changed.wait())
                await asyncio.wait({task, changed}, return_when=asyncio.FIRST_COMPLETED)
                changed.cancel()
            segment = task.result()
            assert segment is None or isinstance(segment, SpeechSegment)
        finally:
            if not task.done():
                task.cancel()
        took = (time.monotonic() - self.speech_ended_at) * 1000
        if segment is None or no_words(segment.text):
            shown = "" if segment is None or self._sensitive else f" but {segment.text!r}"
            self.log.info("%.1fs of sound, no words%s (%.0f ms)", len(pcm) / 16000, shown, took)
            return GatherResult()
        shown = "(sensitive)" if self._sensitive else repr(segment.text)
        self.log.info("heard %s (confidence %.2f, %.0f ms after the end of speech)", shown,
                      segment.confidence, took)  # fmt: skip
        return GatherResult(heard=segment.text)

    async def record(
        self, *, max_seconds: float = 120.0, silence_timeout: float = 5.0, beep: bool = True
    ) -> Recording:
        """Record the caller to a WAV until `#`, `silence_timeout` of quiet, max length or hang-up.

        Silence is judged from pjsua's received signal level, polled every 100 ms; it starts
        counting once the caller has spoken or from the start of the recording.
        """
        self._check()
        self._collecting = True
        try:
            return await self._record(max_seconds, silence_timeout, beep)
        finally:
            self._collecting = False  # its '#' is not type-ahead for the next gather
            self._digits.clear()
            self._digit_times.clear()

    async def _record(self, max_seconds: float, silence_timeout: float, beep: bool) -> Recording:
        if beep:
            await self._play(str(beep_wav(self.media_dir)), barge_in=False)
            self._check()
        self._digits.clear()
        self._digit_times.clear()
        try:
            active = await self._start_recorder(self.key, "caller", "voicemail", "voicemail")
        except CallGone:
            raise CallerHungUp() from None
        # Unrecorded (disk full): the caller still leaves the message, and the flow still makes
        # the callback, from a voicemail of 0 s without a file.
        path = str(active.path) if active else ""
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
            finished = await self._finish_recorder(active) if active else None
        duration = finished.duration_s if finished else 0.0
        return Recording(path=path if finished else "", duration=duration, hung_up=self.hung_up)

    async def transfer(
        self,
        contacts: Sequence[str],
        *,
        ring_seconds: float = 20.0,
        caller_id: str | None = None,
    ) -> TransferResult:
        """Ring `contacts` at once and bridge the first to answer; returns when that bridged
        call ends (`answered`), or at once when nobody can be reached (see the module doc).
        `caller_id` (a SIP URI) is the legs' From and P-Asserted-Identity: a masked call
        shows the store's number, never the advisor's."""
        self._check()
        masked: dict[str, object] = {}
        if caller_id:
            masked = {"from_uri": caller_id,
                      "headers": {"P-Asserted-Identity": f"<{caller_id}>"}}  # fmt: skip
        uris: dict[str, str] = {}
        for contact in contacts:
            uri = self.endpoint.config.dial_uri(contact)
            if uri is None:
                self.log.warning(
                    "transfer: cannot dial %r (numbers need a trunk_uri in the endpoint config)",
                    contact,
                )
            else:
                uris[contact] = uri
        if not uris:
            return TransferResult(TransferStatus.failed)
        legs: dict[int, _Leg] = {}
        ringback: int | None = None
        bridged: _Leg | None = None
        connected = False
        try:
            for contact, uri in uris.items():
                leg = _Leg(contact, uri)
                try:
                    leg.key = await self.endpoint.dial(
                        uri,
                        lambda event, leg=leg: self._deliver_leg(leg, event),
                        **masked,  # type: ignore[arg-type]
                    )
                except NoCapacity:
                    self.log.warning("transfer: no free call slot to ring %s", contact)
                    break
                except EndpointError as exc:
                    self.log.warning("transfer: cannot ring %s: %s", contact, exc)
                    continue
                legs[leg.key] = leg
                self.log.info("transfer: ringing %s (%s)", contact, uri)
            if not legs:
                return TransferResult(TransferStatus.failed)
            with contextlib.suppress(EndpointError):
                ringback = await self.endpoint.play(
                    self.key, str(ringback_wav(self.media_dir)), loop=True
                )
            deadline = time.monotonic() + ring_seconds
            while bridged is None:
                self._check()  # the caller gave up: the finally cancels the legs
                bridged = next(
                    (leg for leg in legs.values() if leg.confirmed and leg.media and not leg.ended),
                    None,
                )
                if bridged is not None:
                    break
                if all(leg.ended for leg in legs.values()):
                    codes = [leg.code for leg in legs.values()]
                    busy = all(code in BUSY_CODES for code in codes)
                    status = TransferStatus.busy if busy else TransferStatus.failed
                    self.log.info("transfer: %s (%s)", status, codes)
                    return TransferResult(status)
                if not await self._wait_change(deadline):
                    self.log.info("transfer: no answer in %.1fs", ring_seconds)
                    return TransferResult(TransferStatus.no_answer)
            await self._stop_ringback(ringback)
            ringback = None
            await self._end_legs([leg for leg in legs.values() if leg is not bridged], wait=False)
            try:
                await self.endpoint.connect(self.key, bridged.key)
            except EndpointError:
                self._check()
                self.log.warning("transfer: %s left before the bridge", bridged.contact)
                return TransferResult(TransferStatus.failed)
            connected = True
            self.bridged_to = bridged.contact
            self.log.info("transfer: bridged with %s", bridged.contact)
            if self._recording_call:
                with contextlib.suppress(EndpointError):
                    role = self.bridged_role
                    await self._start_recorder(bridged.key, role, "call", role)
            while not self.hung_up and not bridged.ended:
                await self._wait_change(time.monotonic() + 3600)
            who = self.own_role if self.hung_up else self.bridged_role
            self.log.info("transfer: bridged call ended by the %s", who)
            return TransferResult(TransferStatus.answered, contact=bridged.contact)
        finally:
            await self._stop_ringback(ringback)
            await self._end_legs(list(legs.values()), wait=True)
            if bridged is not None:
                for active in [r for r in self._recorders if r.key == bridged.key]:
                    await self._finish_recorder(active)
            if connected and not self.hung_up:
                await self.hangup()  # the advisor left: the caller gets a BYE too

    async def start_recording(self, *, consent_prompt: str | None = None) -> None:
        """Record the caller's leg from now to the hang-up, and the advisor's leg of a bridged
        transfer from the bridge on. `consent_prompt` (the store's recording-consent
        announcement) is said first, so nothing is recorded before the caller heard it."""
        self._check()
        if self._recording_call:
            return
        if consent_prompt:
            await self.say(consent_prompt)
        try:
            await self._start_recorder(self.key, self.own_role, "call", self.own_role)
        except CallGone:
            raise CallerHungUp() from None
        self._recording_call = True

    async def close(self) -> list[LegRecording]:
        """End the call if it is up and finish every recording (the worker calls this once the
        handler is done, also on shutdown); returns `recordings`. Safe to call again."""
        if not self._closed:
            self._closed = True
            with contextlib.suppress(EndpointError):
                await self.hangup()
            for active in list(self._recorders):
                await self._finish_recorder(active)
        return self.recordings

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

    async def _start_recorder(
        self, key: int, role: str, kind: str, suffix: str
    ) -> _Recorder | None:
        """Start recording a leg; None when it cannot be (see the module doc): the call goes on.
        `CallGone` and other `EndpointError`s (no audio yet) are the caller's to handle."""
        free = free_bytes(self.recordings_dir)
        if free is not None and free < self.min_free_bytes:
            detail = f"{free} bytes free in {self.recordings_dir}, {self.min_free_bytes} needed"
            self._unrecorded(role, kind, "disk_full", detail)
            return None
        path = recording_path(self.recordings_dir, self.started_at, self.call_uuid, suffix)
        n = 1
        while path.exists() or any(r.path == path for r in self._recorders):
            n += 1
            path = recording_path(
                self.recordings_dir, self.started_at, self.call_uuid, f"{suffix}-{n}"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._unrecorded(role, kind, self._failure_reason(),
                             f"cannot create {path.parent}: {exc}")  # fmt: skip
            return None
        started_at = datetime.now(UTC)
        try:
            recorder = await self.endpoint.start_recorder(key, str(path))
        except RecorderFailed as exc:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)  # the name was free above: nothing of another's
            self._unrecorded(role, kind, "recorder_failed", str(exc))
            return None
        active = _Recorder(key, recorder, role, kind, path, started_at)
        self._recorders.append(active)
        return active

    async def _finish_recorder(self, active: _Recorder) -> LegRecording | None:
        """Stop a recorder (a no-op once its call ended: the endpoint closed it) and add the
        finished file, with its length and sha256, to `recordings`."""
        if active in self._recorders:
            self._recorders.remove(active)
        with contextlib.suppress(EndpointError):
            await self.endpoint.stop_recorder(active.key, active.recorder)
        # On a full disk pjsua cannot write the final header at all: repair it without waiting.
        full = self._failure_reason() == "disk_full"
        finished = await finish_wav(active.path, timeout=FULL_DISK_CLOSE_WAIT if full else 2.0)
        if finished is None:
            with contextlib.suppress(OSError):  # no broken file left for anybody to serve
                active.path.unlink(missing_ok=True)
            reason = "disk_full" if full else "recorder_failed"
            self._unrecorded(active.role, active.kind, reason, f"{active.path} was not written",
                             at=active.started_at)  # fmt: skip
            return None
        duration, digest = finished
        span = (datetime.now(UTC) - active.started_at).total_seconds()
        cut_short = full and duration < span - CUT_SHORT_SLACK
        recording = LegRecording(
            role=active.role,
            path=str(active.path),
            sha256=digest,
            duration_s=duration,
            kind=active.kind,
            started_at=active.started_at,
            cut_short=cut_short,
        )
        self.recordings.append(recording)
        if cut_short:
            WORKER_STATS.recording_failed("cut_short")
            self.log.warning("call %s: %s leg (%s) recording cut short, the recordings disk is "
                             "full: %.1fs of %.1fs kept in %s", self.call_uuid, active.role,
                             active.kind, duration, span, active.path)  # fmt: skip
        else:
            self.log.info("recorded %s leg (%s): %.1fs %s", active.role, active.kind, duration,
                          active.path)  # fmt: skip
        return recording

    def _failure_reason(self) -> str:
        """Why a recording failed, as far as the disk tells: full, or something else."""
        free = free_bytes(self.recordings_dir)
        return "disk_full" if free is not None and free < self.min_free_bytes else "recorder_failed"

    def _unrecorded(
        self, role: str, kind: str, reason: str, detail: str, *, at: datetime | None = None
    ) -> None:
        self.unrecorded.append(LegUnrecorded(role, kind, reason, at or datetime.now(UTC)))
        WORKER_STATS.recording_failed(reason)
        self.log.warning("call %s: %s leg (%s) not recorded: %s (%s)", self.call_uuid, role,
                         kind, UNRECORDED_REASONS[reason], detail)  # fmt: skip

    async def _stop_ringback(self, player: int | None) -> None:
        if player is not None:
            with contextlib.suppress(EndpointError):
                await self.endpoint.stop_player(self.key, player)

    async def _end_legs(self, legs: list[_Leg], *, wait: bool) -> None:
        """CANCEL ringing legs, BYE an answered one; with `wait`, until they report the end."""
        for leg in legs:
            if not leg.ended:
                with contextlib.suppress(EndpointError):
                    await self.endpoint.hangup(leg.key, 487)
        deadline = time.monotonic() + LEG_END_WAIT
        while wait and not all(leg.ended for leg in legs):
            if not await self._wait_change(deadline):
                self.log.warning("transfer: legs still up %.0fs after hanging up", LEG_END_WAIT)
                return

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

    async def _play(
        self, path: str, *, barge_in: bool, listener: Listener | None = None
    ) -> PromptFinished:
        """Play a file to its end, the caller's first key or speech (`barge_in`), or a hang-up."""
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
                if barge_in and (
                    len(self._digits) > keys_before or (listener is not None and listener.started)
                ):
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
