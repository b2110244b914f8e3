"""Gathers with `slots` on the FakeChannel: filled slots land in `slots.KIND` for the next
steps and in the call log (not for a sensitive gather), a slot choice routes, and the lookups
`named_advisor` / `named_vehicle` turn a name into the advisor or the RO."""

from __future__ import annotations

from tests.ivr.conftest import GIVEN, Caller

MENU = """
name: main
start: menu
steps:
  menu:
    gather:
      prompt: How can I help?
      choices:
        pickup: {dtmf: "2", phrases: ["pick up"]}
        person: {dtmf: "0", phrases: ["talk to"]}
      slots: [time, vehicle, advisor, ro_number]
      attempts: 1
      otherwise: bye
  pickup:
    say: "Pickup {{ slots.time }} at {{ slots.time.isoformat() if slots.time else 'no time' }}."
    next: bye
  person:
    lookup: {query: named_advisor, not_found: bye}
    next: ring
  ring:
    transfer: {to: assigned_advisor, prompt: "Connecting you to {{ advisor.first_name }}."}
  bye:
    hangup: Bye.
"""

TWO_ROS = {
    **GIVEN["customer"],
    "repair_orders": [
        {"number": "4711", "status": "Ready for Pickup", "vehicle": "2019 Chevrolet Tahoe"},
        {"number": "4712", "status": "Tech Working", "vehicle": "2020 Chevrolet Silverado"},
    ],
}


async def test_slots_land_in_the_next_steps_and_the_log(call: Caller) -> None:
    run = await call(MENU, ["I'll pick up my CR-V tomorrow around nine"])
    assert run.result.path == ["main.menu", "main.pickup", "main.bye"]
    assert "Pickup tomorrow around 9 AM at 2026-11-26T09:00:00-05:00." in run.result.said
    notes = [line.text for line in run.result.log if line.who == "SYSTEM"]
    assert notes[0] == (
        "slots: time tomorrow around 9 AM (2026-11-26 09:00), vehicle 2021 Honda CR-V"
    )
    assert set(run.result.slots) == {"time", "vehicle"}


async def test_a_key_fills_no_slot(call: Caller) -> None:
    run = await call(MENU, ["2"])
    assert "Pickup None at no time." in run.result.said and run.result.slots == {}


async def test_a_sensitive_gather_fills_slots_but_never_logs_them(call: Caller) -> None:
    flows = MENU.replace("attempts: 1", "attempts: 1\n      sensitive: true")
    run = await call(flows, ["pick up R O seven oh one two three tomorrow at nine"])
    assert run.result.slots["ro_number"] == "70123"
    logged = "\n".join(line.text for line in run.result.log if line.flow == "main")
    assert "70123" not in logged and "slots" not in logged and "seven" not in logged


async def test_naming_an_advisor_transfers_to_that_advisor(call: Caller) -> None:
    run = await call(MENU, ["can I talk to Bob please"])  # Alice is the assigned advisor
    assert "Connecting you to Bob." in run.result.said
    assert run.result.outcome.target == "Bob Jones"


async def test_without_a_name_the_lookup_says_not_found(call: Caller) -> None:
    run = await call(MENU, ["can I talk to someone"])
    assert run.result.path[-1] == "main.bye" and run.result.outcome.kind == "hangup"


SLOT_CHOICE = """
name: main
start: ask
steps:
  ask:
    gather:
      prompt: When will you come?
      choices:
        today: {dtmf: "1"}
        at_time: {slot: time}
      slots: [time]
      attempts: 2
      otherwise: bye
  today: {say: Today then., next: bye}
  at_time: {say: "See you {{ slots.time }}.", next: bye}
  bye: {hangup: Bye.}
"""


async def test_a_slot_choice_is_taken_when_its_slot_is_filled(call: Caller) -> None:
    run = await call(SLOT_CHOICE, ["um maybe Friday after lunch"])
    assert "See you Friday after lunch." in run.result.said
    assert "heard → at_time (slot time)" in [line.text for line in run.result.log]


async def test_words_that_fill_no_slot_are_asked_again(call: Caller) -> None:
    run = await call(SLOT_CHOICE, ["I don't know", "1"])
    assert run.result.path == ["main.ask", "main.today", "main.bye"]


VEHICLE = """
name: main
start: which
steps:
  which:
    gather:
      prompt: Which vehicle?
      choices:
        find: {slot: vehicle}
      slots: [vehicle]
      attempts: 1
      otherwise: bye
  find:
    lookup: {query: named_vehicle, found: say, not_found: bye}
  say: {say: "RO {{ ro.number }}, your {{ ro.vehicle.description }}.", next: bye}
  bye: {hangup: Bye.}
"""


async def test_a_named_vehicle_picks_that_ro_of_several(call: Caller) -> None:
    run = await call(VEHICLE, ["the Silverado"], given={"customer": TWO_ROS})
    assert "RO 4712, your 2020 Chevrolet Silverado." in run.result.said


async def test_a_vehicle_with_no_open_ro_is_not_found(call: Caller) -> None:
    run = await call(VEHICLE, ["the Honda"], given={"customer": TWO_ROS})
    assert run.result.path[-1] == "main.bye"
    assert run.result.slots == {}  # the Honda is not among this customer's vehicles


async def test_a_number_gather_takes_numbers_said_in_words(call: Caller) -> None:
    flows = """
    name: main
    start: ask
    steps:
      ask:
        gather:
          prompt: Your RO number?
          input: {into: ro_number}
        next: bye
      bye: {hangup: "Got {{ vars.ro_number }}."}
    """
    run = await call(flows, ["seventy thousand one twenty three"])
    assert run.result.vars["ro_number"] == "70123"
