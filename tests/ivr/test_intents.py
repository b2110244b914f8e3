"""Intent gathers on the FakeChannel with the real language model: accept, confirm by voice or
key, a no or a second miss, out of scope to `otherwise`, what the call log keeps."""

from __future__ import annotations

import pytest

from ivr.flow.channel import GatherResult
from ivr.flow.steps.understand import decide, yes_or_no
from speech.intents import LocalUnderstanding
from tests.ivr.conftest import Caller

MENU = """
name: main
start: menu
steps:
  menu:
    gather:
      prompt: How can I help you today?
      choices:
        status:
          dtmf: "1"
          confirm: You'd like an update on your vehicle, right?
          examples: ["is my car ready", "I'm calling to check on my car",
                     "can I get an update on my vehicle", "is it done yet"]
        our_hours:
          dtmf: "3"
          examples: ["what are your hours", "when do you close", "what time do you open"]
      attempts: 2
      reprompt: Sorry. Press 1 for status or 3 for our hours.
      otherwise: human
  status: {say: Status it is.}
  our_hours: {say: Hours it is.}
  human: {say: Let me get someone.}
"""


@pytest.fixture(scope="module")
def understanding() -> LocalUnderstanding:
    return LocalUnderstanding()


async def test_a_clear_request_is_taken_with_its_score_in_the_log(
    call: Caller, understanding: LocalUnderstanding
) -> None:
    run = await call(MENU, ["I'm calling to check on my truck"], understanding=understanding)
    assert run.result.path[-1] == "main.status"
    notes = [line.text for line in run.result.log if line.who == "SYSTEM"]
    assert notes[0].startswith("intent status (0.") and "scores status 0." in notes[0]


async def test_keys_still_work(call: Caller, understanding: LocalUnderstanding) -> None:
    run = await call(MENU, ["3"], understanding=understanding)
    assert run.result.path[-1] == "main.our_hours"


@pytest.mark.parametrize("answer", ["yeah that's right", "1"])
async def test_an_unsure_answer_is_confirmed_by_voice_or_key(
    call: Caller, understanding: LocalUnderstanding, answer: str
) -> None:
    run = await call(MENU, ["the car", answer], understanding=understanding)
    assert "You'd like an update on your vehicle, right?" in run.said
    assert run.result.path[-1] == "main.status"
    notes = [line.text for line in run.result.log if line.who == "SYSTEM"]
    assert notes[0].startswith("unsure: confirm status") and notes[1] == "confirmed"


async def test_a_no_is_a_miss_and_a_second_miss_goes_to_otherwise(
    call: Caller, understanding: LocalUnderstanding
) -> None:
    run = await call(MENU, ["the car", "no", "the car", "2"], understanding=understanding)
    assert run.said.count("You'd like an update on your vehicle, right?") == 2
    assert "Press 1 for status or 3 for our hours." in run.said  # the reprompt lists the keys
    assert run.result.path[-1] == "main.human"


async def test_an_out_of_scope_request_reaches_no_intent(
    call: Caller, understanding: LocalUnderstanding
) -> None:
    run = await call(
        MENU, ["I'd like to order a pizza", "I want to buy a boat"], understanding=understanding
    )
    assert run.result.path == ["main.menu", "main.human"]
    assert "right?" not in run.said
    notes = [line.text for line in run.result.log if line.who == "SYSTEM"]
    assert notes[0].startswith("out of scope (scores ")


async def test_a_sensitive_gather_logs_no_words_and_no_scores(
    call: Caller, understanding: LocalUnderstanding
) -> None:
    flows = MENU.replace("      attempts: 2", "      attempts: 2\n      sensitive: true")
    run = await call(flows, ["I'm calling to check on my truck"], understanding=understanding)
    assert run.result.path[-1] == "main.status"
    text = "\n".join(line.text for line in run.result.log)
    assert "truck" not in text and "score" not in text and "intent" not in text


async def test_without_a_model_speech_is_not_understood_but_keys_work(call: Caller) -> None:
    run = await call(MENU, ["is my car ready", "1"])
    assert run.result.path[-1] == "main.status"
    assert "no language model answered: speech not understood" in [
        line.text for line in run.result.log
    ]


def test_decide_cuts_at_the_two_thresholds() -> None:
    assert decide({"a": 0.7, "b": 0.2}, 0.6, 0.45).kind == "accept"
    assert decide({"a": 0.5, "b": 0.2}, 0.6, 0.45).kind == "confirm"
    assert decide({"a": 0.3, "b": 0.2}, 0.6, 0.45) == decide({"a": 0.3}, 0.6, 0.45)
    assert decide({"a": 0.3}, 0.6, 0.45).kind == "miss"
    assert decide({}, 0.6, 0.45).intent is None


@pytest.mark.parametrize(
    ("heard", "digits", "want"),
    [
        ("Yes.", "", True),
        ("yeah that's right", "", True),
        ("Correct", "", True),
        ("No, not really", "", False),
        ("nope", "", False),
        ("what are your hours", "", None),
        (None, "1", True),
        (None, "2", False),
        (None, "5", None),
    ],
)
def test_yes_or_no(heard: str | None, digits: str, want: bool | None) -> None:
    assert yes_or_no(GatherResult(digits=digits, heard=heard)) is want
