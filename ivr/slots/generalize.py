"""The caller's words with the filled slots said the way the intents' examples say them.

An intent's examples cannot know this customer's Tahoe, this store's Linda or RO 70123, and a
sentence embedding pulls such words away from the intent ("I'll pick up my Tahoe tomorrow
around nine" scored pickup 0.57, "... my car ..." 0.69; "what's the status of R O seven oh one
two three" 0.21 against 0.74 for "... of my repair order"). So the classifier hears the names
and numbers as "my car", "my advisor", "my repair order", "my phone number".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ivr.domain import AdvisorInfo, VehicleInfo
from ivr.slots.names import advisor_words, vehicle_vocabulary, vehicle_words
from ivr.slots.numbers import located_runs, run_digits, tokens

_RO_WORDS = {"ro", "repair", "order", "ticket", "number", "is", "my", "the", "invoice"}


def _replace(words: list[str], spans: list[tuple[set[int], str]]) -> list[str]:
    """Each set of indexes becomes its phrase once (at its first index)."""
    out: list[str] = []
    taken: dict[int, str] = {}
    for indexes, phrase in spans:
        for i in sorted(indexes):
            taken.setdefault(i, phrase)
    last: str | None = None
    for i, word in enumerate(words):
        phrase = taken.get(i)
        if phrase is None:
            out.append(word)
            last = None
        elif phrase != last:
            out.append(phrase)
            last = phrase
    return out


def generalize(text: str, filled: Mapping[str, Any]) -> str:
    """`text` with the values in `filled` replaced (see the module docstring), and any make or
    model as "car"; `text` itself when there is nothing to replace."""
    words = tokens(text.lower().replace("r o ", "ro ").replace("r.o.", "ro"))
    spans: list[tuple[set[int], str]] = [(vehicle_vocabulary(words), "car")]
    for start, run in located_runs(words):
        digits = run_digits(run)
        if digits == filled.get("ro_number"):
            back = start
            while back > 0 and words[back - 1] in _RO_WORDS:
                back -= 1
            spans.append((set(range(back, start + len(run))), "my repair order"))
        elif filled.get("phone") and digits and filled["phone"].endswith(digits[-10:]):
            spans.append((set(range(start, start + len(run))), "my phone number"))
    vehicle = filled.get("vehicle")
    if isinstance(vehicle, VehicleInfo):
        spans.append((vehicle_words(words, vehicle), "car"))
    advisor = filled.get("advisor")
    if isinstance(advisor, AdvisorInfo):
        spans.append((advisor_words(words, advisor), "my advisor"))
    if not any(indexes for indexes, _ in spans):
        return text
    out = _replace(words, spans)
    for i in range(len(out) - 1, 0, -1):  # "my my car", "the my advisor"
        if out[i].startswith("my ") and out[i - 1] in ("my", "the", "your"):
            del out[i - 1]
    return " ".join(out)
