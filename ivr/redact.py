"""Mask card numbers (and any other long digit run) in text before it is stored.

A transcript may hold a card number read out to an advisor, as digits ("4111 1111 1111 1111",
"4111-1111-…") or as words ("four one one one …", "double one", "forty one"). Whisper writes
either form, so both are read as one run of digits: consecutive number tokens separated only by
spaces or punctuation. A run of 13 or more digits (13–19 is every card length; longer runs are
a card followed by its expiry or code, read in one breath) is replaced by `MASK`. Shorter runs
are left alone, so phone numbers (10–11 digits), RO numbers, dates, mileage and prices stay
readable. Pure: no I/O, used by the transcription worker before anything is written.
"""

from __future__ import annotations

import re

MASK = "[redacted]"
MIN_DIGITS = 13  # shortest card number (some Visa / Maestro); 13–19 covers every card length

_UNITS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_TEENS = {
    "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19",
}  # fmt: skip
_TENS = {
    "twenty": "2", "thirty": "3", "forty": "4", "fourty": "4", "fifty": "5", "sixty": "6",
    "seventy": "7", "eighty": "8", "ninety": "9",
}  # fmt: skip
_REPEAT = {"double": 2, "triple": 3}

_TOKEN = re.compile(r"\d+|[A-Za-z]+")
# What may stand between two parts of one spoken or written number.
_GAP = re.compile(r"[\s,.\-–—/()+]*")


def _digits(word: str) -> str | None:
    """The digits a token stands for, or None when it is not part of a number."""
    if word.isdigit():
        return word
    low = word.lower()
    return _UNITS.get(low) or _TEENS.get(low)


def redact(text: str) -> str:
    """`text` with every run of `MIN_DIGITS` or more digits (keyed or spoken) replaced."""
    tokens = list(_TOKEN.finditer(text))
    out: list[str] = []
    cursor = 0
    i = 0
    while i < len(tokens):
        run_end, count = _run(text, tokens, i)
        if run_end > i and count >= MIN_DIGITS:
            out.append(text[cursor : tokens[i].start()])
            out.append(MASK)
            cursor = tokens[run_end - 1].end()
            i = run_end
        else:
            i = max(run_end, i + 1)
    out.append(text[cursor:])
    return "".join(out)


def _run(text: str, tokens: list[re.Match[str]], first: int) -> tuple[int, int]:
    """From token `first`: (index after the run of number tokens, how many digits it holds).

    A "double"/"triple" before a number token repeats it; "forty one" is two digits, "forty"
    alone is "40". "oh" counts only inside a run, so an interjection cannot start one.
    """
    count = 0
    i = first
    while i < len(tokens):
        if i > first and not _GAP.fullmatch(text, tokens[i - 1].end(), tokens[i].start()):
            break
        word = tokens[i].group().lower()
        repeat = _REPEAT.get(word, 1)
        j = i + 1 if repeat > 1 else i
        if j >= len(tokens) or (
            j > i and not _GAP.fullmatch(text, tokens[i].end(), tokens[j].start())
        ):
            break
        token = tokens[j].group().lower()
        if token in _TENS:
            unit = tokens[j + 1].group().lower() if j + 1 < len(tokens) else ""
            gap_ok = j + 1 < len(tokens) and _GAP.fullmatch(
                text, tokens[j].end(), tokens[j + 1].start()
            )
            if gap_ok and unit in _UNITS and unit not in ("zero", "oh", "o"):
                digits, j = _TENS[token] + _UNITS[unit], j + 1
            else:
                digits = _TENS[token] + "0"
        else:
            found = _digits(token)
            if found is None or (count == 0 and token in ("oh", "o")):
                break
            digits = found
        count += len(digits) * repeat
        i = j + 1
    return i, count
