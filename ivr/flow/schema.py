"""A loaded flow: plain, frozen values the engine walks. The loader builds them from YAML."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.flow.steps.base import StepSpec

# A target that is not a step: leave the current flow (back to the flow that called it).
RETURN = "return"


@dataclass(frozen=True)
class Step:
    name: str
    kind: str  # the step type: "say", "gather", ...
    spec: StepSpec
    next: str | None = None
    on_error: str | None = None
    line: int = 0


@dataclass(frozen=True)
class Flow:
    name: str
    start: str
    steps: Mapping[str, Step]
    file: str = ""
    description: str = ""

    def audio_file(self, path: str) -> Path:
        """A file a step plays: relative to this flow's folder, and never outside it (a template
        rendering `../../etc/passwd`, or an absolute path elsewhere, is a ValueError)."""
        folder = Path(self.file).parent.resolve()
        target = (folder / path).resolve()
        if not target.is_relative_to(folder):
            raise ValueError(f"{path!r} is outside the flows folder {folder}")
        return target


@dataclass(frozen=True)
class FlowSet:
    """Every flow of a store, validated together (sub-flow names resolve within the set)."""

    flows: Mapping[str, Flow] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Flow:
        return self.flows[name]

    def __contains__(self, name: object) -> bool:
        return name in self.flows

    def __iter__(self) -> Iterator[Flow]:
        return iter(self.flows.values())

    def __len__(self) -> int:
        return len(self.flows)
