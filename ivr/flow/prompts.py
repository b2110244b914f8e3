"""Which prompts a worker can synthesize before a caller needs them.

Audio must start the moment a call is answered, and piper takes a quarter of a second for a
greeting. So a worker renders every static prompt of its flows when it starts, and renders the
one personalized prompt that opens a call (the greeting with the caller's first name) while the
phone is still ringing. Both land in the TTS disk cache, where `say` then finds them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from jinja2.meta import find_undeclared_variables

from ivr.domain import CustomerInfo, DepartmentInfo, StoreInfo
from ivr.flow.records import Records
from ivr.flow.schema import FlowSet
from ivr.flow.templates import ENV, render


def static_prompts(flows: FlowSet) -> list[str]:
    """Every spoken text that needs no call data, as `say` will render it (deduplicated)."""
    found: dict[str, None] = {}
    for flow in flows:
        for step in flow.steps.values():
            for source in step.spec.spoken():
                if not find_undeclared_variables(ENV.parse(source)):
                    text = render(source, {})
                    if text:
                        found[text] = None
    return list(found)


async def opening_prompts(
    flows: FlowSet,
    records: Records,
    *,
    store: StoreInfo,
    customer: CustomerInfo | None,
    caller: str | None,
    flow: str = "main",
    at: datetime | None = None,
    department: DepartmentInfo | None = None,
) -> list[str]:
    """What the caller will hear first: the texts of the `say` steps the entry flow opens with.

    Rendered with the same context the engine builds, so each text (and its cache key) is the
    one `say` will ask for a moment later. Empty texts (a name for an unknown caller) are left
    out, as `say` skips them.
    """
    from ivr.flow.engine import Call  # the engine imports this package's steps

    entry = flows[flow]
    call = Call(
        channel=None,  # type: ignore[arg-type]  # rendering needs no channel
        records=records,
        store=store,
        caller=caller,
        engine=None,  # type: ignore[arg-type]
        clock=lambda: at or datetime.now(UTC),
        customer=customer,
        advisor=customer.advisor if customer else None,
        department=department,
    )
    texts: list[str] = []
    name: str | None = entry.start
    seen: set[str] = set()
    while name is not None and name not in seen and name in entry.steps:
        step = entry.steps[name]
        if step.kind != "say":
            break
        seen.add(name)
        text = call.render(step.spec.text)
        if text:
            texts.append(text)
        name = step.next
    return texts
