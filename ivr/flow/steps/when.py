"""`when`: branch on sandboxed conditions; the first true `if` wins, else the step's `next`."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ivr.flow.steps.base import StepSpec

if TYPE_CHECKING:
    from ivr.flow.engine import Call


class Branch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    condition: str = Field(alias="if", min_length=1)
    then: str


class When(StepSpec):
    shorthand: ClassVar[str | None] = "branches"
    branches: list[Branch] = Field(min_length=1)

    def conditions(self) -> list[tuple[str, str]]:
        return [(f"branches.{i}.if", b.condition) for i, b in enumerate(self.branches)]

    def targets(self) -> list[tuple[str, str]]:
        return [(f"branches.{i}.then", b.then) for i, b in enumerate(self.branches)]


async def handle(spec: When, call: Call) -> str | None:
    for branch in spec.branches:
        if call.test(branch.condition):
            call.note(f"when {branch.condition} → {branch.then}")
            return branch.then
    return None
