"""What every step type provides: a pydantic schema that also tells the loader its wiring."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$"
)


def parse_duration(value: Any) -> float:
    """`5s`, `1m30s`, `2h`, or a bare number of seconds → seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 5s, 2m or 1h")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match or not any(match.groups()):
        raise ValueError(f"expected a duration like 5s, 2m or 1h, got {value!r}")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


Seconds = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]


class StepSpec(BaseModel):
    """The body of a step (`say: ...`, `gather: {...}`), validated with unknown fields refused.

    The loader uses the methods below to check targets, templates and loops without knowing
    any step type; a new step type only fills in what it has.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # The field a scalar body fills: `say: "Hi"` means `say: {text: "Hi"}`.
    shorthand: ClassVar[str | None] = None
    # True for steps that wait for the caller (or a person): a loop through one is not endless.
    waits_for_caller: ClassVar[bool] = False
    # Template fields that are written down, not spoken (no prompt is synthesized for them).
    unspoken: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_body(cls, body: Any) -> Any:
        if cls.shorthand is not None and not isinstance(body, dict):
            return {cls.shorthand: body}
        return {} if body is None else body

    def targets(self) -> list[tuple[str, str]]:
        """(field, step name) for every step this one can jump to besides `next`/`on_error`."""
        return []

    def templates(self) -> list[tuple[str, str]]:
        """(field, Jinja template source) for the loader to compile."""
        return []

    def spoken(self) -> list[str]:
        """Template sources the caller hears, so a worker can synthesize them ahead of time."""
        return [source for field, source in self.templates() if field not in self.unspoken]

    def audio_files(self) -> list[tuple[str, str]]:
        """(field, path or path template) of files this step plays: the loader refuses a
        static one outside the flows folder, and `Call.audio_file` a rendered one."""
        return []

    def conditions(self) -> list[tuple[str, str]]:
        """(field, sandboxed expression source) for the loader to compile."""
        return []

    def assigns(self) -> list[str]:
        """Variables (`vars.NAME`) this step sets."""
        return []

    def fills(self) -> list[str]:
        """Slots (`slots.KIND`) this step fills from what the caller says."""
        return []

    def subflows(self) -> list[tuple[str, str]]:
        """(field, flow name) of flows this step calls."""
        return []
