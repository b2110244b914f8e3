"""Helpers for flow tests: write small flows into tmp_path and run them on fakes."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ivr.flow import CallResult, FlowEngine, load_flows
from ivr.flow.fakes import FakeChannel, FakeRecords
from ivr.speech import Understanding

NOON = "2026-11-25T12:00:00"  # Wednesday, store time: open
EVENING = "2026-11-25T20:00:00"  # Wednesday, closed

GIVEN: dict[str, Any] = {
    "caller": "+15552010001",
    "users": [
        {
            "username": "alice",
            "name": "Alice Smith",
            "contact": "sip:alice@pbx",
            "groups": ["service"],
        },
        {"username": "bob", "name": "Bob Jones", "contact": "sip:bob@pbx", "groups": ["service"]},
    ],
    "customer": {
        "first_name": "Dana",
        "last_name": "Reyes",
        "phone": "+15552010001",
        "advisor": "alice",
        "repair_orders": [
            {
                "number": "4711",
                "status": "Tech Working",
                "promised": "2026-11-25T17:30:00",
                "vehicle": "2021 Honda CR-V",
            },
        ],
    },
}


def write_flows(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip("\n"))
    return folder


@dataclass
class Run:
    result: CallResult
    channel: FakeChannel
    records: FakeRecords

    @property
    def said(self) -> str:
        return " | ".join(self.result.said)


class Caller:
    """`await caller(flows_yaml, inputs, ...)`: load the flows from text and run a call."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.count = 0

    async def __call__(
        self,
        flows: str | dict[str, str],
        inputs: list[str] | tuple[str, ...] = (),
        *,
        given: dict[str, Any] | None = None,
        transfers: dict[str, str] | None = None,
        flow: str = "main",
        now: str = NOON,
        max_steps: int = 200,
        understanding: Understanding | None = None,
    ) -> Run:
        self.count += 1
        files = {"main.yaml": flows} if isinstance(flows, str) else flows
        flow_set = load_flows(write_flows(self.tmp_path / f"flows{self.count}", files))
        records = FakeRecords.from_dict({**GIVEN, **(given or {})})
        store = records.stores[0]
        at = datetime.fromisoformat(now).replace(tzinfo=store.tz)
        channel = FakeChannel(list(inputs), transfers=transfers)
        caller = (given or {}).get("caller", GIVEN["caller"])
        engine = FlowEngine(flow_set, records, max_steps=max_steps, understanding=understanding)
        result = await engine.run(channel, store=store, caller=caller, flow=flow, clock=lambda: at)
        return Run(result, channel, records)


@pytest.fixture
def call(tmp_path: Path) -> Caller:
    return Caller(tmp_path)
