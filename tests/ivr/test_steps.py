"""Every step type, run on FakeChannel + FakeRecords through the real loader and engine."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import pytest

from ivr.flow import FlowLoadError, load_flows
from ivr.flow.channel import GatherResult, HungUp, SpeechHeard
from ivr.flow.engine import Outcome
from ivr.flow.fakes import FakeChannel, FakeRecords, Press, Silence, parse_input
from ivr.flow.records import RecordsUnavailable
from ivr.flow.steps.gather import Choice, match_choice, phrase_score, spoken_digits
from tests.ivr.conftest import EVENING, Caller, write_flows

MENU = """
name: main
start: menu
steps:
  menu:
    gather:
      prompt: Press 1 for status or 0 for a person.
      choices:
        status: {dtmf: "1", phrases: ["status", "is my car ready"]}
        person: {dtmf: "0", phrases: ["representative"], next: human}
      attempts: 2
      reprompt: Sorry.
      otherwise: bye
  status: {say: Status it is.}
  human: {say: A person it is.}
  bye: {hangup: Goodbye.}
"""


async def test_say_renders_the_context(call: Caller) -> None:
    run = await call("""
        name: main
        start: hi
        steps:
          hi:
            say: "Hi {{ customer.first_name }} at {{ store.name }}, from {{ caller|spoken_phone }}."
    """)
    assert run.result.said == ["Hi Dana at Hometown Motors, from 5 5 5, 2 0 1, 0 0 0 1."]
    assert run.result.outcome.kind == "hangup"  # running out of steps hangs up
    assert run.channel.actions[-1] == ("hangup", "")


async def test_unknown_caller_has_no_customer(call: Caller) -> None:
    run = await call(
        """
        name: main
        start: hi
        steps:
          hi: {say: "{% if customer %}Hi {{ customer.first_name }}{% else %}Hello{% endif %}"}
    """,
        given={"caller": "+15550009999"},
    )
    assert run.result.said == ["Hello"]


async def test_play_plays_a_file(call: Caller) -> None:
    run = await call("""
        name: main
        start: music
        steps:
          music: {play: "prompts/{{ store.id }}/welcome.wav"}
    """)
    folder = (call.tmp_path / f"flows{call.count}").resolve()
    assert ("play", str(folder / "prompts/1/welcome.wav")) in run.channel.actions


@pytest.mark.parametrize("path", ["../../../../etc/passwd", "/etc/passwd", "a/../../x.wav"])
async def test_play_refuses_a_rendered_path_outside_the_flows_folder(
    call: Caller, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A template decides the path at run time: outside the folder it is a failed step
    (logged, `on_error` taken), and nothing is played."""
    caplog.set_level(logging.WARNING, logger="ivr.flow.engine")  # `flows test` quiets ivr.flow
    flows = """
        name: main
        start: pick
        steps:
          pick: {set: {where: "PATH"}, next: music}
          music: {play: "{{ vars.where }}", on_error: sorry, next: after}
          sorry: {say: Sorry.}
          after: {say: Not here.}
    """
    run = await call(flows.replace("PATH", path))
    assert [a for a in run.channel.actions if a[0] == "play"] == []
    assert run.result.said == ["Sorry."]
    assert "refused to play" in caplog.text and "outside the flows folder" in caplog.text


async def test_a_gather_prompt_file_outside_the_flows_folder_is_refused_at_load(
    tmp_path: Path,
) -> None:
    write_flows(
        tmp_path / "flows",
        {
            "main.yaml": """
            name: main
            start: ask
            steps:
              ask:
                gather:
                  play: ../secret.wav
                  choices: {done: {dtmf: "1"}}
              done: {hangup: Bye.}
        """
        },
    )
    with pytest.raises(FlowLoadError) as caught:
        load_flows(tmp_path / "flows")
    [problem] = caught.value.problems
    assert (problem.line, problem.field) == (6, "steps.ask.gather.play")
    assert "'../secret.wav' is outside the flows folder" in problem.message


@pytest.mark.parametrize(
    ("inputs", "said"),
    [
        (["1"], "Status it is."),
        (["0"], "A person it is."),  # a choice with its own `next`
        (["is my car ready?"], "Status it is."),
        (["uh, representative please"], "A person it is."),
        (["zero"], "A person it is."),  # a spoken digit counts as the key
        (["9", "1"], "Status it is."),  # wrong key, then reprompt
        (["silence", "1"], "Status it is."),
    ],
)
async def test_gather_choices(call: Caller, inputs: list[str], said: str) -> None:
    run = await call(MENU, inputs)
    assert run.result.said[-1] == said
    assert run.channel.remaining == []


async def test_gather_gives_up_after_attempts(call: Caller) -> None:
    run = await call(MENU, ["silence", "pizza"])
    assert run.result.said == [
        "Press 1 for status or 0 for a person.",
        "Sorry.",
        "Press 1 for status or 0 for a person.",
        "Goodbye.",
    ]
    assert "(silence)" in run.result.script()


def test_phrase_matching_is_forgiving_but_not_random() -> None:
    assert phrase_score("is my car reddy", "is my car ready") > 0.8
    assert phrase_score("Is my CAR ready?!", "is my car ready") == 1.0
    assert phrase_score("pizza", "is my car ready") < 0.5
    choices = {"a": Choice(phrases=["pick up"]), "b": Choice(phrases=["status"])}
    assert match_choice(GatherResult(heard="I want to pick up"), choices) == "a"
    assert match_choice(GatherResult(heard="weather"), choices) is None
    assert spoken_digits("four seven one one") == "4711"
    assert spoken_digits("it's 47 11") == "4711"


DIGITS = """
name: main
start: ask
steps:
  ask:
    gather:
      prompt: Enter the number then pound.
      input: {into: number, max_digits: 4, min_digits: 3}
      attempts: 2
      otherwise: none
    next: got
  got: {say: "Got {{ vars.number|digits }}."}
  none: {say: Nothing.}
"""


@pytest.mark.parametrize(
    ("inputs", "said"),
    [
        (["4711#"], "Got 4 7 1 1."),
        (["471#"], "Got 4 7 1."),
        (["471199#"], "Got 4 7 1 1."),  # max_digits ends the input
        (["four seven one one"], "Got 4 7 1 1."),
        (["12#", "123#"], "Got 1 2 3."),  # too short, asked again
        (["12#", "silence"], "Nothing."),
    ],
)
async def test_gather_digits(call: Caller, inputs: list[str], said: str) -> None:
    run = await call(DIGITS, inputs)
    assert run.result.said[-1] == said


async def test_when_and_set(call: Caller) -> None:
    flows = """
        name: main
        start: count
        steps:
          count:
            set: {tries: "{{ vars.tries|int + 1 }}", fixed: 7, label: "n{{ vars.tries|int }}"}
            next: check
          check:
            when:
              - if: vars.tries|int >= 3
                then: done
              - if: store_open and customer.first_name == "Dana"
                then: again
            next: closed
          again:
            gather:
              prompt: Again?
              choices: {count: {dtmf: "1"}}
              otherwise: done
          closed: {say: Closed.}
          done: {say: "Done after {{ vars.tries }}."}
    """
    run = await call(flows, ["1", "1"])
    assert run.result.said[-1] == "Done after 3."
    assert run.result.vars == {"tries": "3", "fixed": 7, "label": "n3"}  # later values see earlier
    closed = await call(flows, [], now=EVENING)
    assert closed.result.said == ["Closed."]


LOOKUPS = """
name: main
start: ro
steps:
  ro:
    lookup: {query: open_repair_order, none: no_ro, one: one_ro, several: many}
  no_ro: {say: No RO., next: by_number}
  many: {say: Several., next: by_number}
  one_ro: {say: "RO {{ ro.number }} with {{ advisor.name }}.", next: by_number}
  by_number:
    lookup:
      query: repair_order_by_number
      number: "{{ vars.n }}"
      found: found
      not_found: not_found
  found: {say: "Found {{ ro.number }}, {{ ro.status }}.", next: adv}
  not_found: {say: Not found., next: adv}
  adv:
    lookup: {query: assigned_advisor, found: has_adv, not_found: no_adv}
  has_adv: {say: "Advisor {{ advisor.first_name }}.", next: hours}
  no_adv: {say: No advisor., next: hours}
  hours: {lookup: {query: store_open_now, open: open, closed: closed}}
  open: {say: Open.}
  closed: {say: Closed.}
  set_n: {set: {n: "5120"}, next: ro}
"""


async def test_lookups(call: Caller) -> None:
    flows = LOOKUPS.replace("start: ro", "start: set_n")
    run = await call(
        flows, given={"repair_orders": [{"number": "5120", "status": "In Shop", "advisor": "bob"}]}
    )
    assert run.result.said == [
        "RO 4711 with Alice Smith.",
        "Found 5120, In Shop.",
        "Advisor Bob.",
        "Open.",
    ]
    several = await call(
        flows,
        now=EVENING,
        given={
            "customer": {"first_name": "Dana", "repair_orders": [{"number": "1"}, {"number": "2"}]}
        },
    )
    assert several.result.said == ["Several.", "Not found.", "No advisor.", "Closed."]
    unknown = await call(flows, given={"caller": "+15550009999"})
    assert unknown.result.said[0] == "No RO."


TRANSFER = """
name: main
start: ring
steps:
  ring:
    transfer:
      to: assigned_advisor
      ring: 15s
      prompt: Connecting.
      fallback: [user:bob, group:service, "+15557770000"]
      otherwise: sorry
  sorry: {say: Nobody.}
"""


async def test_transfer_to_the_assigned_advisor(call: Caller) -> None:
    run = await call(TRANSFER)
    outcome = run.result.outcome
    assert (outcome.kind, outcome.target, outcome.contact) == (
        "transfer",
        "Alice Smith",
        "sip:alice@pbx",
    )
    assert run.result.script().endswith("ENDS: transfer to Alice Smith (sip:alice@pbx)")


async def test_transfer_falls_back_in_order(call: Caller) -> None:
    run = await call(TRANSFER, transfers={"sip:alice@pbx": "no_answer", "sip:bob@pbx": "busy"})
    assert run.result.outcome.contact == "+15557770000"
    rung = [text for kind, text in run.channel.actions if kind == "transfer"]
    assert rung == [
        "sip:alice@pbx no_answer",
        "sip:bob@pbx busy",
        "sip:alice@pbx no_answer",
        "sip:bob@pbx busy",
        "+15557770000 answered",
    ]


async def test_transfer_otherwise_and_nobody_to_ring(call: Caller) -> None:
    run = await call(
        TRANSFER,
        transfers={"sip:alice@pbx": "no_answer", "sip:bob@pbx": "failed", "+15557770000": "busy"},
    )
    assert run.result.said == ["Connecting.", "Nobody."]
    no_advisor = await call(
        TRANSFER.replace(
            'fallback: [user:bob, group:service, "+15557770000"]', "fallback: [user:nobody]"
        ),
        given={"customer": {"first_name": "Dana"}},
    )
    assert "assigned advisor: nobody to ring" in no_advisor.result.script()
    assert no_advisor.result.said[-1] == "Nobody."


VOICEMAIL = """
name: main
start: vm
steps:
  vm:
    voicemail:
      prompt: Leave a message.
      owner: assigned_advisor
      due_in: 1h
"""


async def test_voicemail_creates_thread_entry_and_callback(call: Caller) -> None:
    run = await call(VOICEMAIL, ["please call me back about the brakes", "hangup"])
    assert run.result.outcome.kind == "voicemail"
    [entry] = run.records.thread_entries
    assert entry["kind"] == "voicemail" and entry["customer_id"] == 1
    assert entry["data"]["recording"].endswith(".wav") and entry["data"]["duration"] > 0
    [task] = run.records.callbacks
    assert task["owner_id"] == 1 and task["phone"] == "+15552010001"
    assert task["due_at"].hour == 13  # noon + 1 h, store time
    assert "Thank you" not in run.said  # hung up after the message: no goodbye


async def test_voicemail_after_hours_is_due_after_opening_and_may_have_no_owner(
    call: Caller,
) -> None:
    run = await call(VOICEMAIL.replace("assigned_advisor", "none"), ["hi"], now=EVENING)
    [task] = run.records.callbacks
    assert task["owner_id"] is None
    assert task["due_at"] == datetime.fromisoformat("2026-11-26T08:00:00-05:00")
    assert run.result.said[-1].startswith("Thank you")


async def test_a_voicemail_the_record_cannot_take_still_ends_as_one(
    call: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database went away mid-call: the caller still hears the goodbye, and the call ends
    as a voicemail, which the call writer files with its callback task from `call.ended`."""

    async def unreachable(*_args: object, **_kwargs: object) -> None:
        raise RecordsUnavailable("no answer from the database in 1.5 s")

    monkeypatch.setattr(FakeRecords, "add_thread_entry", unreachable)
    run = await call(VOICEMAIL, ["please call me back about the brakes"])
    assert run.result.outcome.kind == "voicemail"
    assert run.records.callbacks == []
    assert "could not file the message now (no answer from the database" in run.result.script()
    assert run.result.said[-1].startswith("Thank you")


async def test_voicemail_written_later_writes_nothing_during_the_call(call: Caller) -> None:
    later = VOICEMAIL.replace("      due_in: 1h\n", "      write: later\n")
    run = await call(later, ["please call me back about the brakes"])
    assert run.result.outcome == Outcome("voicemail", detail="filed when the call is written")
    assert run.records.thread_entries == [] and run.records.callbacks == []
    assert run.result.said[-1].startswith("Thank you")


def test_voicemail_written_later_names_no_owner(tmp_path: Path) -> None:
    text = VOICEMAIL.replace("assigned_advisor", "user:bob") + "      write: later\n"
    with pytest.raises(FlowLoadError) as caught:
        load_flows(write_flows(tmp_path / "flows", {"main.yaml": text}))
    assert "with write: later the call writer picks the owner" in str(caught.value)


async def test_record_keeps_the_path(call: Caller) -> None:
    run = await call(
        """
        name: main
        start: rec
        steps:
          rec: {record: {prompt: Say your name., max: 10s, into: name_file}, next: done}
          done: {say: "Thanks."}
    """,
        ["Dana Reyes"],
    )
    assert run.result.vars["name_file"].endswith(".wav")
    assert run.result.vars["name_file_seconds"] > 0
    assert run.result.said == ["Say your name.", "Thanks."]


SUBFLOWS = {
    "main.yaml": """
        name: main
        start: a
        steps:
          a: {set: {stop: false}, next: c}
          c: {flow: helper, next: b}
          b: {say: Back in main.}
    """,
    "helper.yaml": """
        name: helper
        start: h
        steps:
          h:
            when:
              - if: vars.stop
                then: stop
            next: early
          early: {say: In helper., next: return}
          stop: {hangup: Bye from helper.}
    """,
}


async def test_subflow_returns(call: Caller) -> None:
    run = await call(SUBFLOWS)
    assert run.result.said == ["In helper.", "Back in main."]
    assert run.result.path == ["main.a", "main.c", "helper.h", "helper.early", "main.b"]


async def test_subflow_that_ends_the_call_ends_the_caller_too(call: Caller) -> None:
    files = dict(SUBFLOWS)
    files["main.yaml"] = files["main.yaml"].replace("stop: false", "stop: true")
    run = await call(files)
    assert run.result.said == ["Bye from helper."]
    assert run.result.outcome.kind == "hangup"


async def test_thread_and_publish(call: Caller) -> None:
    run = await call("""
        name: main
        start: note
        steps:
          note:
            thread: {kind: pickup, body: "Pickup for {{ customer.name }}", data: {n: "{{ 1 + 1 }}"}}
            next: pub
          pub: {publish: {event: ro.pickup_confirmed, data: {who: "{{ caller }}", n: 3}}}
    """)
    assert run.records.thread_entries == [
        dict(
            store_id=1, customer_id=1, kind="pickup", body="Pickup for Dana Reyes", data={"n": "2"}
        )
    ]
    assert run.records.events == [
        dict(store_id=1, type="ro.pickup_confirmed", data={"who": "+15552010001", "n": 3})
    ]


async def test_on_error_catches_a_failing_step(call: Caller) -> None:
    flows = """
        name: main
        start: boom
        steps:
          boom: {say: "{{ customer.first_name.nope() }}", on_error: safe, next: after}
          safe: {say: Recovered.}
          after: {say: Not here.}
    """
    run = await call(flows)
    assert run.result.said == ["Recovered."]
    unguarded = await call(
        flows.replace(", on_error: safe", "").replace("          safe: {say: Recovered.}\n", "")
    )
    assert unguarded.result.outcome.kind == "error"
    assert ("hangup", "") in unguarded.channel.actions


async def test_max_steps_stops_a_runaway_call(call: Caller) -> None:
    run = await call(
        """
        name: main
        start: ask
        steps:
          ask:
            gather: {prompt: "Again?", choices: {ask: {dtmf: "1"}}}
    """,
        ["1"] * 20,
        max_steps=5,
    )
    assert run.result.outcome.kind == "error"
    assert "more than 5 steps" in (run.result.outcome.detail or "")


async def test_caller_hangup_wins_anywhere(call: Caller) -> None:
    run = await call(MENU, ["hangup", "1"])
    assert run.result.outcome.kind == "caller_hung_up"
    assert run.result.script().splitlines()[-2] == "CALLER: hangs up"
    assert run.channel.remaining == [Press("1")]


def test_parse_input() -> None:
    assert parse_input("4711#") == Press("4711#")
    assert parse_input("silence") == Silence()
    assert parse_input("hangup") == HungUp()
    assert parse_input("is my car ready") == SpeechHeard("is my car ready")


async def test_fake_channel_ignores_speech_when_not_listening() -> None:
    channel = FakeChannel(["hello"])
    assert (await channel.gather(None, speech=False)).timed_out


async def test_runaway_subflow_recursion_is_stopped(call: Caller) -> None:
    run = await call("""
        name: main
        start: a
        steps:
          a: {say: Hi., next: b}
          b: {flow: main}
    """)
    assert run.result.outcome.kind == "error"
    assert "nested deeper than 8" in (run.result.outcome.detail or "")
    assert len(run.result.said) == 8
