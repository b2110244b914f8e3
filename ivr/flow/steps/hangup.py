"""`hangup`: optionally say goodbye, then end the call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ivr.flow.steps.base import StepSpec

if TYPE_CHECKING:
    from ivr.flow.engine import Call


class Hangup(StepSpec):
    shorthand: ClassVar[str | None] = "say"
    say: str | None = None

    @classmethod
    def from_body(cls, body: Any) -> Any:
        return {} if body is True else super().from_body(body)

    def templates(self) -> list[tuple[str, str]]:
        return [("say", self.say)] if self.say else []


async def handle(spec: Hangup, call: Call) -> str | None:
    from ivr.flow.engine import Outcome

    if spec.say:
        await call.say(call.render(spec.say))
    call.finish(Outcome("hangup"))
    await call.hangup()
    return None
