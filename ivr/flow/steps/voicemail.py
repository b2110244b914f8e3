"""`voicemail`: take a message, so a missed caller always ends up with an owner and a due time.

Records after the prompt, writes a `voicemail` thread entry (recording path, duration), creates
a callback task owned by the assigned advisor (or nobody, for the manager's queue), says goodbye
and hangs up. The due time counts from the next opening when the store is closed.

`write: later` writes nothing during the call (the `records_down` flow: the database is
unreachable): the call ends as a voicemail, and the call writer files the message (on the call's
thread entry, with its recording) and the callback task from `call.ended` once the database is
back, owned by the caller's advisor. A `now` write that fails ends the same way, so the caller
still hears the goodbye and still gets called back.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, model_validator

from ivr.domain import StoreInfo
from ivr.flow.steps.base import Seconds, StepSpec
from ivr.flow.templates import clock, spoken_date
from ivr.hours import Hours

if TYPE_CHECKING:
    from ivr.flow.channel import Recording
    from ivr.flow.engine import Call


class Voicemail(StepSpec):
    waits_for_caller = True
    prompt: str = "Please leave your name, number and a short message after the tone."
    max: Seconds = 120.0
    owner: str = Field(
        default="assigned_advisor", pattern=r"^(assigned_advisor|none|user:[\w.@-]+)$"
    )
    due_in: Seconds = 7200.0
    business_hours: bool = True  # when closed, count `due_in` from the next opening
    reason: str = "Voicemail from {{ customer.name if customer else caller }}"
    goodbye: str | None = "Thank you. We'll call you back soon. Goodbye."
    write: Literal["now", "later"] = "now"
    unspoken: ClassVar[frozenset[str]] = frozenset({"reason"})

    @model_validator(mode="after")
    def _later_decides_nothing(self) -> Voicemail:
        if self.write == "later" and self.owner.startswith("user:"):
            raise ValueError("owner: with write: later the call writer picks the owner")
        return self

    def templates(self) -> list[tuple[str, str]]:
        found = [("prompt", self.prompt), ("reason", self.reason)]
        return found + ([("goodbye", self.goodbye)] if self.goodbye else [])


def due_time(store: StoreInfo, at: datetime, seconds: float, business_hours: bool) -> datetime:
    """When a callback is due: the store's hours decide (ivr.hours.Hours.due_after)."""
    if not business_hours:
        return at + timedelta(seconds=seconds)
    return Hours.of(store).due_after(at, seconds)


async def handle(spec: Voicemail, call: Call) -> str | None:
    from ivr.flow.engine import Outcome

    await call.say(call.render(spec.prompt))
    recording = await call.record(max_seconds=spec.max, beep=True)
    if spec.write == "later":
        call.note("message kept: the call writer files it and its callback task")
        detail = "filed when the call is written"
    else:
        try:
            detail = await _file_now(spec, call, recording)
        except Exception as exc:  # noqa: BLE001 - the caller left a message: end it as one
            call.note(f"could not file the message now ({exc}): the call writer files it")
            detail = "filed when the call is written"
    call.finish(Outcome("voicemail", detail=detail))
    if spec.goodbye and not recording.hung_up:
        await call.say(call.render(spec.goodbye))
    await call.hangup()
    return None


async def _file_now(spec: Voicemail, call: Call, recording: Recording) -> str:
    """The thread entry and the callback task, written by the flow; the outcome's detail."""
    owner = None
    if spec.owner == "assigned_advisor":
        owner = call.advisor
    elif spec.owner.startswith("user:"):
        owner = await call.records.user(call.store.id, spec.owner.removeprefix("user:"))
    now = call.now()
    due = due_time(call.store, now, spec.due_in, spec.business_hours)
    reason = call.render(spec.reason)
    customer_id = call.customer.id if call.customer else None
    data = {
        "recording": recording.path,
        "duration": recording.duration,
        "caller": call.caller,
        "ro_number": call.ro.number if call.ro else None,
    }
    await call.records.add_thread_entry(
        call.store.id, customer_id, "voicemail", f"{reason} ({recording.duration:.0f}s)", data
    )
    owner_name = owner.name if owner else "nobody"
    if call.caller:
        await call.records.create_callback(
            call.store.id, customer_id, call.caller, owner.id if owner else None, due, reason
        )
        when = f"{spoken_date(due, now)} at {clock(due.astimezone(now.tzinfo))}"
        call.note(f"callback for {owner_name}, due {when}")
    else:
        call.note("caller ID withheld: no callback task")
    return f"callback owner: {owner_name}"
