"""One conversation from separately transcribed legs and the IVR's own log.

Each leg's recording starts at its own moment (the caller's at answer, the advisor's at the
bridge, a voicemail mid-flow): ASR times are relative to the file, so every segment is shifted
by its recording's offset from the call start. The IVR's prompts come from the flow log (what it
said and when it started), never from ASR: the text is exact, and the caller's leg does not
hold the IVR's audio anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ivr.redact import redact
from ivr.speech import SpeechSegment

CALLER, ADVISOR, IVR = "Caller", "Advisor", "IVR"
SPEAKERS = {"caller": CALLER, "advisor": ADVISOR}
PROMPT_S_PER_CHAR = 0.07  # piper reads ~14 characters a second: the length of an IVR line


@dataclass(frozen=True)
class Line:
    """A transcript line: who, from when to when (seconds from the call start), what."""

    speaker: str
    start: float
    end: float
    text: str
    confidence: float | None = None


@dataclass(frozen=True)
class PromptLine:
    offset_s: float  # when the IVR started saying it, seconds from the call start
    text: str


def shift(speaker: str, offset_s: float, segments: Iterable[SpeechSegment]) -> list[Line]:
    """A leg's ASR segments as call-relative lines of `speaker`."""
    return [
        Line(
            speaker=speaker,
            start=round(offset_s + s.start, 2),
            end=round(offset_s + s.end, 2),
            text=s.text,
            confidence=s.confidence,
        )
        for s in segments
        if s.text.strip()
    ]


def prompt_lines(prompts: Sequence[PromptLine]) -> list[Line]:
    """IVR lines: each lasts as long as its text takes to say, cut at the next prompt."""
    ordered = sorted(prompts, key=lambda p: p.offset_s)
    lines = []
    for i, p in enumerate(ordered):
        end = p.offset_s + PROMPT_S_PER_CHAR * len(p.text)
        if i + 1 < len(ordered):
            end = min(end, ordered[i + 1].offset_s)
        lines.append(Line(IVR, round(p.offset_s, 2), round(max(end, p.offset_s), 2), p.text))
    return lines


def merge(*tracks: Iterable[Line]) -> list[Line]:
    """All lines in time order (ties: IVR, then caller, then advisor), card numbers masked."""
    order = {IVR: 0, CALLER: 1, ADVISOR: 2}
    lines = [line for track in tracks for line in track]
    lines.sort(key=lambda x: (x.start, order.get(x.speaker, 3), x.end))
    return [
        Line(x.speaker, x.start, x.end, redact(x.text), x.confidence)
        for x in lines
        if x.text.strip()
    ]


def as_text(lines: Iterable[Line]) -> str:
    """The plain transcript: one `Speaker: text` line each."""
    return "\n".join(f"{x.speaker}: {x.text}" for x in lines)
