"""A gather's intents: turning a caller's free answer into a choice, or asking back when unsure.

The model's scores (cosine similarity to each intent's examples, see speech/intents.py) are
cut by two thresholds: at or above `accept` the best intent is taken; between `confirm` and
`accept` the caller is asked ("You'd like an update on your vehicle, right?") and a yes by voice
or key 1 takes it, a no (or key 2) counts as a miss; below `confirm` it is out of scope, a miss
too, so an unknown request is asked again and then goes to `otherwise` (the advisor) instead of
a wrong branch. Yes/no are matched by words, not the model: they are few and fixed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ivr.flow.channel import GatherResult, Prompt

if TYPE_CHECKING:
    from ivr.flow.engine import Call

YES_KEY, NO_KEY = "1", "2"
_YES = {
    "yes",
    "yeah",
    "yep",
    "yup",
    "ya",
    "yes please",
    "sure",
    "right",
    "correct",
    "ok",
    "okay",
    "exactly",
    "that s right",
    "that s it",
    "uh huh",
    "absolutely",
    "please",
}
_NO = {"no", "nope", "nah", "not", "wrong", "incorrect", "no thanks", "that s wrong"}


def normalize(text: str) -> str:
    """Lower-case words and digits only: what every matcher of a gather compares."""
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split())


@dataclass(frozen=True)
class Decision:
    kind: Literal["accept", "confirm", "miss"]
    intent: str | None  # the best intent (also for a miss: the closest, for the log)
    score: float


def decide(scores: dict[str, float], accept: float, confirm: float) -> Decision:
    """What to do with the model's scores (best first) under the gather's thresholds."""
    if not scores:
        return Decision("miss", None, 0.0)
    best, score = next(iter(scores.items()))
    if score >= accept:
        return Decision("accept", best, score)
    if score >= confirm:
        return Decision("confirm", best, score)
    return Decision("miss", best, score)


def describe(scores: dict[str, float], top: int = 3) -> str:
    """'status 0.71, pickup 0.42, our_hours 0.30': the log's view of the scores."""
    return ", ".join(f"{name} {score:.2f}" for name, score in list(scores.items())[:top])


def yes_or_no(result: GatherResult) -> bool | None:
    """True for yes (or key 1), False for no (or key 2), None for anything else."""
    if result.digits:
        return {YES_KEY: True, NO_KEY: False}.get(result.digits[:1])
    words = normalize(result.heard or "")
    if not words:
        return None
    said = words.split()
    phrases = {words, " ".join(said[:2]), said[0]}
    if phrases & _NO:
        return False
    if phrases & _YES:
        return True
    return None


async def confirmed(call: Call, question: str, *, timeout: float, sensitive: bool) -> bool:
    """Ask `question`; True only for a clear yes (voice or key 1)."""
    result = await call.gather(
        Prompt(text=question),
        max_digits=1,
        terminator=None,
        timeout=timeout,
        inter_digit_timeout=timeout,
        speech=True,
        barge_in=True,
        hints=["yes", "no"],
        sensitive=sensitive,
    )
    answer = yes_or_no(result)
    if not sensitive:
        call.note({True: "confirmed", False: "caller said no", None: "no yes or no"}[answer])
    return answer is True
