"""`gather`: prompt, then listen for a key, a spoken phrase or request, or a number ended by `#`.

Two shapes. With `choices`, each choice (named after the step it leads to, or with its own
`next`) has a DTMF key and phrases or intent examples; the channel listens for keys and speech
at once. Phrases are matched to the text heard loosely (`phrase_score`), because recognisers
mishear: the best choice wins if it scores at least `threshold`. Examples make the choice an
intent: the caller may say anything ("I'm calling to check on my truck"), a language model
scores it against every intent's examples and `understand.decide` accepts the best at
`threshold`, confirms it between `confirm_threshold` and `threshold`, and treats anything lower
as out of scope. The phrases (or first examples) also go to the recogniser as `hints`, which
bias it towards the menu's words. With `input`, digits are collected into a variable and the
step continues at `next`. Silence, no match or a "no" to a confirmation repeats the prompt
after `reprompt`, up to `attempts` times, then goes to `otherwise` (else `next`). What was heard,
its scores and the decision go into the call log. Bad input (a cough, line noise, hum, music, a
ramble, two voices) ends the same ways, never on a branch the caller did not ask for: the
channel's endpointer drops short bursts and caps an utterance at 8 s, a sound with no words is
not an answer, and an unsure score is asked back (flows/README.md, "gather bad input").

`sensitive: true` (card numbers, PINs): what the caller keys or says is never written to the
call log, the `call.step` events or the worker's log; the engine and the channel both honour it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from rapidfuzz import fuzz

from ivr.flow.channel import GatherResult, Prompt
from ivr.flow.steps.base import Seconds, StepSpec
from ivr.flow.steps.set_vars import VarName
from ivr.flow.steps.understand import confirmed, decide, describe, normalize
from ivr.slots import SlotKind, slot_hints, spoken_digits
from ivr.slots import describe as describe_slots
from ivr.slots.generalize import generalize

if TYPE_CHECKING:
    from ivr.flow.engine import Call

MATCH_THRESHOLD = 0.8  # score a heard phrase needs by default; below it we ask again
# An intent's score (speech/intents.py; bench/intent_eval.py on bench/intents.txt): at or above
# INTENT_ACCEPT taken, from INTENT_CONFIRM asked back, below it out of scope.
INTENT_ACCEPT = 0.6
INTENT_CONFIRM = 0.46

_DIGIT_WORDS = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}


class Choice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    dtmf: str | None = Field(default=None, pattern=r"^[0-9*#]$")
    phrases: list[str] = Field(default_factory=list)
    # Sentences a caller might say for this choice: makes it an intent (see module docstring).
    examples: list[str] = Field(default_factory=list)
    # Asked when the model is unsure, e.g. "You'd like an update on your vehicle, right?"
    confirm: str | None = None
    # Taken when the caller's words fill this slot and match no other choice ("Friday at 4"
    # in a gather that asks when): the gather must list the slot in its `slots`.
    slot: SlotKind | None = None
    next: str | None = None  # defaults to the choice's name

    @model_validator(mode="after")
    def _something_to_match(self) -> Choice:
        if self.slot is not None and (self.dtmf or self.phrases or self.examples):
            raise ValueError("a slot choice is taken by its slot alone: no dtmf, phrases, examples")
        if self.dtmf is None and not self.phrases and not self.examples and self.slot is None:
            raise ValueError("a choice needs dtmf, phrases, examples or a slot")
        if self.phrases and self.examples:
            raise ValueError("a choice has phrases or examples (an intent), not both")
        if self.confirm and not self.examples:
            raise ValueError("confirm is asked for an intent: give the choice examples")
        if any(not normalize(e) for e in self.examples):
            raise ValueError("an example is empty")
        return self


class DigitsInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    into: VarName
    max_digits: int = Field(default=10, ge=1, le=32)
    min_digits: int = Field(default=1, ge=1)
    terminator: str = Field(default="#", pattern=r"^[*#]$")


class Gather(StepSpec):
    waits_for_caller = True
    prompt: str | None = None
    play: str | None = None  # a recorded prompt file instead of `prompt`
    choices: dict[str, Choice] = Field(default_factory=dict)
    input: DigitsInput | None = None
    timeout: Seconds = 5.0
    inter_digit_timeout: Seconds = 3.0
    attempts: int = Field(default=3, ge=1, le=10)
    reprompt: str | None = "Sorry, I didn't get that."
    otherwise: str | None = None
    barge_in: bool = True
    # Score to accept: a phrase's (default MATCH_THRESHOLD) or an intent's (INTENT_ACCEPT).
    threshold: float | None = Field(default=None, gt=0.0, le=1.0)
    # Intents only: from this score up to `threshold`, ask the caller to confirm.
    confirm_threshold: float | None = Field(default=None, gt=0.0, le=1.0)
    sensitive: bool = False  # never log what the caller keys or says here
    # Keep what the caller said (speech that chose a choice) in `vars.NAME`, e.g. for "are you
    # open Saturday?" to know the day; never for a sensitive gather.
    heard_into: VarName | None = None
    # What else to take from the caller's words into `slots.KIND` (ivr/slots): `ro_number`,
    # `phone`, `time`, `advisor`, `vehicle`.
    slots: list[SlotKind] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_shape(self) -> Gather:
        if bool(self.choices) == (self.input is not None):
            raise ValueError("a gather needs either choices or input (not both)")
        keys = [c.dtmf for c in self.choices.values() if c.dtmf]
        if len(keys) != len(set(keys)):
            raise ValueError("two choices use the same dtmf key")
        if self.heard_into and (self.sensitive or self.input is not None):
            raise ValueError("heard_into keeps spoken choices: not with input or sensitive")
        if self.intents and any(c.phrases for c in self.choices.values()):
            raise ValueError("a gather matches speech by phrases or by intents' examples, not both")
        if len(set(self.slots)) != len(self.slots):
            raise ValueError("a slot is listed twice")
        for name, choice in self.choices.items():
            if choice.slot is not None and choice.slot not in self.slots:
                raise ValueError(f"choice {name} takes slot {choice.slot}: list it in slots")
        if self.confirm_threshold is not None:
            if not self.intents:
                raise ValueError("confirm_threshold is for intents: give the choices examples")
            if self.confirm_threshold > self.accept_at:
                raise ValueError("confirm_threshold must not exceed threshold")
        return self

    @property
    def intents(self) -> dict[str, list[str]]:
        """The choices that are intents, with their examples."""
        return {name: c.examples for name, c in self.choices.items() if c.examples}

    @property
    def accept_at(self) -> float:
        if self.threshold is not None:
            return self.threshold
        return INTENT_ACCEPT if self.intents else MATCH_THRESHOLD

    @property
    def confirm_at(self) -> float:
        if self.confirm_threshold is not None:
            return self.confirm_threshold
        return min(INTENT_CONFIRM, self.accept_at)

    def targets(self) -> list[tuple[str, str]]:
        found = [(f"choices.{name}", c.next or name) for name, c in self.choices.items()]
        return found + ([("otherwise", self.otherwise)] if self.otherwise else [])

    def templates(self) -> list[tuple[str, str]]:
        """Checked at load and pre-rendered by the worker: prompts and confirm questions."""
        own = [(f, v) for f, v in (("prompt", self.prompt), ("reprompt", self.reprompt)) if v]
        asks = [(f"choices.{n}.confirm", c.confirm) for n, c in self.choices.items() if c.confirm]
        return own + asks

    def audio_files(self) -> list[tuple[str, str]]:
        return [("play", self.play)] if self.play else []

    def assigns(self) -> list[str]:
        return [self.input.into] if self.input else [self.heard_into] if self.heard_into else []

    def fills(self) -> list[str]:
        return list(self.slots)


def phrase_score(heard: str, phrase: str) -> float:
    """0..1: how well `phrase` appears in what was heard.

    1.0 when every word of the phrase was heard (rapidfuzz's token-set ratio, so extra words
    and order do not matter: "um is my car ready yet"); otherwise the best rapidfuzz ratio of
    the phrase against windows of the heard words about as long as the phrase (a partial ratio
    that stays on word boundaries, so "is my car reddy" finds "is my car ready" while "car"
    alone does not match "is my car ready").
    """
    said, want = normalize(heard), normalize(phrase)
    if not said or not want:
        return 0.0
    words, size = said.split(), len(want.split())
    if set(want.split()) <= set(words):
        return fuzz.token_set_ratio(said, want) / 100
    windows = {
        " ".join(words[i : i + n])
        for n in range(max(1, size - 1), size + 2)
        for i in range(max(1, len(words) - n + 1))
    }
    return max(fuzz.ratio(w, want) for w in windows) / 100


def spoken_key(heard: str, choices: dict[str, Choice]) -> str | None:
    """The choice whose key the caller said as a word ("one" for "press 1"), if any."""
    words = normalize(heard).split()
    if len(words) == 1 and words[0] in _DIGIT_WORDS:
        key = _DIGIT_WORDS[words[0]]
        return next((n for n, c in choices.items() if c.dtmf == key), None)
    return None


def best_choice(heard: str, choices: dict[str, Choice]) -> tuple[str | None, float]:
    """The choice whose phrases score best against `heard`, with that score (ties: first)."""
    named = spoken_key(heard, choices)
    if named:
        return named, 1.0
    best, best_score = None, 0.0
    for name, choice in choices.items():
        for phrase in choice.phrases:
            score = phrase_score(heard, phrase)
            if score > best_score:
                best, best_score = name, score
    return best, best_score


def match_choice(
    result: GatherResult, choices: dict[str, Choice], threshold: float = MATCH_THRESHOLD
) -> str | None:
    """The name of the chosen choice, or None."""
    if result.digits:
        return next((n for n, c in choices.items() if c.dtmf == result.digits[:1]), None)
    if not result.heard:
        return None
    best, score = best_choice(result.heard, choices)
    return best if score >= threshold else None


def hints(spec: Gather) -> list[str]:
    """Words the recogniser should expect here: the choices' phrases (spoken digits for input)."""
    if spec.input is not None:
        return ["one two three four five six seven eight nine zero"]
    return [p for c in spec.choices.values() for p in (c.phrases or c.examples[:2])]


def _options(spec: Gather) -> dict[str, Any]:
    if spec.input is not None:
        return dict(
            max_digits=spec.input.max_digits,
            terminator=spec.input.terminator,
            speech=True,
        )
    return dict(
        max_digits=1,
        terminator=None,
        speech=bool(spec.slots) or any(c.phrases or c.examples for c in spec.choices.values()),
    )


async def handle(spec: Gather, call: Call) -> str | None:
    options = _options(spec) | dict(
        timeout=spec.timeout,
        inter_digit_timeout=spec.inter_digit_timeout,
        barge_in=spec.barge_in,
        sensitive=spec.sensitive,
    )
    if options["speech"]:
        options["hints"] = hints(spec) + await _name_hints(spec, call)
    for attempt in range(1, spec.attempts + 1):
        if attempt > 1 and spec.reprompt:
            await call.say(call.render(spec.reprompt))
        prompt = None
        if spec.play:
            prompt = Prompt(file=call.audio_file(spec.play))
        elif spec.prompt:
            prompt = Prompt(text=call.render(spec.prompt))
        result = await call.gather(prompt, **options)
        filled = await _fill_slots(spec, call, result.heard) if result.heard else {}
        if spec.input is not None:
            number = result.digits or spoken_digits(result.heard or "")
            number = number[: spec.input.max_digits]
            if len(number) >= spec.input.min_digits:
                call.vars[spec.input.into] = number
                return None
            continue
        if spec.intents and result.heard and not result.digits:
            chosen = await _understood(spec, call, result.heard, filled)
        else:
            chosen = match_choice(result, spec.choices, spec.accept_at)
        by_slot = None
        if chosen is None and filled and not result.digits:
            by_slot = next((n for n, c in spec.choices.items() if c.slot in filled), None)
            chosen = by_slot
        if by_slot is not None and not spec.sensitive:
            call.note(f"heard → {by_slot} (slot {spec.choices[by_slot].slot})")
        elif result.heard and not spec.sensitive and not spec.intents:
            best, score = best_choice(result.heard, spec.choices)
            if chosen is not None:
                call.note(f"heard → {chosen} (score {score:.2f})")
            else:
                closest = f"closest {best} at {score:.2f}" if best else "nothing close"
                call.note(f"no match ({closest}; needs {spec.accept_at:.2f})")
        if chosen is not None:
            if spec.heard_into:
                call.vars[spec.heard_into] = result.heard if not result.digits else None
            return spec.choices[chosen].next or chosen
    call.note(f"no usable answer after {spec.attempts} attempt(s)")
    return spec.otherwise


async def _name_hints(spec: Gather, call: Call) -> list[str]:
    """The caller's own names for the recogniser (advisors, vehicle models), when the gather
    listens for them: tiny.en writes "London" for Linda without them (bench/slot_eval.py)."""
    advisors = await call.advisors() if "advisor" in spec.slots else []
    vehicles = call.vehicles() if "vehicle" in spec.slots else []
    return slot_hints(advisors, vehicles)


async def _fill_slots(spec: Gather, call: Call, heard: str) -> dict[str, Any]:
    """The gather's slots that `heard` fills, kept in `slots` (and the log, unless sensitive)."""
    if not spec.slots:
        return {}
    filled = await call.fill_slots(spec.slots, heard)
    if filled and not spec.sensitive:
        call.note(f"slots: {describe_slots(filled)}")
    return filled


async def _understood(spec: Gather, call: Call, heard: str, filled: dict[str, Any]) -> str | None:
    """The intent the caller meant (asking back when unsure), or None: a miss. The model hears
    the filled slots as the examples say them ("my car" for "my Tahoe": ivr/slots/generalize)."""
    named = spoken_key(heard, spec.choices)
    if named:
        return named
    text = generalize(heard, filled)
    scores = await call.understand(text, spec.intents)
    if scores is None:
        return None
    decision = decide(scores, spec.accept_at, spec.confirm_at)
    if not spec.sensitive:
        scored = f"scores {describe(scores)}" + (f'; as "{text}"' if text != heard else "")
        if decision.kind == "accept":
            call.note(f"intent {decision.intent} ({decision.score:.2f}; {scored})")
        elif decision.kind == "confirm":
            call.note(
                f"unsure: confirm {decision.intent} ({decision.score:.2f} < "
                f"{spec.accept_at:.2f}; {scored})"
            )
        else:
            call.note(f"out of scope ({scored}; needs {spec.confirm_at:.2f} to confirm)")
    if decision.kind == "miss" or decision.intent is None:
        return None
    if decision.kind == "confirm":
        choice = spec.choices[decision.intent]
        question = (
            call.render(choice.confirm)
            if choice.confirm
            else (f"Just to be sure: {choice.examples[0]}, right?")
        )
        if not await confirmed(call, question, timeout=spec.timeout, sensitive=spec.sensitive):
            return None
    return decision.intent
