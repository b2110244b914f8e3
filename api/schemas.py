"""Request and response bodies of the HTTP API.

Inputs forbid unknown fields and bound every string and number to what the database column
holds, so bad input is a 422 naming the field instead of a database error.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    computed_field,
    field_validator,
)

from ivr.domain import Role
from ivr.phone import to_e164

MAX_ID = 2**31 - 1
T = TypeVar("T")


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _sane_time(value: datetime) -> datetime:
    # Out-of-range years overflow when converted to UTC and make no sense for a service lane.
    if not 1970 <= value.year <= 2200:
        raise ValueError("must be between the years 1970 and 2200")
    return value.astimezone(UTC)


FUTURE_SKEW = timedelta(minutes=5)  # the DMS's clock may run this far ahead of ours


def _not_future(value: datetime) -> datetime:
    # A DMS reports what has happened: a later time is a wrong clock or a forged request.
    if value > datetime.now(UTC) + FUTURE_SKEW:
        raise ValueError(
            f"must not be more than {FUTURE_SKEW.seconds // 60} minutes ahead of the server's "
            "clock (a DMS reports what has happened)"
        )
    return value


def _phone(value: str) -> str:
    return to_e164(value)  # BadPhoneNumber is a ValueError: pydantic reports it on the field


_Clean = AfterValidator(_no_nul)
Label = Annotated[str, Field(max_length=100), _Clean]
Name = Annotated[str, Field(min_length=1, max_length=200), _Clean]
Email = Annotated[str, Field(max_length=200), _Clean]
StatusName = Annotated[str, Field(min_length=1, max_length=50), _Clean]
Remark = Annotated[str, Field(max_length=2000), _Clean]
NoteBody = Annotated[str, Field(min_length=1, max_length=10_000), _Clean]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
UtcTime = Annotated[AwareDatetime, AfterValidator(_sane_time)]
HappenedAt = Annotated[UtcTime, AfterValidator(_not_future)]  # webhook times
Phone = Annotated[str, Field(max_length=40), _Clean, AfterValidator(_phone)]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    """Offset paging; `next_offset` is null on the last page."""

    items: list[T]
    limit: int
    offset: int
    next_offset: int | None


class CursorPage(BaseModel, Generic[T]):
    """Cursor paging for lists that grow at the top (threads); pass `next_cursor` back."""

    items: list[T]
    next_cursor: str | None


# --- stores, users, tokens ----------------------------------------------------------------


class StoreOut(Out):
    id: int
    dms_id: str
    name: str
    timezone: str
    custom_statuses: list[str]


class UserRef(Out):
    id: int
    username: str
    name: str


class UserOut(Out):
    id: int
    username: str
    name: str
    email: str | None
    role: str
    phone: str | None
    active: bool
    stores: list[StoreOut]


class UserIn(In):
    username: Annotated[
        str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
    ]
    name: Name
    role: Role
    store_ids: list[Id] = Field(default_factory=list, max_length=1000)
    email: Email | None = None
    phone: Phone | None = None


class TokenIn(In):
    name: Label = ""
    expires_in_days: int | None = Field(
        default=None, ge=1, le=3650, description="Lifetime; default the api_token_days setting."
    )


class TokenOut(Out):
    id: int
    user_id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime


class NewTokenOut(TokenOut):
    token: str = Field(description="The secret; shown this once, only its sha256 is kept.")


# --- customers, vehicles, repair orders ---------------------------------------------------


class PhoneOut(Out):
    e164: str
    label: str


class VehicleOut(Out):
    id: int
    year: int | None
    make: str
    model: str
    vin: str | None
    plate: str | None


class StatusEventOut(Out):
    status: str
    at: datetime
    note: str | None
    source: str


class RepairOrderOut(Out):
    id: int
    store_id: int
    number: str
    customer_id: int
    status: str
    opened_at: datetime
    promised_at: datetime | None
    closed_at: datetime | None
    concern: str | None
    vehicle: VehicleOut | None
    advisor: UserRef | None
    history: list[StatusEventOut] = Field(validation_alias="events")


class CustomerSummary(Out):
    id: int
    store_id: int
    first_name: str
    last_name: str
    name: str
    phones: list[PhoneOut]
    advisor: UserRef | None


class CustomerOut(CustomerSummary):
    email: str | None
    vehicles: list[VehicleOut]
    open_repair_orders: list[RepairOrderOut]


class StatusChangeIn(In):
    status: StatusName
    at: HappenedAt | None = Field(
        default=None, description="When the DMS changed it (not in the future); default now."
    )
    note: Remark | None = None


class StatusChangeOut(Out):
    repair_order: RepairOrderOut
    previous_status: str
    duplicate: bool = Field(description="True when this exact change was already recorded.")


# --- thread, notes, mentions --------------------------------------------------------------


class ThreadEntryOut(Out):
    id: int
    store_id: int
    customer_id: int | None
    kind: str
    at: datetime
    author: UserRef | None
    body: str
    data: dict[str, Any]
    call_id: int | None
    mentions: list[UserRef]

    @field_validator("mentions", mode="before")
    @classmethod
    def _mentioned_users(cls, value: Any) -> Any:
        # Mention rows in, the users they point at out.
        return [getattr(m, "user", m) for m in value]


class NoteIn(In):
    body: NoteBody


class MentionOut(Out):
    id: int
    seen_at: datetime | None
    entry: ThreadEntryOut


# --- callbacks ----------------------------------------------------------------------------


class CallbackOut(Out):
    id: int
    store_id: int
    customer_id: int | None
    phone: str
    owner: UserRef | None
    reason: str
    due_at: datetime
    created_at: datetime
    done_at: datetime | None
    done_by_id: int | None
    call_id: int | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def overdue(self) -> bool:
        return self.done_at is None and self.due_at < datetime.now(UTC)


class CallbackIn(In):
    phone: Phone
    customer_id: Id | None = None
    store_id: Id | None = Field(
        default=None, description="Needed only without customer_id and with several stores."
    )
    owner_id: Id | None = Field(default=None, description="Defaults to the caller.")
    reason: Remark = ""
    due_at: UtcTime | None = Field(default=None, description="Defaults to now.")


class HealthOut(BaseModel):
    status: str
    database: str
    redis: str


# --- line items and follow-ups (records/followups/) -------------------------------------

LineStatusName = Annotated[str, Field(pattern=r"^(recommended|approved|declined|done)$")]
Description = Annotated[str, Field(min_length=1, max_length=2000), _Clean]
Cents = Annotated[int, Field(ge=0, le=MAX_ID)]
DmsKey = Annotated[str, Field(min_length=1, max_length=64), _Clean]
TriggerName = Annotated[str, Field(min_length=1, max_length=80), _Clean]


class LineItemOut(Out):
    id: int
    repair_order_id: int
    dms_id: str | None
    description: str
    estimate_cents: int | None
    status: str
    decided_at: datetime | None


class LineItemIn(In):
    description: Description
    status: LineStatusName = "recommended"
    estimate_cents: Cents | None = None
    dms_id: DmsKey | None = Field(default=None, description="The DMS's line (operation) code.")
    decided_at: UtcTime | None = Field(default=None, description="Default now, when decided.")


class LineItemUpdate(In):
    """Only the fields given change; a status change to declined creates the follow-up."""

    status: LineStatusName | None = None
    description: Description | None = None
    estimate_cents: Cents | None = None
    decided_at: UtcTime | None = None


class DmsLineItem(In):
    """A line as the DMS sends it: matched by `dms_id` on the RO, created when new."""

    dms_id: DmsKey
    status: LineStatusName
    description: Description | None = Field(default=None, description="Required for a new line.")
    estimate_cents: Cents | None = None
    decided_at: HappenedAt | None = None


class DmsEventIn(In):
    event: TriggerName | None = Field(
        default=None,
        description="A DMS event on the RO (part_arrived, ...): promises waiting for it are due.",
    )
    at: HappenedAt | None = Field(
        default=None, description="When it happened (not in the future); default now."
    )
    line_items: list[DmsLineItem] = Field(default_factory=list, max_length=200)


class FollowUpOut(Out):
    id: int
    store_id: int
    department_id: int | None
    customer_id: int
    repair_order_id: int | None
    line_item_id: int | None
    kind: str
    text: str
    owner: UserRef | None
    created_by_id: int | None
    trigger: str | None
    triggered_at: datetime | None
    due_at: datetime | None = Field(description="null while a promise waits for its event")
    created_at: datetime
    attempts: int
    outcome: str | None
    done_at: datetime | None
    done_by_id: int | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def overdue(self) -> bool:
        return self.done_at is None and self.due_at is not None and self.due_at < datetime.now(UTC)


class DmsEventOut(Out):
    line_items: list[LineItemOut]
    triggered: list[FollowUpOut] = Field(description="Promises that this event made due.")
    follow_ups_created: list[FollowUpOut]


class PromiseIn(In):
    """A promise on a repair order: due at a time, or when a DMS event comes (one of them)."""

    repair_order_id: Id
    text: Remark = Field(min_length=1)
    due_at: UtcTime | None = None
    trigger: TriggerName | None = Field(
        default=None, description="part_arrived-style event name, or status:<status name>."
    )
    owner_id: Id | None = Field(default=None, description="Defaults to you.")


class OutcomeIn(In):
    outcome: Annotated[str, Field(pattern=r"^(booked|not_interested|no_answer|done)$")]
    note: Remark | None = None


class OutcomeOut(Out):
    follow_up: FollowUpOut
    entry: ThreadEntryOut
    closed: bool


class DefectorOut(Out):
    customer: CustomerSummary
    last_visit_at: datetime
    last_repair_order_id: int


# --- sales data and the whole relationship (issue 8: departments) -------------------------------


class PurchaseOut(Out):
    id: int
    store_id: int
    customer_id: int
    dms_id: str | None = Field(description="The DMS deal number.")
    purchased_at: datetime
    condition: str
    vehicle: VehicleOut | None
    salesperson: UserRef | None
    salesperson_name: str


class PurchaseIn(In):
    """A vehicle the customer bought. The vehicle is one of theirs (`vehicle_id`) or a VIN
    (found in the store, else added to the customer with `year`, `make`, `model`); the
    salesperson is a user of the store or just a name. Same `dms_id` again: updated."""

    dms_id: DmsKey | None = Field(default=None, description="The DMS deal number.")
    purchased_at: UtcTime
    vehicle_id: Id | None = None
    vin: Annotated[str, Field(pattern=r"^[A-HJ-NPR-Z0-9]{17}$")] | None = None
    year: Annotated[int, Field(ge=1900, le=2100)] | None = None
    make: Annotated[str, Field(max_length=50), _Clean] = ""
    model: Annotated[str, Field(max_length=50), _Clean] = ""
    salesperson_id: Id | None = None
    salesperson_name: Annotated[str, Field(max_length=200), _Clean] = ""
    condition: Annotated[str, Field(pattern=r"^(new|used|cpo)$")] = "new"


# --- integrations (webhook credentials) -------------------------------------------------------


class IntegrationIn(In):
    store_id: Id
    name: Label = Field(min_length=1, description="What sends with it, e.g. 'CDK status feed'.")


class IntegrationOut(Out):
    id: int
    store_id: int
    name: str
    key_id: str = Field(description="Sent as X-Driveline-Key with each signed request.")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewIntegrationOut(IntegrationOut):
    secret: str = Field(description="Signs the webhook requests; shown only this once.")
