"""Prompts a worker synthesizes ahead of time must be exactly the texts `say` asks for."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ivr.flow import FlowEngine, load_flows
from ivr.flow.engine import LogLine
from ivr.flow.fakes import FakeChannel, FakeRecords
from ivr.flow.prompts import opening_prompts, static_prompts
from tests.ivr.conftest import GIVEN, NOON, write_flows

SHIPPED = Path(__file__).resolve().parents[2] / "flows"

FLOWS = """
name: main
start: greet
steps:
  greet:
    say: Thanks for calling {{ store.name }}.
    next: hello
  hello:
    say: "{% if customer %}Hi {{ customer.first_name }}.{% endif %}"
    next: menu
  menu:
    gather:
      prompt: "Press 1 for status."
      reprompt: "Sorry, {{ 'I' }} missed that."
      choices:
        bye: {dtmf: "1"}
      otherwise: bye
  bye:
    voicemail:
      prompt: "Leave a message."
      reason: "Static reason, never spoken"
"""


async def test_the_opening_prompt_is_what_the_caller_hears_first(tmp_path: Path) -> None:
    flows = load_flows(write_flows(tmp_path / "f", {"main.yaml": FLOWS}))
    records = FakeRecords.from_dict(GIVEN)
    store = records.stores[0]
    customer = await records.customer_by_phone(store.id, GIVEN["caller"])
    at = datetime.fromisoformat(NOON).replace(tzinfo=store.tz)

    texts = await opening_prompts(
        flows, records, store=store, customer=customer, caller=GIVEN["caller"], at=at
    )
    channel = FakeChannel(["1"])
    result = await FlowEngine(flows, records).run(
        channel, store=store, caller=GIVEN["caller"], clock=lambda: at, customer=customer
    )

    assert texts == [f"Thanks for calling {store.name}.", "Hi Dana."]
    assert result.said[:2] == texts
    unknown = await opening_prompts(flows, records, store=store, customer=None, caller=None)
    assert unknown == [f"Thanks for calling {store.name}."]


async def test_no_opening_prompt_when_the_flow_starts_otherwise(tmp_path: Path) -> None:
    flows = load_flows(
        write_flows(
            tmp_path / "f",
            {
                "main.yaml": FLOWS.replace("start: greet", "start: menu").replace(
                    "otherwise: bye", "otherwise: greet"
                )
            },
        )
    )
    records = FakeRecords.from_dict(GIVEN)
    texts = await opening_prompts(
        flows, records, store=records.stores[0], customer=None, caller=None
    )
    assert texts == []


def test_static_prompts_are_the_spoken_texts_without_call_data(tmp_path: Path) -> None:
    flows = load_flows(write_flows(tmp_path / "f", {"main.yaml": FLOWS}))
    prompts = static_prompts(flows)
    assert "Press 1 for status." in prompts
    assert "Sorry, I missed that." in prompts  # a template that needs no call data
    assert "Leave a message." in prompts
    assert not any("Thanks for calling" in p for p in prompts)  # needs the store
    assert not any("never spoken" in p for p in prompts)  # written down, not said


def test_shipped_flows_have_static_prompts() -> None:
    prompts = static_prompts(load_flows(SHIPPED))
    assert "How can I help you today?" in prompts
    assert "You'd like an update on your vehicle, right?" in prompts  # asked back when unsure
    assert len(prompts) == len(set(prompts))


async def test_a_known_customer_skips_the_lookup_and_log_lines_stream_out(
    tmp_path: Path,
) -> None:
    flows = load_flows(write_flows(tmp_path / "f", {"main.yaml": FLOWS}))
    records = FakeRecords.from_dict(GIVEN)
    store = records.stores[0]
    seen: list[LogLine] = []
    result = await FlowEngine(flows, records).run(
        FakeChannel(["1"]),
        store=store,
        caller=GIVEN["caller"],
        customer=None,  # the worker looked it up already: not a customer
        on_log=seen.append,
    )
    assert not any("Hi Dana" in said for said in result.said)
    assert seen == result.log and seen
