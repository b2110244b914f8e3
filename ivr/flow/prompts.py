"""Which prompts a worker can synthesize before a caller needs them.

Audio must start the moment a call is answered, and piper takes a quarter of a second for a
greeting. So a worker renders every static prompt of its flows when it starts, and renders the
one personalized prompt that opens a call (the greeting with the caller's first name) while the
phone is still ringing. Both land in the TTS disk cache, where `say` then finds them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from jinja2.meta import find_undeclared_variables

from ivr.domain import CustomerInfo, StoreInfo
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


async def opening_prompt(
    flows: FlowSet,
    records: Records,
    *,
    store: StoreInfo,
    customer: CustomerInfo | None,
    caller: str | None,
    flow: str = "main",
    at: datetime | None = None,
) -> str | None:
    """What the caller will hear first, when the entry flow starts with a `say`.

    Rendered with the same context the engine builds, so the text (and its cache key) is the
    one `say` will ask for a moment later.
    """
    from ivr.flow.engine import Call  # the engine imports this package's steps

    entry = flows[flow]
    step = entry.steps[entry.start]
    if step.kind != "say":
        return None
    call = Call(
        channel=None,  # type: ignore[arg-type]  # rendering needs no channel
        records=records,
        store=store,
        caller=caller,
        engine=None,  # type: ignore[arg-type]
        clock=lambda: at or datetime.now(UTC),
        customer=customer,
        advisor=customer.advisor if customer else None,
    )
    return call.render(step.spec.text) or None
