"""`say`: speak a sentence (a template) to the caller."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ivr.flow.steps.base import StepSpec

if TYPE_CHECKING:
    from ivr.flow.engine import Call


class Say(StepSpec):
    shorthand: ClassVar[str | None] = "text"
    text: str

    def templates(self) -> list[tuple[str, str]]:
        return [("text", self.text)]


async def handle(spec: Say, call: Call) -> str | None:
    await call.say(call.render(spec.text))
    return None
