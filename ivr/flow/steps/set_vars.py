"""`set`: store variables for later steps (`vars.NAME` in templates and conditions).

String values are templates and are stored as the rendered string; numbers, booleans and lists
written in YAML are stored as they are. Counting therefore reads `{{ vars.tries|int + 1 }}`.
Values are set in order, so a later value can use an earlier one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, StringConstraints

from ivr.flow.steps.base import StepSpec

if TYPE_CHECKING:
    from ivr.flow.engine import Call

VarName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class SetVars(StepSpec):
    values: dict[VarName, Any] = Field(min_length=1)

    @classmethod
    def from_body(cls, body: Any) -> Any:
        return {"values": body}

    def templates(self) -> list[tuple[str, str]]:
        return [(f"values.{k}", v) for k, v in self.values.items() if isinstance(v, str)]

    def assigns(self) -> list[str]:
        return list(self.values)


async def handle(spec: SetVars, call: Call) -> str | None:
    for name, value in spec.values.items():
        call.vars[name] = call.render_value(value)
    call.note("set " + ", ".join(f"{k}={call.vars[k]!r}" for k in spec.values))
    return None
