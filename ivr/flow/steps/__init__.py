"""The step types: one module each (schema + async handler), registered in one table.

To add a step type: write `ivr/flow/steps/NAME.py` with a `StepSpec` subclass and
`async def handle(spec, call) -> str | None` (a step name to go to, or None for `next`),
then add it to `STEP_TYPES` below. The loader and engine need nothing else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ivr.flow.steps import (
    gather,
    hangup,
    lookup,
    play,
    promise,
    publish,
    record,
    say,
    set_vars,
    subflow,
    thread,
    transfer,
    voicemail,
    when,
)
from ivr.flow.steps.base import StepSpec

if TYPE_CHECKING:
    from ivr.flow.engine import Call


@dataclass(frozen=True)
class StepType:
    schema: type[StepSpec]
    handle: Callable[[Any, Call], Awaitable[str | None]]


STEP_TYPES: dict[str, StepType] = {
    "say": StepType(say.Say, say.handle),
    "play": StepType(play.Play, play.handle),
    "gather": StepType(gather.Gather, gather.handle),
    "when": StepType(when.When, when.handle),
    "set": StepType(set_vars.SetVars, set_vars.handle),
    "lookup": StepType(lookup.Lookup, lookup.handle),
    "transfer": StepType(transfer.Transfer, transfer.handle),
    "voicemail": StepType(voicemail.Voicemail, voicemail.handle),
    "record": StepType(record.Record, record.handle),
    "flow": StepType(subflow.SubFlow, subflow.handle),
    "hangup": StepType(hangup.Hangup, hangup.handle),
    "thread": StepType(thread.Thread, thread.handle),
    "publish": StepType(publish.Publish, publish.handle),
    "promise": StepType(promise.Promise, promise.handle),
}
