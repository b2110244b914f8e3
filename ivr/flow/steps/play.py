"""`play`: play a recorded audio file (a store's own greeting, hold music, a jingle)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from ivr.flow.steps.base import StepSpec

if TYPE_CHECKING:
    from ivr.flow.engine import Call


class Play(StepSpec):
    shorthand: ClassVar[str | None] = "file"
    file: str = Field(min_length=1)  # relative to the flows folder, inside it; may be a template

    def templates(self) -> list[tuple[str, str]]:
        return [("file", self.file)]

    def audio_files(self) -> list[tuple[str, str]]:
        return [("file", self.file)]


async def handle(spec: Play, call: Call) -> str | None:
    await call.play(call.audio_file(call.render(spec.file)))
    return None
