"""Legs and IVR lines become one call-relative, speaker-labelled, masked transcript."""

from __future__ import annotations

from ivr.redact import MASK
from ivr.speech import SpeechSegment
from transcription.merge import (
    ADVISOR,
    CALLER,
    IVR,
    PROMPT_S_PER_CHAR,
    Line,
    PromptLine,
    as_text,
    merge,
    prompt_lines,
    shift,
)


def test_legs_are_shifted_to_call_time_and_interleaved() -> None:
    caller = shift(
        CALLER,
        2.0,  # the caller's recording started at answer, 2 s into the call
        [
            SpeechSegment(1.0, 3.0, "Is my car ready?", 0.9),
            SpeechSegment(20.0, 22.5, "Thanks", 0.8),
        ],
    )
    advisor = shift(ADVISOR, 15.5, [SpeechSegment(0.5, 4.0, "Yes, it is ready.", 0.7)])
    lines = merge(caller, advisor)
    assert [(x.speaker, x.start, x.end, x.text) for x in lines] == [
        (CALLER, 3.0, 5.0, "Is my car ready?"),
        (ADVISOR, 16.0, 19.5, "Yes, it is ready."),
        (CALLER, 22.0, 24.5, "Thanks"),
    ]
    assert lines[1].confidence == 0.7


def test_ivr_lines_last_as_long_as_their_text_cut_at_the_next() -> None:
    lines = prompt_lines(
        [PromptLine(9.0, "Goodbye."), PromptLine(2.0, "For service, press 1. For parts, press 2.")]
    )
    assert [x.speaker for x in lines] == [IVR, IVR]
    assert lines[0].start == 2.0 and lines[0].end == round(2.0 + PROMPT_S_PER_CHAR * 41, 2)
    assert lines[1] == Line(IVR, 9.0, round(9.0 + PROMPT_S_PER_CHAR * 8, 2), "Goodbye.")
    short = prompt_lines([PromptLine(1.0, "A long prompt " * 10), PromptLine(2.0, "next")])
    assert short[0].end == 2.0  # never overlaps the next prompt


def test_merge_orders_ties_ivr_first_and_masks_card_numbers() -> None:
    lines = merge(
        [
            Line(
                CALLER,
                5.0,
                9.0,
                "it's four one one one one one one one one one one one one one one one",
            )
        ],
        [Line(IVR, 5.0, 6.0, "Please hold.")],
        [Line(ADVISOR, 1.0, 2.0, "  ")],  # empty text is dropped
    )
    assert [x.speaker for x in lines] == [IVR, CALLER]
    assert lines[1].text == f"it's {MASK}"
    assert as_text(lines) == f"IVR: Please hold.\nCaller: it's {MASK}"
