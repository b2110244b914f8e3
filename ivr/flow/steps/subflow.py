"""`flow`: run another flow by name, then carry on here.

The sub-flow "returns" when it runs out of steps (or reaches `return`); if it ends the call
(transfer answered, voicemail, hangup) the calling flow stops too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ivr.flow.steps.base import StepSpec

if TYPE_CHECKING:
    from ivr.flow.engine import Call


class SubFlow(StepSpec):
    shorthand: ClassVar[str | None] = "name"
    name: str

    def subflows(self) -> list[tuple[str, str]]:
        return [("name", self.name)]


async def handle(spec: SubFlow, call: Call) -> str | None:
    await call.run_flow(spec.name)
    return None
