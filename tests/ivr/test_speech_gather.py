"""Speech in gather steps on the fakes: matching with a threshold, what the call log keeps,
sensitive gathers, the recogniser's prompt, and WAV inputs."""

from __future__ import annotations

import wave
from datetime import datetime
from pathlib import Path

import pytest

from ivr.flow import FlowEngine, load_flows
from ivr.flow.channel import GatherResult
from ivr.flow.fakes import FakeChannel, FakeRecords, SpeechHeard, SpokenAudio, parse_input
from ivr.flow.steps.gather import Choice, best_choice, match_choice, phrase_score
from ivr.speech import FakeSTT, hint_prompt
from tests.ivr.conftest import GIVEN, Caller, write_flows

MENU = """
name: main
start: menu
steps:
  menu:
    gather:
      prompt: Say status or pick up.
      choices:
        status: {dtmf: "1", phrases: ["status", "is my car ready"]}
        pickup: {dtmf: "2", phrases: ["pick up"]}
      attempts: 2
      reprompt: Sorry.
      otherwise: bye
      {extra}
  status: {say: Status it is.}
  pickup: {say: Pickup it is.}
  bye: {hangup: Goodbye.}
"""

PIN = """
name: main
start: pin
steps:
  pin:
    gather:
      prompt: Key your card number, then pound.
      input: {into: card, max_digits: 19}
      sensitive: true
    next: done
  done: {say: Thanks.}
"""


def menu(extra: str = "") -> str:
    return MENU.replace("{extra}", extra)


def test_scores_forgive_mishearing_but_not_fragments() -> None:
    assert phrase_score("um is my car ready yet", "is my car ready") == 1.0
    assert phrase_score("ready my car is", "is my car ready") == 1.0  # token set: any order
    assert 0.9 < phrase_score("is my car reddy", "is my car ready") < 1.0
    assert phrase_score("car", "is my car ready") < 0.5  # a fragment is not the phrase
    assert phrase_score("pizza", "pick up") < 0.6
    assert phrase_score("", "status") == 0.0


def test_the_best_choice_wins_and_the_threshold_decides() -> None:
    choices = {"status": Choice(phrases=["status"]), "pickup": Choice(phrases=["pick up"])}
    assert best_choice("I want to pick up my car", choices) == ("pickup", 1.0)
    name, score = best_choice("peek up", choices)
    assert name == "pickup" and 0.6 < score < 0.8
    assert match_choice(GatherResult(heard="peek up"), choices) is None  # default 0.8
    assert match_choice(GatherResult(heard="peek up"), choices, threshold=0.6) == "pickup"


async def test_the_log_records_what_was_heard_and_its_score(call: Caller) -> None:
    run = await call(menu(), ["is my car reddy"])
    assert run.result.path == ["main.menu", "main.status"]
    lines = [str(line) for line in run.result.log]
    assert 'CALLER: says "is my car reddy"' in lines
    assert any(line.strip() == "(heard → status (score 0.93))" for line in lines), lines


async def test_no_match_reprompts_then_otherwise_with_the_closest_in_the_log(
    call: Caller,
) -> None:
    run = await call(menu(), ["the weather", "blorf"])
    assert run.result.path == ["main.menu", "main.bye"]
    assert run.result.said.count("Sorry.") == 1
    notes = [line.text for line in run.result.log if line.who == "SYSTEM"]
    assert sum(n.startswith("no match (") and "needs 0.80" in n for n in notes) == 2, notes


async def test_a_lower_threshold_accepts_a_rougher_match(call: Caller) -> None:
    assert (await call(menu(), ["peek up", "peek up"])).result.path[-1] == "main.bye"
    run = await call(menu("threshold: 0.6"), ["peek up"])
    assert run.result.path == ["main.menu", "main.pickup"]


async def test_a_sensitive_gather_never_logs_the_keys(call: Caller) -> None:
    run = await call(PIN, ["4111111111111111#"])
    assert run.result.vars["card"] == "4111111111111111"  # the flow still gets the number
    script = run.result.script(steps=True)
    assert "4111" not in script
    assert "answers (sensitive: not logged)" in script


async def test_a_sensitive_gather_never_logs_spoken_digits_or_scores(call: Caller) -> None:
    run = await call(PIN, ["four one one one"])
    assert run.result.vars["card"] == "4111"
    assert "four" not in run.result.script() and "4111" not in run.result.script()


def test_sensitive_and_threshold_are_checked_when_loading(tmp_path: Path) -> None:
    from ivr.flow import FlowLoadError

    with pytest.raises(FlowLoadError, match="threshold"):
        load_flows(write_flows(tmp_path / "bad", {"main.yaml": menu("threshold: 1.5")}))


def test_wav_and_say_inputs() -> None:
    assert parse_input("wav: calls/hello.wav") == SpokenAudio("calls/hello.wav")
    assert parse_input("say:one") == SpeechHeard("one")
    assert parse_input("one") == SpeechHeard("one")


def _wav(path: Path) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 8000)
    return path


async def test_a_wav_input_is_recognized_with_the_menu_phrases_as_prompt(tmp_path: Path) -> None:
    clip = _wav(tmp_path / "ready.wav")
    stt = FakeSTT({"ready.wav": "Is my car ready?"})
    flows = load_flows(write_flows(tmp_path / "flows", {"main.yaml": menu()}))
    records = FakeRecords.from_dict(GIVEN)
    store = records.stores[0]
    channel = FakeChannel([f"wav:{clip}"], stt=stt)
    result = await FlowEngine(flows, records).run(
        channel, store=store, caller=None, clock=lambda: datetime(2026, 11, 25, 12, tzinfo=store.tz)
    )
    assert result.path == ["main.menu", "main.status"]
    ((audio, prompt),) = stt.calls
    assert audio == clip
    assert prompt == hint_prompt(["status", "is my car ready", "pick up"])
    assert prompt == "status, is my car ready, pick up."


async def test_a_wav_input_without_a_recogniser_is_an_error(tmp_path: Path) -> None:
    clip = _wav(tmp_path / "ready.wav")
    flows = load_flows(write_flows(tmp_path / "flows", {"main.yaml": menu()}))
    records = FakeRecords.from_dict(GIVEN)
    result = await FlowEngine(flows, records).run(
        FakeChannel([f"wav:{clip}"]), store=records.stores[0], caller=None
    )
    assert result.outcome.kind == "error" and "no recogniser" in (result.outcome.detail or "")


def test_hint_prompt_puts_the_store_words_first() -> None:
    assert hint_prompt([]) is None
    assert hint_prompt(["status"], "Advisors: Alice Moreno.") == "Advisors: Alice Moreno. status."


async def test_flow_test_cases_take_wav_inputs_next_to_the_test_file(tmp_path: Path) -> None:
    from ivr.flow.testing import run_case

    flows = load_flows(write_flows(tmp_path / "flows", {"main.yaml": menu()}))
    tests_dir = tmp_path / "flows" / "tests"
    tests_dir.mkdir()
    _wav(tests_dir / "ready.wav")
    case = {"name": "spoken", "given": GIVEN, "inputs": ["wav:ready.wav"],
            "expect": {"path": "main.status", "said": "Status it is."}}  # fmt: skip
    stt = FakeSTT({"ready.wav": "is my car ready"})
    result = await run_case(flows, str(tests_dir / "main.yaml"), case, stt=stt)
    assert result.passed, result.failures
    assert stt.calls[0][0] == tests_dir / "ready.wav"
