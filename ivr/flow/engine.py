"""Runs a flow on one call: walks steps, keeps the call's state, writes the call log.

The engine only knows the `CallChannel` and `Records` protocols, so the same code runs on a SIP
call, in `driveline flows run` against the real database, and in `driveline flows test`.
Step handlers get a `Call`: the state templates see, plus logged wrappers around the channel,
so every prompt and every caller action lands in the call log the same way.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ivr.domain import (
    AdvisorInfo,
    CustomerInfo,
    DepartmentInfo,
    RepairOrderInfo,
    StoreInfo,
    VehicleInfo,
)
from ivr.flow.channel import (
    CallChannel,
    CallerHungUp,
    GatherResult,
    Prompt,
    Recording,
    TransferResult,
)
from ivr.flow.records import Records
from ivr.flow.schema import RETURN, Flow, FlowSet, Step
from ivr.flow.steps import STEP_TYPES
from ivr.flow.templates import evaluate, render
from ivr.hours import Hours, HoursView
from ivr.slots import Facts, extract
from ivr.speech import Understanding

log = logging.getLogger(__name__)

MAX_STEPS = 200  # a caller pressing keys for 200 steps is a bug, not a customer
MAX_DEPTH = 8  # sub-flow nesting


class Unknown:
    """Marks "not looked up yet", which differs from None ("looked up: not a customer")."""


UNKNOWN = Unknown()


class CallAborted(Exception):
    """The engine stopped the call itself (runaway loop, runaway recursion); no on_error."""


@dataclass(frozen=True)
class LogLine:
    flow: str
    step: str
    who: str  # "IVR", "CALLER" or "SYSTEM"
    text: str

    def __str__(self) -> str:
        if self.who == "IVR":
            return f'IVR: "{self.text}"'
        if self.who == "CALLER":
            return f"CALLER: {self.text}"
        return f"  ({self.text})"


@dataclass(frozen=True)
class Outcome:
    """How the call ended."""

    kind: str  # "hangup" | "caller_hung_up" | "transfer" | "voicemail" | "error"
    target: str | None = None  # transfer: who was reached ("Alice Smith", "group service")
    contact: str | None = None  # transfer: the SIP URI / number that answered
    detail: str | None = None  # voicemail: recording path; error: the message

    def describe(self) -> str:
        if self.kind == "transfer":
            return f"transfer to {self.target} ({self.contact})"
        if self.kind == "voicemail":
            return f"voicemail ({self.detail})" if self.detail else "voicemail"
        if self.kind == "caller_hung_up":
            return "caller hung up"
        if self.kind == "error":
            return f"error: {self.detail}"
        return "hangup"


@dataclass
class CallResult:
    log: list[LogLine]
    path: list[str]  # "flow.step" in the order run
    outcome: Outcome
    vars: dict[str, Any]
    slots: dict[str, Any] = field(default_factory=dict)

    @property
    def said(self) -> list[str]:
        return [line.text for line in self.log if line.who == "IVR"]

    def script(self, *, steps: bool = False) -> str:
        """The call as a play script: IVR / CALLER lines, then how it ended."""
        width = max((len(f"{x.flow}.{x.step}") for x in self.log), default=0) + 2
        lines = [(f"{x.flow}.{x.step}".ljust(width) if steps else "") + str(x) for x in self.log]
        lines.append(f"ENDS: {self.outcome.describe()}")
        return "\n".join(lines)


@dataclass
class Call:
    """One call's state and the handlers' way to act on it."""

    channel: CallChannel
    records: Records
    store: StoreInfo
    caller: str | None  # E.164, None when withheld
    engine: FlowEngine
    clock: Callable[[], datetime]
    customer: CustomerInfo | None = None
    ro: RepairOrderInfo | None = None
    advisor: AdvisorInfo | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    # What the caller's words filled (ivr/slots), by kind: `slots.time`, `slots.advisor`, ...
    slots: dict[str, Any] = field(default_factory=dict)
    log: list[LogLine] = field(default_factory=list)
    path: list[str] = field(default_factory=list)
    outcome: Outcome | None = None
    flow: str = ""
    step: str = ""
    depth: int = 0
    # Sees every log line as it happens (the SIP worker publishes them as `call.step`).
    on_log: Callable[[LogLine], None] | None = None
    # The department whose number was dialled (None: the store itself, as before departments).
    department: DepartmentInfo | None = None
    _store_advisors: list[AdvisorInfo] | None = field(default=None, repr=False)

    # --- state -------------------------------------------------------------------------------

    def now(self) -> datetime:
        """Now in the store's time zone: opening hours and "today" are the store's."""
        return self.store.local(self.clock())

    def hours(self) -> Hours:
        """The dialled department's opening hours (else the store's), with the store's closures."""
        return Hours.of(self.store, self.department)

    def context(self) -> dict[str, Any]:
        now = self.now()
        hours = self.hours()
        return {
            "store": self.store,
            "customer": self.customer,
            "ro": self.ro,
            "advisor": self.advisor,
            "caller": self.caller or "",
            "vars": defaultdict(lambda: None, self.vars),  # an unset variable reads as None
            "slots": defaultdict(lambda: None, self.slots),
            "now": now,
            "store_open": hours.open_at(now),
            "department": self.department,
            "hours": HoursView(hours, now),
        }

    def render(self, source: str) -> str:
        return render(source, self.context())

    def audio_file(self, path: str) -> str:
        """`path` (rendered) under the current flow's folder; a path leading outside is refused
        (ValueError: the step fails, nothing is played)."""
        try:
            return str(self.engine.flows[self.flow].audio_file(path))
        except ValueError as exc:
            log.warning("flow %s step %s refused to play: %s", self.flow, self.step, exc)
            raise

    def render_value(self, value: Any) -> Any:
        """Strings are templates; lists and mappings are rendered item by item; the rest kept."""
        if isinstance(value, str):
            return self.render(value)
        if isinstance(value, dict):
            return {k: self.render_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render_value(v) for v in value]
        return value

    def test(self, expression: str) -> bool:
        return evaluate(expression, self.context())

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    def finish(self, outcome: Outcome) -> None:
        """Mark the call done (bridged, voicemail, hung up): every flow level stops."""
        if self.outcome is None:
            self.outcome = outcome

    def note(self, text: str) -> None:
        self._log("SYSTEM", text)

    def _log(self, who: str, text: str) -> None:
        line = LogLine(self.flow, self.step, who, text)
        self.log.append(line)
        if self.on_log is not None:
            self.on_log(line)

    # --- the channel, logged -----------------------------------------------------------------

    async def say(self, text: str) -> None:
        if text:
            self._log("IVR", text)
            await self.channel.say(text)

    async def play(self, path: str) -> None:
        self._log("IVR", f"[plays {path}]")
        await self.channel.play(path)

    async def gather(self, prompt: Prompt | None, **options: Any) -> GatherResult:
        if prompt is not None:
            self._log("IVR", str(prompt))
        result = await self.channel.gather(prompt, **options)
        if options.get("sensitive") and (result.digits or result.heard):
            self._log("CALLER", "answers (sensitive: not logged)")
        elif result.digits:
            self._log("CALLER", f"presses {result.digits}")
        elif result.heard:
            self._log("CALLER", f'says "{result.heard}"')
        else:
            self._log("CALLER", "(silence)")
        return result

    async def understand(
        self, heard: str, intents: dict[str, list[str]]
    ) -> dict[str, float] | None:
        """Each intent's score for what the caller said; None (noted) when no model answers:
        the gather then treats it as no match and the caller can still use the keys."""
        understanding = self.engine.understanding
        scores = await understanding.classify(heard, intents) if understanding else None
        if scores is None:
            self.note("no language model answered: speech not understood")
        return scores

    async def fill_slots(self, kinds: Sequence[str], heard: str) -> dict[str, Any]:
        """The slots of `kinds` that `heard` fills, read against this call (its "now", hours,
        the store's advisors, the customer's vehicles); kept in `slots` for the next steps."""
        advisors: list[AdvisorInfo] = []
        if "advisor" in kinds:
            advisors = await self.advisors()
        facts = Facts(
            now=self.now(), hours=self.hours(), advisors=advisors, vehicles=self.vehicles()
        )
        filled = extract(kinds, heard, facts)
        self.slots.update(filled)
        return filled

    def vehicles(self) -> list[VehicleInfo]:
        """The caller's vehicles: on file, and those of their open repair orders."""
        if self.customer is None:
            return []
        found = list(self.customer.vehicles)
        for ro in self.customer.open_repair_orders:
            if ro.vehicle is not None and ro.vehicle not in found:
                found.append(ro.vehicle)
        return found

    async def advisors(self) -> list[AdvisorInfo]:
        """Who the caller may ask for by name: their own advisors first, then the store's
        service advisors (one lookup a call)."""
        if self._store_advisors is None:
            try:
                self._store_advisors = await self.records.group(self.store.id, "service")
            except Exception as exc:  # noqa: BLE001 - names then come from the caller's record
                log.warning("advisor names for store %s failed: %s", self.store.id, exc)
                self._store_advisors = []
        own = [self.advisor, self.customer.advisor if self.customer else None]
        own += [r.advisor for r in (self.customer.open_repair_orders if self.customer else ())]
        found: list[AdvisorInfo] = []
        for advisor in [*own, *self._store_advisors]:
            if advisor is not None and all(a.id != advisor.id for a in found):
                found.append(advisor)
        return found

    async def record(self, **options: Any) -> Recording:
        recording = await self.channel.record(**options)
        ended = ", then hangs up" if recording.hung_up else ""
        self._log("CALLER", f"records {recording.duration:.0f}s{ended}")
        return recording

    async def transfer(
        self, label: str, contacts: Sequence[str], ring_seconds: float
    ) -> TransferResult:
        result = await self.channel.transfer(contacts, ring_seconds=ring_seconds)
        self.note(f"ring {label} ({', '.join(contacts)}): {result.status}")
        return result

    async def hangup(self) -> None:
        await self.channel.hangup()

    async def run_flow(self, name: str) -> None:
        await self.engine.run_flow(self, name)


class FlowEngine:
    def __init__(
        self,
        flows: FlowSet,
        records: Records,
        *,
        max_steps: int = MAX_STEPS,
        understanding: Understanding | None = None,
    ) -> None:
        self.flows = flows
        self.records = records
        self.max_steps = max_steps
        # Classifies speech in intent gathers: the speech service's client in a SIP worker
        # (one warm model for all), the model itself in `driveline flows run/test`.
        self.understanding = understanding

    async def run(
        self,
        channel: CallChannel,
        *,
        store: StoreInfo,
        caller: str | None,
        flow: str = "main",
        clock: Callable[[], datetime] | None = None,
        customer: CustomerInfo | None | Unknown = UNKNOWN,
        on_log: Callable[[LogLine], None] | None = None,
        department: DepartmentInfo | None = None,
    ) -> CallResult:
        """Run `flow` for one call to its end; never raises for anything the call does.

        `customer` skips the lookup when the worker already identified the caller while the
        phone rang (None: looked up, not a customer). `department` is the one the dialled
        number rings: its hours are the call's `store_open` and `hours`.
        """
        call = Call(
            channel=channel,
            records=self.records,
            store=store,
            caller=caller,
            engine=self,
            clock=clock or (lambda: datetime.now(UTC)),
            on_log=on_log,
            department=department,
        )
        try:
            if not isinstance(customer, Unknown):
                call.customer = customer
                call.advisor = customer.advisor if customer else None
            elif caller:
                await self._identify(call, caller)
            await self.run_flow(call, flow)
            if not call.finished:
                call.finish(Outcome("hangup"))
                await channel.hangup()
        except CallerHungUp:
            call._log("CALLER", "hangs up")
            call.finish(Outcome("caller_hung_up"))
        except Exception as exc:  # noqa: BLE001 - a broken step must still end the call cleanly
            log.exception("flow %s failed at %s.%s", flow, call.flow, call.step)
            call.note(f"error: {exc}")
            call.finish(Outcome("error", detail=str(exc)))
            try:
                await channel.hangup()
            except CallerHungUp:
                pass
        assert call.outcome is not None
        return CallResult(call.log, call.path, call.outcome, dict(call.vars), dict(call.slots))

    async def _identify(self, call: Call, caller: str) -> None:
        """Who is calling. A failed lookup leaves the caller unknown: better than no call."""
        try:
            call.customer = await self.records.customer_by_phone(call.store.id, caller)
        except Exception as exc:  # noqa: BLE001 - the flow still works for unknown callers
            log.warning("customer lookup for %s failed: %s", caller, exc)
            call.note(f"customer lookup failed: {exc}")
        call.advisor = call.customer.advisor if call.customer else None

    async def run_flow(self, call: Call, name: str) -> None:
        """Walk one flow from its start until it runs out of steps, returns, or the call ends.

        Exceptions end the whole call (see `run`), so nothing is unwound on the way out:
        `call.flow`/`call.step` keep pointing at the step that failed, for the log.
        """
        if call.depth >= MAX_DEPTH:
            raise CallAborted(f"sub-flows nested deeper than {MAX_DEPTH} (flow {name})")
        flow: Flow = self.flows[name]
        outer = (call.flow, call.step)
        call.depth += 1
        target: str | None = flow.start
        while target is not None and target != RETURN and not call.finished:
            step = flow.steps[target]
            call.flow, call.step = flow.name, step.name
            call.path.append(f"{flow.name}.{step.name}")
            if len(call.path) > self.max_steps:
                raise CallAborted(f"more than {self.max_steps} steps: endless loop?")
            target = await self._run_step(call, step)
        call.depth -= 1
        call.flow, call.step = outer

    async def _run_step(self, call: Call, step: Step) -> str | None:
        """Run one step; the name of the step to go to next (None: this flow is done)."""
        try:
            chosen = await STEP_TYPES[step.kind].handle(step.spec, call)
        except (CallerHungUp, CallAborted):
            raise
        except Exception as exc:
            if step.on_error is None:
                raise
            log.warning("step %s.%s failed: %s", call.flow, step.name, exc)
            call.note(f"{step.kind} failed ({exc}); on_error → {step.on_error}")
            return step.on_error
        return chosen if chosen is not None else step.next
