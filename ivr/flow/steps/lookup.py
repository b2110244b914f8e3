"""`lookup`: ask the shared record a named question and branch on the answer.

| query                  | outcomes              | sets                   |
| open_repair_order      | none / one / several  | ro, advisor (on one)   |
| repair_order_by_number | found / not_found     | ro, advisor (on found) |
| assigned_advisor       | found / not_found     | advisor                |
| store_open_now         | open / closed         |                        |
| customer_by_phone      | found / not_found     | customer, advisor (by `number`, a phone number) |
| named_advisor          | found / not_found     | advisor (`slots.advisor`)  |
| named_vehicle          | found / not_found     | ro, advisor (the open RO of `slots.vehicle`) |

An outcome with no target continues at the step's `next`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import model_validator

from ivr.flow.steps.base import StepSpec
from ivr.phone import try_e164

if TYPE_CHECKING:
    from ivr.flow.engine import Call

QUERIES: dict[str, tuple[str, ...]] = {
    "open_repair_order": ("none", "one", "several"),
    "repair_order_by_number": ("found", "not_found"),
    "assigned_advisor": ("found", "not_found"),
    "store_open_now": ("open", "closed"),
    "customer_by_phone": ("found", "not_found"),
    "named_advisor": ("found", "not_found"),
    "named_vehicle": ("found", "not_found"),
}
NUMBERED = ("repair_order_by_number", "customer_by_phone")  # the queries that take `number`
OUTCOMES = ("none", "one", "several", "found", "not_found", "open", "closed")


class Lookup(StepSpec):
    shorthand: ClassVar[str | None] = "query"
    query: Literal[
        "open_repair_order",
        "repair_order_by_number",
        "assigned_advisor",
        "store_open_now",
        "customer_by_phone",
        "named_advisor",
        "named_vehicle",
    ]
    number: str | None = None  # repair_order_by_number, customer_by_phone: template, the digits
    none: str | None = None
    one: str | None = None
    several: str | None = None
    found: str | None = None
    not_found: str | None = None
    open: str | None = None
    closed: str | None = None

    @model_validator(mode="after")
    def _fits_query(self) -> Lookup:
        allowed = QUERIES[self.query]
        wrong = [o for o in OUTCOMES if getattr(self, o) is not None and o not in allowed]
        if wrong:
            raise ValueError(
                f"{self.query} has outcomes {', '.join(allowed)}, not {', '.join(wrong)}"
            )
        if (self.number is not None) != (self.query in NUMBERED):
            raise ValueError(f"number is needed by {' and '.join(NUMBERED)}, and only there")
        return self

    def targets(self) -> list[tuple[str, str]]:
        return [(o, t) for o in OUTCOMES if (t := getattr(self, o)) is not None]

    def templates(self) -> list[tuple[str, str]]:
        return [("number", self.number)] if self.number else []


async def _answer(spec: Lookup, call: Call) -> tuple[str, str]:
    """(outcome, detail for the call log)."""
    if spec.query == "open_repair_order":
        open_ros = [
            r for r in (call.customer.open_repair_orders if call.customer else ()) if r.is_open
        ]
        if len(open_ros) == 1:
            call.ro = open_ros[0]
            call.advisor = call.ro.advisor or call.advisor
            return "one", f"RO {call.ro.number}"
        if not call.customer:
            return "none", "caller unknown"
        return ("several", f"{len(open_ros)} open") if open_ros else ("none", "no open RO")
    if spec.query == "repair_order_by_number":
        number = re.sub(r"\D", "", call.render(spec.number or ""))
        found = await call.records.repair_order(call.store.id, number) if number else None
        if found is None:
            return "not_found", f"RO {number or '(empty)'}"
        call.ro = found
        call.advisor = found.advisor or call.advisor
        return "found", f"RO {found.number}"
    if spec.query == "assigned_advisor":
        advisor = (call.ro.advisor if call.ro else None) or (
            call.customer.advisor if call.customer else None
        )
        call.advisor = advisor
        return ("found", advisor.name) if advisor else ("not_found", "no advisor")
    if spec.query == "customer_by_phone":
        return await _customer_by_phone(spec, call)
    if spec.query == "named_advisor":
        named = call.slots.get("advisor")
        if named is None:
            return "not_found", "no advisor named"
        call.advisor = named
        return "found", named.name
    if spec.query == "named_vehicle":
        return _named_vehicle(call)
    is_open = call.hours().open_at(call.now())
    return ("open" if is_open else "closed"), call.store.name


async def _customer_by_phone(spec: Lookup, call: Call) -> tuple[str, str]:
    """The customer whose phone number the caller keyed or said (an unknown or withheld caller
    ID): the lookups after it (`open_repair_order`) then read their repair orders."""
    e164 = try_e164(re.sub(r"\D", "", call.render(spec.number or "")))
    found = await call.records.customer_by_phone(call.store.id, e164) if e164 else None
    if found is None:
        return "not_found", e164 or "(not a phone number)"
    call.customer = found
    call.advisor = found.advisor or call.advisor
    return "found", found.name


def _named_vehicle(call: Call) -> tuple[str, str]:
    """The caller's one open RO for the vehicle they named ("my Tahoe")."""
    vehicle = call.slots.get("vehicle")
    if vehicle is None:
        return "not_found", "no vehicle named"
    ros = [r for r in (call.customer.open_repair_orders if call.customer else ()) if r.is_open]
    matching = [r for r in ros if r.vehicle == vehicle]
    if len(matching) != 1:
        return "not_found", f"{vehicle.description}: {len(matching)} open ROs"
    call.ro = matching[0]
    call.advisor = call.ro.advisor or call.advisor
    return "found", f"RO {call.ro.number} ({vehicle.description})"


async def handle(spec: Lookup, call: Call) -> str | None:
    outcome, detail = await _answer(spec, call)
    call.note(f"lookup {spec.query}: {outcome} ({detail})")
    target: str | None = getattr(spec, outcome)
    return target
