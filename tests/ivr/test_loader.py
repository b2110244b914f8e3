"""Loader errors: each kind, with the exact file:line of the offending key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.flow import FlowLoadError, load_flows
from tests.ivr.conftest import write_flows

GOOD = """
name: main
start: greet
steps:
  greet:
    say: Hello.
    next: menu
  menu:
    gather:
      prompt: Press 1.
      choices:
        bye: {dtmf: "1"}
      otherwise: bye
  bye:
    hangup: Goodbye.
"""


def problems(tmp_path: Path, files: dict[str, str]) -> list[tuple[str, int, str, str]]:
    """(file name, line, field, message) of every problem; fails if the flows load."""
    with pytest.raises(FlowLoadError) as caught:
        load_flows(write_flows(tmp_path / "flows", files))
    return [(Path(p.file).name, p.line, p.field, p.message) for p in caught.value.problems]


def only(tmp_path: Path, text: str) -> tuple[int, str, str]:
    [(_, line, field, message)] = problems(tmp_path, {"main.yaml": text})
    return line, field, message


def test_the_good_flow_loads(tmp_path: Path) -> None:
    flows = load_flows(write_flows(tmp_path / "flows", {"main.yaml": GOOD}))
    assert list(flows["main"].steps) == ["greet", "menu", "bye"]
    assert flows["main"].steps["menu"].line == 7


def test_yaml_syntax_error(tmp_path: Path) -> None:
    line, field, message = only(tmp_path, GOOD.replace("prompt: Press 1.", "prompt: Press 1: now"))
    assert (line, field, message) == (9, "yaml", "mapping values are not allowed here")


def test_unknown_step_type(tmp_path: Path) -> None:
    assert only(tmp_path, GOOD.replace("    say: Hello.", "    speak: Hello.")) == (
        5,
        "steps.greet.speak",
        "unknown step type 'speak' (known: say, play, gather, when, set, lookup, transfer, "
        "voicemail, record, flow, hangup, thread, publish, promise)",
    )


def test_unknown_field_in_a_step_body(tmp_path: Path) -> None:
    text = GOOD.replace("      otherwise: bye", "      otherwise: bye\n      colour: blue")
    assert only(tmp_path, text) == (13, "steps.menu.gather.colour", "unknown field")


def test_unknown_field_on_a_step(tmp_path: Path) -> None:
    text = GOOD.replace("    next: menu", "    nxt: menu")
    found = problems(tmp_path, {"main.yaml": text})
    # A file with broken steps is not cross-checked (menu would look unreachable): one problem.
    assert found == [("main.yaml", 6, "steps.greet.nxt", "unknown field")]


def test_unknown_field_in_a_choice(tmp_path: Path) -> None:
    text = GOOD.replace('bye: {dtmf: "1"}', 'bye: {dtmf: "1", key: "2"}')
    assert only(tmp_path, text) == (11, "steps.menu.gather.choices.bye.key", "unknown field")


@pytest.mark.parametrize(
    ("old", "new", "line", "field"),
    [
        ("next: menu", "next: mneu", 6, "steps.greet.next"),
        ('bye: {dtmf: "1"}', 'byebye: {dtmf: "1"}', 11, "steps.menu.gather.choices.byebye"),
        ("otherwise: bye", "otherwise: later", 12, "steps.menu.gather.otherwise"),
    ],
)
def test_missing_target(tmp_path: Path, old: str, new: str, line: int, field: str) -> None:
    found = problems(tmp_path, {"main.yaml": GOOD.replace(old, new)})
    assert found[0][1:3] == (line, field)
    assert found[0][3].startswith("no step named")


def test_missing_target_suggests_a_close_name(tmp_path: Path) -> None:
    _, _, message = only(tmp_path, GOOD.replace("otherwise: bye", "otherwise: by"))
    assert message == "no step named 'by' in flow main (did you mean 'bye'?)"


def test_missing_start_and_on_error_targets(tmp_path: Path) -> None:
    text = GOOD.replace("start: greet", "start: hello").replace(
        "    next: menu", "    next: menu\n    on_error: oops"
    )
    found = problems(tmp_path, {"main.yaml": text})
    assert [p[1:3] for p in found] == [(2, "start"), (7, "steps.greet.on_error")]


def test_bad_transfer_fallback(tmp_path: Path) -> None:
    text = GOOD.replace(
        "    hangup: Goodbye.",
        "    transfer:\n      to: assigned_advisor\n"
        "      fallback: [group:service, nobody]\n      otherwise: nowhere",
    )
    found = problems(tmp_path, {"main.yaml": text})
    assert found[0][1:3] == (16, "steps.bye.transfer.fallback.1")
    assert "unknown target 'nobody'" in found[0][3]


def test_transfer_otherwise_target_missing(tmp_path: Path) -> None:
    text = GOOD.replace(
        "    hangup: Goodbye.",
        "    transfer:\n      to: assigned_advisor\n      otherwise: nowhere",
    )
    assert only(tmp_path, text)[:2] == (16, "steps.bye.transfer.otherwise")


def test_unknown_subflow(tmp_path: Path) -> None:
    text = GOOD.replace("    say: Hello.", "    flow: status_chek")
    assert only(tmp_path, text) == (5, "steps.greet.flow.name", "no flow named 'status_chek'")


def test_unreachable_step(tmp_path: Path) -> None:
    text = GOOD + "  orphan:\n    say: Nobody gets here.\n"
    assert only(tmp_path, text) == (15, "steps.orphan", "unreachable from start")


def test_template_syntax_error(tmp_path: Path) -> None:
    line, field, message = only(tmp_path, GOOD.replace("prompt: Press 1.", "prompt: Press {{ 1."))
    assert (line, field) == (9, "steps.menu.gather.prompt")
    assert message.startswith("template syntax error")


def test_condition_syntax_error(tmp_path: Path) -> None:
    text = GOOD.replace(
        "    say: Hello.\n    next: menu",
        "    when:\n      - if: customer ==\n        then: menu\n    next: bye",
    )
    line, field, message = only(tmp_path, text)
    assert (line, field) == (6, "steps.greet.when.branches.0.if")
    assert message.startswith("template syntax error")


def test_undefined_names_in_templates(tmp_path: Path) -> None:
    text = GOOD.replace("say: Hello.", 'say: "Hi {{ custmer.first_name }} {{ vars.ro_numbr }}"')
    found = problems(tmp_path, {"main.yaml": text})
    assert [(p[1], p[3]) for p in found] == [
        (5, "undefined name 'custmer'"),
        (5, "undefined variable vars.ro_numbr (no step sets it)"),
    ]


def test_loop_without_input(tmp_path: Path) -> None:
    text = GOOD.replace(
        "    hangup: Goodbye.",
        "    say: Again.\n    next: again\n  again:\n    set: {x: 1}\n    next: bye",
    )
    assert only(tmp_path, text) == (
        13,
        "steps.bye",
        "loop with no caller input (add a gather or a way out): bye → again → bye",
    )


def test_a_loop_through_a_gather_is_fine(tmp_path: Path) -> None:
    text = GOOD.replace("    hangup: Goodbye.", "    say: Again.\n    next: menu")
    load_flows(write_flows(tmp_path / "flows", {"main.yaml": text}))


def test_a_self_loop_is_a_loop(tmp_path: Path) -> None:
    text = GOOD.replace("    hangup: Goodbye.", "    say: Again.\n    next: bye")
    assert only(tmp_path, text)[:2] == (13, "steps.bye")


def test_bad_values(tmp_path: Path) -> None:
    text = GOOD.replace(
        "      otherwise: bye", "      otherwise: bye\n      timeout: soon\n      attempts: 0"
    )
    found = problems(tmp_path, {"main.yaml": text})
    assert [p[1:3] for p in found] == [
        (13, "steps.menu.gather.timeout"),
        (14, "steps.menu.gather.attempts"),
    ]
    assert "expected a duration like 5s" in found[0][3]


def test_lookup_outcome_must_fit_the_query(tmp_path: Path) -> None:
    text = GOOD.replace("    say: Hello.", "    lookup: {query: store_open_now, found: menu}")
    line, field, message = only(tmp_path, text)
    assert (line, field) == (5, "steps.greet.lookup")
    assert message == "store_open_now has outcomes open, closed, not found"


def test_duplicate_keys_and_two_step_types(tmp_path: Path) -> None:
    text = GOOD.replace("    say: Hello.", "    say: Hello.\n    play: x.wav").replace(
        "  bye:\n    hangup: Goodbye.", "  bye:\n    hangup: Goodbye.\n  bye:\n    hangup: Bye."
    )
    found = problems(tmp_path, {"main.yaml": text})
    assert [p[1:] for p in found] == [
        (6, "steps.greet", "one step type per step, found say and play"),
        (16, "bye", "duplicate key"),
    ]


def test_problems_across_files_and_no_partial_load(tmp_path: Path) -> None:
    files = {
        "main.yaml": GOOD.replace("    say: Hello.", "    flow: other"),
        "other.yaml": "name: other\nstart: a\nsteps:\n  a: {say: hi, next: b}\n",
        "dup.yaml": "name: main\nstart: a\nsteps:\n  a: {say: hi}\n",
    }
    found = problems(tmp_path, files)
    assert [(p[0], p[1], p[2]) for p in found] == [
        ("main.yaml", 1, "name"),  # also defined in dup.yaml
        ("other.yaml", 4, "steps.a.next"),
    ]


def test_a_broken_subflow_is_not_also_missing(tmp_path: Path) -> None:
    files = {
        "main.yaml": GOOD.replace("    say: Hello.", "    flow: other"),
        "other.yaml": "name: other\nstart: a\nsteps:\n  a: {sya: hi}\n",
    }
    assert [p[:3] for p in problems(tmp_path, files)] == [("other.yaml", 4, "steps.a.sya")]


def test_error_message_format(tmp_path: Path) -> None:
    write_flows(tmp_path / "flows", {"main.yaml": GOOD.replace("next: menu", "next: nope")})
    with pytest.raises(FlowLoadError) as caught:
        load_flows(tmp_path / "flows")
    assert str(caught.value) == (
        f"{tmp_path}/flows/main.yaml:6: steps.greet.next: no step named 'nope' in flow main"
    )


def test_an_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FlowLoadError, match="no \\*.yaml flow files"):
        load_flows(tmp_path)


def test_templates_are_checked_even_when_another_step_is_broken(tmp_path: Path) -> None:
    text = GOOD.replace("say: Hello.", 'say: "{{ custmer }}"').replace(
        "    hangup: Goodbye.", "    hangup: Goodbye.\n    colour: red"
    )
    assert [p[1:3] for p in problems(tmp_path, {"main.yaml": text})] == [
        (5, "steps.greet.say.text"),
        (15, "steps.bye.colour"),
    ]


@pytest.mark.parametrize("path", ["../outside.wav", "/etc/passwd", "sub/../../x.wav"])
def test_a_play_file_outside_the_flows_folder(tmp_path: Path, path: str) -> None:
    line, field, message = only(tmp_path, GOOD.replace("    say: Hello.", f"    play: {path}"))
    assert (line, field) == (5, "steps.greet.play.file")
    assert message.startswith(f"{path!r} is outside the flows folder")


def test_a_play_file_inside_the_flows_folder_loads(tmp_path: Path) -> None:
    text = GOOD.replace("    say: Hello.", "    play: {file: sub/../prompts/hello.wav}")
    flows = load_flows(write_flows(tmp_path / "flows", {"main.yaml": text}))
    assert (
        flows["main"].audio_file("sub/../prompts/hello.wav")
        == (tmp_path / "flows" / "prompts" / "hello.wav").resolve()
    )


@pytest.mark.parametrize(
    ("choice", "field", "message"),
    [
        ('bye: {dtmf: "1", phrases: [bye], examples: ["goodbye now"]}',
         "steps.menu.gather.choices.bye", "a choice has phrases or examples (an intent), not both"),
        ('bye: {dtmf: "1", confirm: "Bye, right?"}', "steps.menu.gather.choices.bye",
         "confirm is asked for an intent: give the choice examples"),
        ('bye: {examples: ["goodbye", "  ?"]}', "steps.menu.gather.choices.bye",
         "an example is empty"),
        ('bye: {examples: "goodbye"}', "steps.menu.gather.choices.bye.examples",
         "Input should be a valid list"),
    ],
)  # fmt: skip
def test_a_bad_intent_is_reported_at_its_line(
    tmp_path: Path, choice: str, field: str, message: str
) -> None:
    line, got_field, got = only(tmp_path, GOOD.replace('bye: {dtmf: "1"}', choice))
    assert (line, got_field) == (11, field)
    assert got.startswith(message)


def test_intents_and_phrases_do_not_mix_in_one_gather(tmp_path: Path) -> None:
    text = GOOD.replace(
        'bye: {dtmf: "1"}', 'bye: {examples: ["goodbye"]}\n        hi: {phrases: [hi], next: bye}'
    )
    line, field, message = only(tmp_path, text)
    assert (line, field) == (8, "steps.menu.gather")
    assert "by phrases or by intents' examples, not both" in message


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("confirm_threshold: 0.7\n      threshold: 0.6", "must not exceed threshold"),
        ("confirm_threshold: 0.4", "confirm_threshold is for intents"),
    ],
)
def test_bad_intent_thresholds(tmp_path: Path, extra: str, message: str) -> None:
    text = GOOD.replace("otherwise: bye", f"otherwise: bye\n      {extra}")
    if "must not" in message:
        text = text.replace('bye: {dtmf: "1"}', 'bye: {examples: ["goodbye"]}')
    line, field, got = only(tmp_path, text)
    assert (line, field) == (8, "steps.menu.gather")
    assert message in got


@pytest.mark.parametrize(
    ("extra", "choice", "field", "message"),
    [
        ("slots: [time, colour]", 'bye: {dtmf: "1"}', "steps.menu.gather.slots.1",
         "Input should be 'ro_number', 'phone', 'time', 'advisor' or 'vehicle'"),
        ("slots: [time, time]", 'bye: {dtmf: "1"}', "steps.menu.gather", "a slot is listed twice"),
        ("slots: [vehicle]", 'bye: {slot: time}', "steps.menu.gather",
         "choice bye takes slot time: list it in slots"),
        ("slots: [time]", 'bye: {slot: time, dtmf: "1"}', "steps.menu.gather.choices.bye",
         "a slot choice is taken by its slot alone"),
    ],
)  # fmt: skip
def test_bad_slots_are_reported_at_their_line(
    tmp_path: Path, extra: str, choice: str, field: str, message: str
) -> None:
    text = GOOD.replace("otherwise: bye", f"otherwise: bye\n      {extra}")
    line, got_field, got = only(tmp_path, text.replace('bye: {dtmf: "1"}', choice))
    assert got_field == field and got.startswith(message)
    assert line == {"steps.menu.gather": 8, "steps.menu.gather.choices.bye": 11}.get(field, 13)


def test_a_slot_no_gather_fills_is_an_undefined_name(tmp_path: Path) -> None:
    text = GOOD.replace("otherwise: bye", "otherwise: bye\n      slots: [time]")
    text = text.replace(
        "hangup: Goodbye.", 'hangup: "See you {{ slots.time }} {{ slots.vehicle }}"'
    )
    assert only(tmp_path, text) == (
        15,
        "steps.bye.hangup.say",
        "undefined slot slots.vehicle (no gather fills it)",
    )
