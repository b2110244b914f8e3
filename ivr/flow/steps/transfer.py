"""`transfer`: ring someone and bridge the caller; on no answer try the fallbacks in order.

Targets: `assigned_advisor`, `last_contacted_advisor` (the advisor who called this caller
within the store's sticky-callback window), `user:USERNAME`, `group:NAME` (rings every member
at once), `department:KIND` (service, sales, parts, bdc: rings that department's people), or a
number / SIP URI (`+15552010001`, `sip:desk@pbx.example`). When nobody answers the step goes
to `otherwise` (else `next`). An answered transfer ends the flow: the call is bridged.

A department transfer carries the caller across: before it rings, a `call.handoff` event names
the caller (as identified on this call), the department the call came from and the one it goes
to, so the screen of whoever picks up says who is on the line and why.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import AfterValidator, Field

from ivr.domain import DepartmentKind
from ivr.flow.channel import TransferStatus
from ivr.flow.steps.base import Seconds, StepSpec

if TYPE_CHECKING:
    from ivr.flow.engine import Call

_TARGET = re.compile(
    r"^(assigned_advisor|last_contacted_advisor|user:[\w.@-]+|group:[\w.-]+|\+[1-9]\d{6,14}|sips?:\S+)$"
)
HANDOFF_EVENT = "call.handoff"


def _check_target(value: str) -> str:
    kind, sep, name = value.partition(":")
    if sep and kind == "department":
        if name not in DepartmentKind.__members__:
            known = ", ".join(DepartmentKind)
            raise ValueError(f"unknown department {name!r}: use department:KIND with {known}")
        return value
    if not _TARGET.match(value):
        raise ValueError(
            f"unknown target {value!r}: use assigned_advisor, last_contacted_advisor, "
            "user:NAME, group:NAME, department:KIND, "
            "+E164 or sip:URI"
        )
    return value


Target = Annotated[str, AfterValidator(_check_target)]


class Transfer(StepSpec):
    waits_for_caller = True
    shorthand: ClassVar[str | None] = "to"
    to: Target
    ring: Seconds = 20.0
    fallback: list[Target] = Field(default_factory=list)
    prompt: str | None = None  # said once before ringing, e.g. "Connecting you to Alice."
    otherwise: str | None = None

    @classmethod
    def from_body(cls, body: Any) -> Any:
        body = super().from_body(body)
        if isinstance(body, dict) and isinstance(body.get("fallback"), str):
            body = {**body, "fallback": [body["fallback"]]}
        return body

    def targets(self) -> list[tuple[str, str]]:
        return [("otherwise", self.otherwise)] if self.otherwise else []

    def templates(self) -> list[tuple[str, str]]:
        return [("prompt", self.prompt)] if self.prompt else []


async def resolve(target: str, call: Call) -> tuple[str, dict[str, str]]:
    """(label, {contact: name}) to ring for a target; empty when there is nobody to ring."""
    if target == "assigned_advisor":
        adv = call.advisor
        return ("assigned advisor", {adv.contact: adv.name} if adv and adv.contact else {})
    if target == "last_contacted_advisor":
        last = await call.records.last_contact(call.store.id, call.caller or "")
        adv = last.advisor if last else None
        return ("advisor who called", {adv.contact: adv.name} if adv and adv.contact else {})
    kind, _, name = target.partition(":")
    if kind == "user":
        user = await call.records.user(call.store.id, name)
        return (name, {user.contact: user.name} if user and user.contact else {})
    if kind in ("group", "department"):
        # A department's people are its ring group (records: users of that department).
        members = await call.records.group(call.store.id, name)
        return (f"{kind} {name}", {m.contact: m.name for m in members if m.contact})
    return (target, {target: target})


async def _hand_off(target: str, call: Call) -> None:
    """Announce who is coming over, from which department, before the phones ring."""
    kind = target.partition(":")[2]
    going, coming = call.store.department(kind), call.department
    customer = call.customer
    await call.records.publish(
        call.store.id,
        HANDOFF_EVENT,
        {
            "department": kind,
            "department_name": going.name if going else kind.title(),
            "from_department": coming.kind if coming else DepartmentKind.service.value,
            "from_department_name": coming.name if coming else "Service",
            "caller": call.caller,
            "customer": {"id": customer.id, "name": customer.name} if customer else None,
            "repair_order": call.ro.number if call.ro else None,
        },
    )


async def handle(spec: Transfer, call: Call) -> str | None:
    from ivr.flow.engine import Outcome

    if spec.prompt:
        await call.say(call.render(spec.prompt))
    for target in [spec.to, *spec.fallback]:
        label, contacts = await resolve(target, call)
        if not contacts:
            call.note(f"{label}: nobody to ring")
            continue
        if target.startswith("department:"):
            await _hand_off(target, call)
        result = await call.transfer(label, list(contacts), spec.ring)
        if result.status == TransferStatus.answered:
            contact = result.contact or next(iter(contacts))
            call.finish(Outcome("transfer", target=contacts.get(contact, label), contact=contact))
            return None
    return spec.otherwise
