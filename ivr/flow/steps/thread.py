"""`thread`: write an entry on the caller's thread (what the advisors read), e.g. `pickup`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from ivr.domain import ThreadKind
from ivr.flow.steps.base import StepSpec

if TYPE_CHECKING:
    from ivr.flow.engine import Call


class Thread(StepSpec):
    kind: str
    body: str = Field(min_length=1)  # template
    data: dict[str, Any] = Field(default_factory=dict)  # string values are templates

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in ThreadKind.__members__:
            raise ValueError(f"unknown thread kind {value!r} (use {', '.join(ThreadKind)})")
        return value

    def templates(self) -> list[tuple[str, str]]:
        found = [("body", self.body)]
        return found + [(f"data.{k}", v) for k, v in self.data.items() if isinstance(v, str)]


async def handle(spec: Thread, call: Call) -> str | None:
    customer_id = call.customer.id if call.customer else None
    body = call.render(spec.body)
    await call.records.add_thread_entry(
        call.store.id, customer_id, spec.kind, body, call.render_value(spec.data)
    )
    call.note(f"thread {spec.kind}: {body}")
    return None
