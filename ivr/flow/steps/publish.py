"""`publish`: announce a domain event (`ro.pickup_confirmed`) to the store's listeners."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from ivr.flow.steps.base import StepSpec

if TYPE_CHECKING:
    from ivr.flow.engine import Call


class Publish(StepSpec):
    shorthand: ClassVar[str | None] = "event"
    event: str = Field(pattern=r"^[a-z_]+(\.[a-z_]+)+$")
    data: dict[str, Any] = Field(default_factory=dict)  # string values are templates

    def templates(self) -> list[tuple[str, str]]:
        return [(f"data.{k}", v) for k, v in self.data.items() if isinstance(v, str)]


async def handle(spec: Publish, call: Call) -> str | None:
    data = call.render_value(spec.data)
    await call.records.publish(call.store.id, spec.event, data)
    call.note(f"publish {spec.event} {data}")
    return None
