"""The call as the flow engine sees it: a small async protocol the SIP worker implements.

The engine never touches pjsua2. It asks the channel to speak, listen, record, bridge and hang up,
and gets back plain values. Media events (DTMF, recognised speech, end of a prompt, hang-up) are
the typed dataclasses below, so an adapter can queue them the way they arrive from its callbacks.

A hang-up always wins: once the caller is gone, every channel method raises `CallerHungUp`, which
the engine lets through every step so the call ends cleanly wherever it was. The one exception is
`record`, which returns what it captured (a voicemail left before hanging up must not be lost) with
`hung_up=True`; the next channel call raises.

All durations are seconds (float).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class CallerHungUp(Exception):
    """The caller is gone; raised by any channel method after the far end hung up."""


# --- events an adapter receives from the media/SIP layer -------------------------------------


@dataclass(frozen=True)
class DtmfReceived:
    digit: str  # "0"-"9", "*", "#"


@dataclass(frozen=True)
class SpeechHeard:
    text: str  # what the recogniser heard; matching against phrases is the engine's job
    confidence: float = 1.0


@dataclass(frozen=True)
class PromptFinished:
    interrupted: bool = False  # True when the caller barged in with a key or speech


@dataclass(frozen=True)
class HungUp:
    pass


CallEvent = DtmfReceived | SpeechHeard | PromptFinished | HungUp


# --- what the engine asks for and gets back ---------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    """Something to play before listening: text to synthesise, or a recorded file."""

    text: str = ""
    file: str | None = None

    def __str__(self) -> str:
        return self.text if self.file is None else f"[{self.file}]"


@dataclass(frozen=True)
class GatherResult:
    """Digits keyed (terminator stripped), or text heard, or neither when the caller was silent."""

    digits: str = ""
    heard: str | None = None

    @property
    def timed_out(self) -> bool:
        return not self.digits and not self.heard


@dataclass(frozen=True)
class Recording:
    path: str
    duration: float
    hung_up: bool = False  # the caller hung up to end the recording


class TransferStatus(StrEnum):
    answered = "answered"
    no_answer = "no_answer"
    busy = "busy"
    failed = "failed"


@dataclass(frozen=True)
class TransferResult:
    status: TransferStatus
    contact: str | None = None  # which of the rung contacts answered


class CallChannel(Protocol):
    """One answered inbound (or bridged outbound) call."""

    async def say(self, text: str) -> PromptFinished:
        """Synthesise and play `text`; returns when it finished playing."""
        ...

    async def play(self, path: str) -> PromptFinished:
        """Play an audio file (WAV, 8 kHz mono preferred)."""
        ...

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
        """Play `prompt` (a key or speech interrupts it when `barge_in`), then listen.

        Ends at `max_digits` digits, at the terminator, `inter_digit_timeout` after the last key,
        at the end of an utterance when `speech` is on, or after `timeout` of silence. Keys win
        over speech. `hints` are words to expect (the recogniser's prompt); `sensitive` keeps
        what the caller keys or says out of the channel's own logs.
        """
        ...

    async def record(
        self, *, max_seconds: float = 120.0, silence_timeout: float = 5.0, beep: bool = True
    ) -> Recording:
        """Record the caller until `#`, silence, `max_seconds` or hang-up."""
        ...

    async def transfer(
        self, contacts: Sequence[str], *, ring_seconds: float = 20.0
    ) -> TransferResult:
        """Ring the contacts (SIP URIs or E.164) at once; bridge the first to answer."""
        ...

    async def hangup(self) -> None:
        """End the call from our side; a no-op if it already ended."""
        ...
