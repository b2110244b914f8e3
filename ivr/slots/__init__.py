"""Slots: what a caller's words say besides what they want, pulled into flow variables.

"I'll pick up my Tahoe tomorrow around nine" is the pickup intent, and also a time (tomorrow
9 AM in the store's zone) and a vehicle (the customer's Tahoe). A gather lists the slot kinds
it listens for (`slots: [time, vehicle]`); each one filled lands in `slots.KIND` for the next
steps. Pure: the words, the call's "now", the store's hours and the names the call already
knows (the store's advisors, the customer's vehicles) go in, values come out.

| kind        | value                                 | e.g.                                  |
| ----------- | ------------------------------------- | ------------------------------------- |
| `ro_number` | digits (3 to 10)                      | "R O seven oh one two three" → 70123  |
| `phone`     | E.164                                 | "five five five, two oh one, ..."     |
| `time`      | `When` (aware datetime, how precise)  | "tomorrow around nine" → tomorrow 9:00 |
| `advisor`   | `AdvisorInfo` among the store's       | "can I talk to Linda" → Linda         |
| `vehicle`   | `VehicleInfo` among the customer's    | "my Silverado" → the Silverado        |
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from ivr.domain import AdvisorInfo, VehicleInfo
from ivr.hours import DAY_NAMES, Hours
from ivr.phone import try_e164
from ivr.slots.names import advisor_named, vehicle_named
from ivr.slots.numbers import located_runs, numbers, run_digits, spoken_digits, tokens
from ivr.slots.times import When, resolve

SlotKind = Literal["ro_number", "phone", "time", "advisor", "vehicle"]
SLOT_KINDS: tuple[str, ...] = get_args(SlotKind)
RO_DIGITS = (3, 10)
# A number next to these is a time ("at nine thirty", "nine thirty tomorrow"), not an RO.
_TIME_CUES = {"at", "around", "about", "by", "after", "before", "until", "till", "oclock"}
_TIME_CUES |= {"today", "tomorrow", "tonight", "morning", "afternoon", "evening"}
_TIME_CUES |= {d.lower() for d in DAY_NAMES}
# Words that say the number after them is the repair order's.
_RO_CUES = re.compile(r"\b(ro|order|ticket|invoice)( number)?( is| it s| its)?$")

__all__ = [
    "SLOT_KINDS",
    "Facts",
    "SlotKind",
    "When",
    "extract",
    "numbers",
    "phone_number",
    "ro_number",
    "spoken_digits",
]


@dataclass(frozen=True)
class Facts:
    """What the call knows that the words are read against."""

    now: datetime
    hours: Hours
    advisors: Sequence[AdvisorInfo] = ()
    vehicles: Sequence[VehicleInfo] = ()
    region: str = "US"


def _looks_like_year(digits: str) -> bool:
    return len(digits) == 4 and 1980 <= int(digits) <= datetime.now().year + 2


def _looks_like_phone(digits: str) -> bool:
    return len(digits) == 10 or (len(digits) == 11 and digits.startswith("1"))


def ro_number(text: str) -> str | None:
    """The repair-order number said: the one after "RO"/"order" if any, else the longest
    number of 3 to 10 digits that is not a model year ("my 2019 Tahoe"), a time ("at nine
    thirty") or a phone number (ten digits)."""
    words = tokens(re.sub(r"\br\W?o\b", " ro ", text.lower()))
    found: list[tuple[bool, str]] = []
    for start, run in located_runs(words):
        digits = run_digits(run)
        if not RO_DIGITS[0] <= len(digits) <= RO_DIGITS[1]:
            continue
        cued = bool(_RO_CUES.search(" ".join(words[max(0, start - 4) : start])))
        before = words[start - 1] if start else ""
        after = words[start + len(run)] if start + len(run) < len(words) else ""
        a_time = before in _TIME_CUES or after in _TIME_CUES or after in ("am", "pm", "a", "p")
        if cued or not (_looks_like_year(digits) or a_time or _looks_like_phone(digits)):
            found.append((cued, digits))
    if not found:
        return None
    cued = [d for c, d in found if c]
    return cued[0] if cued else max((d for _, d in found), key=len)


def phone_number(text: str, region: str = "US") -> str | None:
    """A phone number said in digits or words, as E.164: ten digits (or eleven with the 1)."""
    for digits in numbers(text):
        if _looks_like_phone(digits):
            e164 = try_e164(digits, region)
            if e164:
                return e164
    return None


def extract(kinds: Sequence[str], text: str, facts: Facts) -> dict[str, Any]:
    """The slots of `kinds` that `text` fills (a kind not heard is left out)."""
    found: dict[str, Any] = {}
    for kind in kinds:
        value: Any = None
        if kind == "ro_number":
            value = ro_number(text)
        elif kind == "phone":
            value = phone_number(text, facts.region)
        elif kind == "time":
            value = resolve(text, facts.now, facts.hours)
        elif kind == "advisor":
            value = advisor_named(text, facts.advisors)
        elif kind == "vehicle":
            value = vehicle_named(text, facts.vehicles)
        else:
            raise ValueError(f"unknown slot kind {kind!r}")
        if value is not None:
            found[kind] = value
    return found


def slot_hints(advisors: Sequence[AdvisorInfo], vehicles: Sequence[VehicleInfo]) -> list[str]:
    """The names a caller may say, for the recogniser's prompt: tiny.en hears "Tahoe" as "tile"
    and "Linda" as "London" unless the prompt has them."""
    first = [a.first_name for a in advisors if a.first_name]
    models = [v.model for v in vehicles if v.model]
    return list(dict.fromkeys([*first, *models]))


def describe(slots: dict[str, Any]) -> str:
    """'time tomorrow around 9 AM, vehicle 2019 Chevrolet Tahoe': the call log's view."""
    parts = []
    for kind, value in slots.items():
        if isinstance(value, AdvisorInfo):
            shown = value.name
        elif isinstance(value, VehicleInfo):
            shown = value.description
        elif isinstance(value, When):
            shown = f"{value.spoken} ({value.at:%Y-%m-%d %H:%M}{'' if value.open else ', closed'})"
        else:
            shown = str(value)
        parts.append(f"{kind} {shown}")
    return ", ".join(parts)
