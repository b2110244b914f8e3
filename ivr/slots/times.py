"""A day and time a caller says ("tomorrow around nine", "Friday morning", "at five", "after
lunch") as a moment in the store's time zone.

Callers leave most of it out, so the store's opening hours fill the gaps: "at five" is 5 PM
because the store is open at 5 PM and not at 5 AM; "at seven" is 7 AM at a store open 7 to 6;
a time with no day is today if it is still ahead and the store is open then, else the next day
it is. A part of the day ("this afternoon") or a day alone ("Friday") is kept as said, with a
representative moment for sorting and the store's hours: `When.precision` says which. What is
said back to the caller is `When.spoken` ("tomorrow around 9 AM", "Friday morning").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

from ivr.hours import DAY_NAMES, Hours, clock
from ivr.slots.dates import date_said, next_date
from ivr.slots.numbers import TEENS, TENS, UNITS

Precision = Literal["time", "part", "day"]

WEEKDAY_WORDS = {name.lower(): i for i, name in enumerate(DAY_NAMES)} | {
    "tues": 1,
    "weds": 2,
    "thurs": 3,
}
# Parts of a day: (representative time, whether it is PM for an hour said without AM/PM).
PARTS: dict[str, tuple[time, bool | None]] = {
    "morning": (time(9), False),
    "first thing": (time(7), False),  # replaced by the opening time
    "lunch": (time(12), None),
    "after lunch": (time(13), True),
    "afternoon": (time(14), True),
    "evening": (time(17), True),
    "end of day": (time(17), True),  # replaced by half an hour before closing
}
PART_LENGTH = timedelta(hours=3)  # a part of a day is over this long after its moment
APPROX = {"around", "about", "ish", "roughly", "approximately", "approx", "like"}
QUALIFIERS = {"after": "after", "before": "before", "by": "by", "until": "by", "till": "by"}
_MINUTE_WORDS = {**{k: v for k, v in TENS.items() if v <= 50}, **TEENS}
_HOUR_WORDS = {k: v for k, v in (UNITS | TEENS).items() if 1 <= v <= 12 and k not in ("o",)}


@dataclass(frozen=True)
class When:
    """A moment a caller named. `at` is aware, in the store's zone; `open` says whether the
    store is open then (for a day alone: open that day)."""

    at: datetime
    precision: Precision
    spoken: str  # "tomorrow around 9 AM", "this afternoon", "Friday"
    open: bool
    qualifier: str = "at"  # at, around, after, before, by

    def __str__(self) -> str:
        return self.spoken

    @property
    def date(self) -> date:
        return self.at.date()

    def isoformat(self) -> str:
        return self.at.isoformat()


@dataclass
class _Said:
    """What the words gave, before the store's calendar fills the gaps."""

    day: int | None = None  # days from today
    weekday: int | None = None
    next_week: bool = False
    part: str | None = None
    hour: int | None = None
    minute: int = 0
    pm: bool | None = None  # None: not said
    qualifier: str = "at"
    delta: timedelta | None = None  # "in twenty minutes"
    month: int | None = None  # "December 3rd": month and day of month (no month: "the 28th")
    day_of_month: int | None = None

    @property
    def anything(self) -> bool:
        fields = (self.day, self.weekday, self.part, self.hour, self.delta, self.day_of_month)
        return any(v is not None for v in fields)


def _words(text: str) -> list[str]:
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"\b([ap])\.\s?m\b\.?", r" \1m ", text)  # a.m. / p. m.
    text = re.sub(r"(\d)\s*([ap]m)\b", r"\1 \2", text)  # 5pm
    text = re.sub(r"\b([ap]) m\b", r"\1m", text)
    text = text.replace("o'clock", " oclock ").replace("o clock", " oclock ")
    text = re.sub(r"(\w)-?ish\b", r"\1 ish", text)
    words = re.findall(r"\d{1,2}:\d\d|[a-z0-9]+", text)
    return [_homophone(words, i) for i in range(len(words))]


def _homophone(words: list[str], i: int) -> str:
    """tiny.en writes "for" for four: "tomorrow for 30", "at for pm"."""
    if words[i] != "for":
        return words[i]
    prev = words[i - 1] if i else ""
    nxt = words[i + 1] if i + 1 < len(words) else ""
    timely = nxt in ("am", "pm", "oclock", "thirty", "fifteen", "forty", "ish")
    timely = timely or (nxt.isdigit() and len(nxt) == 2) or prev in ("at", "around", "about")
    return "four" if timely else "for"


def _hour_at(words: list[str], i: int) -> tuple[int, int, int] | None:
    """(hour, minute, index after) for a clock time at `i`: "5:30", "five thirty", "9", "1730"."""
    word = words[i]
    nxt = words[i + 1] if i + 1 < len(words) else ""
    if ":" in word:
        h, m = (int(p) for p in word.split(":"))
        return (h, m, i + 1) if h <= 23 and m <= 59 else None
    if word.isdigit():
        value = int(word)
        if len(word) in (3, 4) and value % 100 < 60 and value // 100 <= 23:
            return value // 100, value % 100, i + 1
        if value > 23:
            return None
        if nxt.isdigit() and len(nxt) == 2 and int(nxt) < 60:  # "9 30"
            return value, int(nxt), i + 2
        return value, 0, i + 1
    if word in ("noon", "midday"):
        return 12, 0, i + 1
    if word not in _HOUR_WORDS:
        return None
    hour, j = _HOUR_WORDS[word], i + 1
    if nxt in ("oh", "o") and j + 1 < len(words) and words[j + 1] in UNITS:  # "nine oh five"
        return hour, UNITS[words[j + 1]], j + 2
    if nxt in _MINUTE_WORDS:
        minute, j = _MINUTE_WORDS[nxt], j + 1
        after = words[j] if j < len(words) else ""
        if minute >= 20 and after in UNITS and UNITS[after] > 0:
            minute, j = minute + UNITS[after], j + 1
        return hour, minute, j
    if nxt.isdigit() and len(nxt) == 2 and int(nxt) < 60:
        return hour, int(nxt), j + 1
    return hour, 0, j


def _clock(words: list[str], said: _Said) -> None:
    """Find the clock time: after a cue ("at", "around", "by") or before "am"/"pm"/"oclock"."""
    for i, word in enumerate(words):
        prev = words[i - 1] if i else ""
        if word in ("half", "quarter") and i + 2 < len(words) and words[i + 1] in ("past", "to"):
            found = _hour_at(words, i + 2)
            if found:
                minute = 30 if word == "half" else 15
                hour = found[0] if words[i + 1] == "past" else found[0] - 1 or 12
                minute = minute if words[i + 1] == "past" else 60 - minute
                said.hour, said.minute = hour, minute
                _ampm(words, found[2], said)
                return
        found = _hour_at(words, i)
        if not found:
            continue
        hour, minute, end = found
        after = words[end] if end < len(words) else ""
        if word.isdigit() and (after.isdigit() or prev.isdigit()):
            continue  # a group of a longer number: "call me at 555 312 4456"
        cued = prev in ("at", "around", "about", "by", "after", "before", "til", "till", "until")
        days = ("tomorrow", "today", "tonight")
        cued = cued or prev in WEEKDAY_WORDS or prev in days
        cued = cued or after in WEEKDAY_WORDS or after in days
        marked = after in ("am", "pm", "oclock", "ish") or ":" in words[i] or word == "noon"
        if not (cued or marked or word == "midday"):
            continue
        said.hour, said.minute = hour, minute
        if hour > 12:
            said.pm = True
        _ampm(words, end, said)
        for back in words[max(0, i - 3) : i]:
            if back in APPROX:
                said.qualifier = "around"
            elif back in QUALIFIERS:
                said.qualifier = QUALIFIERS[back]
        if after == "ish":
            said.qualifier = "around"
        return


def _ampm(words: list[str], end: int, said: _Said) -> None:
    after = words[end : end + 4]
    if after[:1] == ["am"]:
        said.pm = False
    elif after[:1] == ["pm"]:
        said.pm = True
    elif "morning" in after[:3]:
        said.pm = False
    elif {"afternoon", "evening", "tonight", "night"} & set(after[:3]):
        said.pm = True


def _day_and_part(words: list[str], said: _Said) -> None:
    joined = " ".join(words)
    if "day after tomorrow" in joined:
        said.day = 2
    elif "tomorrow" in words or "tmrw" in words or "tomorow" in words:
        said.day = 1
    elif "today" in words or "tonight" in words or "this morning" in joined:
        said.day = 0
    for i, word in enumerate(words):
        if word in WEEKDAY_WORDS and said.day is None:
            said.weekday = WEEKDAY_WORDS[word]
            said.next_week = i > 0 and words[i - 1] == "next"
        if word == "weekend" and said.day is None and said.weekday is None:
            said.weekday = 5
    if "after lunch" in joined:
        said.part = "after lunch"
    elif "first thing" in joined:
        said.part = "first thing"
    elif re.search(r"\b(end of (the )?day|before (you|y all|they) close|closing)\b", joined):
        said.part = "end of day"
    elif re.search(r"\b(lunch|lunchtime)\b", joined):
        said.part = "lunch"
    elif "afternoon" in words:
        said.part = "afternoon"
    elif "evening" in words or "tonight" in words or "night" in words:
        said.part = "evening"
    elif "morning" in words:
        said.part = "morning"


_AMOUNTS = {"a": 1, "an": 1, "one": 1, "couple": 2, "few": 3} | {
    k: v for k, v in UNITS.items() if v
}


def _relative(words: list[str], said: _Said) -> None:
    """ "in twenty minutes", "in an hour", "in half an hour", "in a couple of hours"."""
    joined = " ".join(words)
    if re.search(r"\bin (a )?half (an )?hour\b", joined):
        said.delta = timedelta(minutes=30)
        return
    match = re.search(
        r"\bin (?:about |around )?(\w+)(?: (\w+))?(?: of)? (minutes?|mins?|hours?)\b", joined
    )
    if not match:
        return
    first, second, unit = match.groups()
    if first in ("a", "an") and second in _AMOUNTS:  # "in a couple of hours"
        first, second = second, None
    amount = _AMOUNTS.get(first) or (int(first) if first.isdigit() else None)
    if first in TENS:
        amount = TENS[first] + (UNITS.get(second or "", 0) if second else 0)
    elif first in TEENS:
        amount = TEENS[first]
    if amount is None:
        return
    minutes = amount * (60 if unit.startswith("hour") else 1)
    if 0 < minutes <= 12 * 60:
        said.delta = timedelta(minutes=minutes)
        said.qualifier = "around"


def parse(text: str) -> _Said:
    """The parts of a time the words name (no calendar yet)."""
    words = _words(text)
    said = _Said()
    _relative(words, said)
    if said.delta is None:
        found = date_said(words)
        if found:
            said.month, said.day_of_month = found
        _day_and_part(words, said)
        _clock(words, said)
    return said


def _pick_hour(said: _Said, day: date, hours: Hours) -> int:
    """The 24-hour hour for what was said on `day`: AM/PM as said, else as the part of the day
    implies, else the one the store is open at, else the usual (7-11 AM, 12-6 PM)."""
    assert said.hour is not None
    hour = said.hour
    if hour >= 13 or hour == 0:
        return hour % 24
    pm = said.pm
    if pm is None and said.part is not None:
        pm = PARTS[said.part][1]
    if pm is not None:
        return (hour % 12) + (12 if pm else 0)
    if hour == 12:
        return 12
    spans = hours.spans_on(day)
    open_ones = [
        h for h in (hour, hour + 12) if any(a <= time(h, said.minute) < b for a, b in spans)
    ]
    if len(open_ones) == 1:
        return open_ones[0]
    return hour if 7 <= hour <= 11 else hour + 12


def _part_time(part: str, day: date, hours: Hours) -> time:
    spans = hours.spans_on(day)
    if part == "first thing" and spans:
        return spans[0][0]
    if part == "end of day" and spans:
        closes = datetime.combine(day, spans[-1][1]) - timedelta(minutes=30)
        return closes.time()
    moment = PARTS[part][0]
    if part == "morning" and spans and spans[0][0] > moment:
        return spans[0][0]
    return moment


def _day_label(day: date, today: date, part: str | None) -> str:
    delta = (day - today).days
    if delta == 0:
        if part == "evening":
            return "tonight"
        if part in ("morning", "afternoon"):
            return f"this {part}"
        label = "today"
    elif delta == 1:
        label = "tomorrow"
    elif 1 < delta < 7:
        label = DAY_NAMES[day.weekday()]
    else:
        label = f"{DAY_NAMES[day.weekday()]}, {day:%B} {day.day}"
    if part is None:
        return label
    if part == "first thing":
        return f"first thing {label}" + (" morning" if delta == 1 else "")
    spoken_part = {"end of day": "before closing", "lunch": "at lunch"}
    return f"{label} {spoken_part.get(part, part)}"


def _moment(said: _Said, day: date, hours: Hours) -> datetime:
    if said.hour is not None:
        at = time(_pick_hour(said, day, hours), said.minute)
    elif said.part is not None:
        at = _part_time(said.part, day, hours)
    else:
        spans = hours.spans_on(day)
        at = spans[0][0] if spans else time(9)
    return datetime.combine(day, at, tzinfo=hours.tz)


def resolve(text: str, now: datetime, hours: Hours) -> When | None:
    """The moment `text` names, seen from `now` at a store with `hours`; None if it names none."""
    said = parse(text)
    if not said.anything:
        return None
    local = now.astimezone(hours.tz)
    today = local.date()
    if said.delta is not None:
        at = (local + said.delta).replace(second=0, microsecond=0)
        minute = (at.minute + 4) // 5 * 5  # "in twenty minutes" is never to the minute
        at = at.replace(minute=0) + timedelta(minutes=minute)
        label = f"{_day_label(at.date(), today, None)} around {clock(at.time())}"
        return When(at, "time", label, hours.open_at(at), "around")
    on_date = next_date(said.month, said.day_of_month, today) if said.day_of_month else None
    if on_date is not None:
        day = on_date
    elif said.day is not None:
        day = today + timedelta(days=said.day)
    elif said.weekday is not None:
        ahead = (said.weekday - today.weekday()) % 7
        day = today + timedelta(days=ahead or (7 if said.next_week else 0))
    else:
        day = _first_day(said, local, hours)
    at = _moment(said, day, hours)
    if said.hour is not None:
        precision: Precision = "time"
        spoken = f"{_day_label(day, today, None)} {said.qualifier} {clock(at.time())}"
        is_open = hours.open_at(at)
    elif said.part is not None:
        precision = "part"
        spoken = _day_label(day, today, said.part)
        is_open = hours.open_at(at)
    else:
        precision = "day"
        spoken = _day_label(day, today, None)
        is_open = bool(hours.spans_on(day))
    return When(at, precision, spoken, is_open, said.qualifier)


def _first_day(said: _Said, now: datetime, hours: Hours) -> date:
    """No day said: the first day from today on which the moment is ahead and the store open;
    today (or tomorrow, when it has passed) when there is none in a week. A part of the day
    already over ("first thing in the morning" at 3 PM) is the next open day's."""
    today = now.date()
    if said.hour is None:
        if said.part is None or _moment(said, today, hours) + PART_LENGTH > now:
            return today  # "this afternoon", "after lunch": today, as said
        for offset in range(1, 8):
            day = today + timedelta(days=offset)
            if hours.spans_on(day):
                return day
        return today + timedelta(days=1)
    for offset in range(8):
        day = today + timedelta(days=offset)
        at = _moment(said, day, hours)
        if at > now and hours.open_at(at):
            return day
    return today if _moment(said, today, hours) > now else today + timedelta(days=1)
