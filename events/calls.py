"""The payloads of call events: the one place that says what a SIP worker publishes.

A worker publishes `call.ringing` → `call.answered` → `call.step`* → `call.transferred`* →
`call.ended` for each call, every one keyed by `call_uuid`. The browser reads them live (SSE)
and the call writer (`records/call_writer.py`) turns them into rows. `call.ended` repeats
everything the call record needs (caller, DID, times, legs, recordings), so a call whose
earlier events were lost still gets a complete record.

Models parse with `extra="ignore"`: during a rolling upgrade a newer worker may add a field
that an older writer or browser does not know yet, and that must not make the event unreadable.

`thread.updated` and `callback.created` are published by `records/flow_records.py`, the API
and the call writer; their models here describe what those producers already send.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import PurePosixPath
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from events.bus import AsyncEventBus, Event, EventBus
from ivr.domain import Disposition

CALL_RINGING = "call.ringing"
CALL_ANSWERED = "call.answered"
CALL_STEP = "call.step"
CALL_TRANSFERRED = "call.transferred"
CALL_ENDED = "call.ended"
THREAD_UPDATED = "thread.updated"
CALLBACK_CREATED = "callback.created"


def _relative_path(value: str) -> str:
    """Recording paths are relative to `Settings.recordings_dir`; anything that could escape it
    (absolute, `..`) is refused here rather than when somebody later serves the file."""
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts or "\\" in value or "\x00" in value:
        raise ValueError(f"must be a relative path inside the recordings dir, got {value!r}")
    return value


CallUuid = Annotated[str, Field(min_length=1, max_length=64)]
StoreId = Annotated[int, Field(ge=1)]
Number = Annotated[str, Field(max_length=200)]  # E.164 when readable, else as the trunk sent it
RecordingPath = Annotated[str, Field(max_length=500), AfterValidator(_relative_path)]
LegRole = Literal["caller", "advisor"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- screen-pop context -----------------------------------------------------------------------


class CustomerRef(_Model):
    id: int
    name: str
    first_name: str
    last_name: str = ""


class AdvisorRef(_Model):
    id: int
    name: str
    username: str = ""


class VehicleCtx(_Model):
    id: int
    year: int | None = None
    make: str = ""
    model: str = ""
    vin: str | None = None
    plate: str | None = None
    description: str = ""


class StatusStep(_Model):
    status: str
    at: AwareDatetime
    note: str | None = None


class RepairOrderCtx(_Model):
    id: int
    number: str
    status: str
    status_since: AwareDatetime
    opened_at: AwareDatetime
    promised_at: AwareDatetime | None = None
    vehicle: VehicleCtx | None = None
    advisor: AdvisorRef | None = None
    history: list[StatusStep] = Field(default_factory=list)


class EntryCtx(_Model):
    id: int
    kind: str
    at: AwareDatetime
    body: str
    author: str | None = None


class PurchaseCtx(_Model):
    id: int
    purchased_at: AwareDatetime
    salesperson: str = ""
    condition: str = "new"
    vehicle: VehicleCtx | None = None
    deal: str | None = None


class DeclinedCtx(_Model):
    id: int
    description: str
    repair_order: str
    estimate_cents: int | None = None
    decided_at: AwareDatetime | None = None


class RelationshipCtx(_Model):
    """The customer's whole relationship with the store, whichever department was called."""

    purchases: list[PurchaseCtx] = Field(default_factory=list)  # newest first
    service_visits: int = 0  # closed repair orders
    last_visit_at: AwareDatetime | None = None
    open_repair_orders: int = 0
    declined: list[DeclinedCtx] = Field(default_factory=list)  # newest first
    open_follow_ups: int = 0


class DepartmentRef(_Model):
    id: int | None = None  # None: a store that keeps no department rows (service)
    kind: str = "service"
    name: str = "Service"


class ScreenPop(_Model):
    """What an advisor's screen shows while the phone rings (built by records/screen_pop.py)."""

    unknown_caller: bool = True
    customer: CustomerRef | None = None
    vehicles: list[VehicleCtx] = Field(default_factory=list)
    repair_orders: list[RepairOrderCtx] = Field(default_factory=list)  # open ones, oldest first
    advisor: AdvisorRef | None = None  # the assigned advisor
    recent_entries: list[EntryCtx] = Field(default_factory=list)  # newest first, at most 3
    relationship: RelationshipCtx | None = None  # None for an unknown caller

    @model_validator(mode="after")
    def _unknown_means_no_customer(self) -> ScreenPop:
        if self.unknown_caller != (self.customer is None):
            raise ValueError("unknown_caller must be true exactly when there is no customer")
        return self


# --- call events ------------------------------------------------------------------------------


class CallEvent(_Model):
    """Fields every call event carries. `store_id` is also the Event envelope's: `publish`
    sets both from here, so they cannot disagree."""

    event_type: ClassVar[str]
    call_uuid: CallUuid
    store_id: StoreId
    at: AwareDatetime


class CallRinging(CallEvent, ScreenPop):
    event_type: ClassVar[str] = CALL_RINGING
    direction: Literal["inbound", "outbound"] = "inbound"
    did: Number  # the store number dialled
    caller: Number | None = None  # E.164; None when withheld or unreadable
    caller_raw: Number = ""  # the From user as received, for display and the record
    sip_call_id: str | None = Field(default=None, max_length=300)
    # The advisor who called this number lately (sticky callback: the call goes to them).
    last_contacted: AdvisorRef | None = None
    department: DepartmentRef | None = None  # the department whose number was dialled
    # The record did not answer in time: nobody knows yet who is calling (see CallEnded).
    lookup_failed: bool = False


class CallAnswered(CallEvent):
    event_type: ClassVar[str] = CALL_ANSWERED


class CallStep(CallEvent):
    """One step of the flow, for the live call view. A step marked `sensitive` (card number,
    PIN) never carries what was keyed or heard: the validator drops it even if a producer
    passes it, so it cannot reach Redis, the browser or a log through this model."""

    event_type: ClassVar[str] = CALL_STEP
    flow: str = Field(max_length=100)
    step: str = Field(max_length=100)
    kind: str = Field(default="", max_length=30)  # the step type: say, gather, transfer, ...
    said: str | None = None  # what the IVR said
    digits: str | None = Field(default=None, max_length=64)  # what the caller keyed
    heard: str | None = None  # what the caller said (speech recognition)
    sensitive: bool = False

    @model_validator(mode="before")
    @classmethod
    def _drop_sensitive_input(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("sensitive"):
            return {**data, "digits": None, "heard": None}
        return data


class TransferTarget(_Model):
    user_id: int | None = None  # the advisor's user, when the target is one
    name: str = ""
    contact: str = Field(max_length=200)  # SIP URI or number rung


class CallTransferred(CallEvent):
    """One transfer attempt; `at` is when it was decided (answered / gave up)."""

    event_type: ClassVar[str] = CALL_TRANSFERRED
    target: TransferTarget
    label: str = ""  # "assigned advisor", "group service", ...
    result: Literal["answered", "no_answer", "busy", "failed"]
    started_at: AwareDatetime  # when it started ringing; with the contact, identifies the leg


class LegInfo(_Model):
    role: LegRole
    party: str = Field(max_length=200)
    user_id: int | None = None
    started_at: AwareDatetime
    answered_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None


class RecordingInfo(_Model):
    leg_role: LegRole
    path: RecordingPath
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    duration_s: float = Field(ge=0)
    kind: Literal["leg", "voicemail"] = "leg"
    consent_played: bool = False
    # When recording began: puts the leg's transcript on the call's clock (None: older worker).
    started_at: AwareDatetime | None = None
    cut_short: bool = False  # the recordings disk filled up: the file holds only the start


class UnrecordedInfo(_Model):
    """A leg that was due a recording and went on without one (the worker's disk was full, or
    the recorder failed): the record shows the call unrecorded rather than a broken file."""

    leg_role: LegRole
    kind: Literal["leg", "voicemail"] = "leg"
    reason: Literal["disk_full", "recorder_failed"]
    at: AwareDatetime  # when recording should have started


class CallbackInfo(_Model):
    """What the flow's voicemail step decided; the writer links or creates the task from it."""

    callback_id: int | None = None  # set when the flow already created the task
    owner_id: int | None = None
    due_at: AwareDatetime | None = None
    reason: str = ""


class CallEnded(CallEvent):
    """The complete call record (CDR); `at` is the hangup time."""

    event_type: ClassVar[str] = CALL_ENDED
    disposition: Disposition
    direction: Literal["inbound", "outbound"] = "inbound"
    did: Number
    caller: Number | None = None
    caller_raw: Number = ""
    customer_id: int | None = None
    started_at: AwareDatetime
    answered_at: AwareDatetime | None = None
    flow_path: list[str] = Field(default_factory=list)  # "flow.step" in the order run
    legs: list[LegInfo] = Field(default_factory=list)
    recordings: list[RecordingInfo] = Field(default_factory=list)
    unrecorded: list[UnrecordedInfo] = Field(default_factory=list)
    callback: CallbackInfo | None = None
    department_id: int | None = None  # the department whose number was dialled
    # The caller could not be looked up (the record was unreachable): the call writer matches
    # them by caller ID when it writes the call, so the call lands on their thread.
    lookup_failed: bool = False

    @property
    def ended_at(self) -> datetime:
        return self.at

    @property
    def duration_s(self) -> float:
        return max(0.0, (self.at - self.started_at).total_seconds())


CALL_EVENTS: dict[str, type[CallEvent]] = {
    m.event_type: m for m in (CallRinging, CallAnswered, CallStep, CallTransferred, CallEnded)
}


# --- events other producers already publish ---------------------------------------------------


class ThreadUpdated(_Model):
    customer_id: int | None
    entry_id: int
    kind: str
    mentions: list[int] = Field(default_factory=list)  # notes only
    call_uuid: str | None = None  # call writer only


class CallbackCreated(_Model):
    callback_id: int
    customer_id: int | None
    owner_id: int | None
    phone: str | None = None  # flow and call writer; the API's own event leaves these out
    due_at: AwareDatetime | None = None
    reason: str | None = None
    call_uuid: str | None = None  # call writer only


# --- publishing and reading -------------------------------------------------------------------


def parse_call_event(event: Event) -> CallEvent | None:
    """The typed payload of a call event; None for other event types.

    Raises pydantic.ValidationError for a call event with a bad payload.
    """
    model = CALL_EVENTS.get(event.type)
    if model is None:
        return None
    return model.model_validate({**event.data, "store_id": event.store_id})


def _data(payload: CallEvent) -> dict[str, Any]:
    return payload.model_dump(mode="json")


def publish_call_event(bus: EventBus, payload: CallEvent) -> Event:
    return bus.publish(payload.store_id, payload.event_type, _data(payload))


async def publish_call_event_async(bus: AsyncEventBus, payload: CallEvent) -> Event:
    return await bus.publish(payload.store_id, payload.event_type, _data(payload))
