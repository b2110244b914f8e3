"""`record`: record the caller (a name, a message) and keep the file's path in a variable."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.flow.steps.base import Seconds, StepSpec
from ivr.flow.steps.set_vars import VarName

if TYPE_CHECKING:
    from ivr.flow.engine import Call


class Record(StepSpec):
    waits_for_caller = True
    prompt: str | None = None
    max: Seconds = 60.0
    beep: bool = True
    into: VarName | None = None  # vars.INTO = path, vars.INTO_seconds = duration

    def templates(self) -> list[tuple[str, str]]:
        return [("prompt", self.prompt)] if self.prompt else []

    def assigns(self) -> list[str]:
        return [self.into, f"{self.into}_seconds"] if self.into else []


async def handle(spec: Record, call: Call) -> str | None:
    if spec.prompt:
        await call.say(call.render(spec.prompt))
    recording = await call.record(max_seconds=spec.max, beep=spec.beep)
    if spec.into:
        call.vars[spec.into] = recording.path
        call.vars[f"{spec.into}_seconds"] = recording.duration
    return None
