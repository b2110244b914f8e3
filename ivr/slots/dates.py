"""A date a caller names by its day of the month: "December 3rd", "on the 28th", "Monday the
thirtieth". Ordinal words count only after "the" or a month ("give me a second" names no day,
nor does "first thing in the morning")."""

from __future__ import annotations

import re
from datetime import date

from ivr.slots.numbers import TENS

MONTHS = {
    name: i
    for i, names in enumerate(
        [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
         ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
         ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
         ("december", "dec")],
        start=1,
    )
    for name in names
}  # fmt: skip
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}  # fmt: skip


def _ordinal(words: list[str], i: int, *, bare: bool) -> int | None:
    """The day of month at `i`: "28th", "twenty eighth", or (`bare`, after a month) "28"."""
    word = words[i] if i < len(words) else ""
    nxt = words[i + 1] if i + 1 < len(words) else ""
    found = re.fullmatch(r"(\d{1,2})(st|nd|rd|th)", word)
    if found or (bare and word.isdigit() and len(word) <= 2):
        value = int(found.group(1) if found else word)
    elif word in ("twenty", "thirty") and nxt in _ORDINALS:
        value = TENS[word] + _ORDINALS[nxt]
    elif word in _ORDINALS and nxt != "thing":  # not "first thing in the morning"
        value = _ORDINALS[word]
    else:
        return None
    return value if 1 <= value <= 31 else None


def date_said(words: list[str]) -> tuple[int | None, int] | None:
    """(month or None, day of month) for "December 3rd", "Dec 3", "the 28th", "Monday the
    thirtieth"; None when no date is named."""
    for i, word in enumerate(words):
        if word in MONTHS and word != "may":  # "may" is mostly a verb
            start = i + 2 if i + 1 < len(words) and words[i + 1] == "the" else i + 1
            value = _ordinal(words, start, bare=True)
            if value:
                return MONTHS[word], value
        if word == "the":
            value = _ordinal(words, i + 1, bare=False)
            if value:
                return None, value
    return None


def next_date(month: int | None, day_of_month: int, today: date) -> date | None:
    """The next such date from today: this month (or year, with a month) if still ahead, else
    the next one that has that day."""
    year, at_month = today.year, month or today.month
    for _ in range(13):
        try:
            day: date | None = date(year, at_month, day_of_month)
        except ValueError:
            day = None
        if day is not None and day >= today:
            return day
        if month:
            year += 1
        else:
            year, at_month = (year + 1, 1) if at_month == 12 else (year, at_month + 1)
    return None
