"""A loaded flow: plain, frozen values the engine walks. The loader builds them from YAML."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
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
