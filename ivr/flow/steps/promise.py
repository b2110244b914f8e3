"""`promise`: record a promise on the RO the call is about, for its advisor to keep.

    tell_when_ready:
      promise: {text: "Call {{ customer.first_name }} when the part arrives", trigger: part_arrived}
      next: goodbye

`trigger` waits for a DMS event (`part_arrived`, or `status:Ready for Pickup`); `due_in` makes
it due after a while (`2h`). Exactly one of them. Without a repair order (no `lookup` found one)
nothing is recorded and the flow goes on: a promise needs an RO and its advisor.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field, model_validator

from ivr.flow.steps.base import Seconds, StepSpec

if TYPE_CHECKING:
    from ivr.flow.engine import Call


class Promise(StepSpec):
    unspoken: ClassVar[frozenset[str]] = frozenset({"text"})
    text: str = Field(min_length=1)  # template
    trigger: str | None = Field(default=None, pattern=r"^([a-z][a-z0-9_]{0,63}|status:.{1,70})$")
    due_in: Seconds | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Promise:
        if (self.trigger is None) == (self.due_in is None):
            raise ValueError("give either trigger or due_in")
        return self

    def templates(self) -> list[tuple[str, str]]:
        return [("text", self.text)]


async def handle(spec: Promise, call: Call) -> str | None:
    if call.ro is None:
        call.note("promise: no repair order, nothing recorded")
        return None
    text = call.render(spec.text)
    due_at = call.clock() + timedelta(seconds=spec.due_in) if spec.due_in is not None else None
    await call.records.create_promise(
        call.store.id, call.ro.id, text, trigger=spec.trigger, due_at=due_at
    )
    call.note(f"promise on RO {call.ro.number}: {text} ({spec.trigger or due_at})")
    return None
