"""The domain as the flow engine and the screen-pop see it: plain, immutable values.

These are read views of the shared record. The SQL adapter (`records/`) builds them; the flow
engine, templates and events only read them, so the core never touches SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo

# The life of a repair order in a service lane, in order. Stores may add their own statuses
# (Store.custom_statuses); those sort after the standard ones unless they name a position.
STANDARD_STATUSES: tuple[str, ...] = (
    "Waiting on Dispatch",
    "In Shop",
    "Tech Working",
    "Ready for Pickup",
)
CLOSED_STATUSES: tuple[str, ...] = ("Picked Up", "Closed")

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Role(StrEnum):
    advisor = "advisor"
    manager = "manager"
    admin = "admin"


class ThreadKind(StrEnum):
    call = "call"
    voicemail = "voicemail"
    note = "note"
    status_change = "status_change"
    pickup = "pickup"
    audit = "audit"
    purchase = "purchase"  # a vehicle bought here (sales data)
    follow_up = "follow_up"  # a follow-up worked: its outcome


class DepartmentKind(StrEnum):
    service = "service"
    sales = "sales"
    parts = "parts"
    bdc = "bdc"  # business development center: the store's outbound and appointment desk


class LineStatus(StrEnum):
    """A recommended repair on an RO, as the DMS reports it."""

    recommended = "recommended"
    approved = "approved"
    declined = "declined"
    done = "done"


class FollowUpKind(StrEnum):
    declined_service = "declined_service"
    promise = "promise"
    defector = "defector"  # a customer whose last visit is older than the store's window


class FollowUpOutcome(StrEnum):
    booked = "booked"
    not_interested = "not_interested"
    no_answer = "no_answer"  # stays open, due again later
    done = "done"  # a promise kept


def parse_hours(hours: dict[str, list[list[str]]]) -> dict[str, list[tuple[time, time]]]:
    """Validate `{"mon": [["07:00", "18:00"]], ...}`; raises ValueError naming the bad day."""
    parsed: dict[str, list[tuple[time, time]]] = {}
    for day, spans in hours.items():
        if day not in WEEKDAYS:
            raise ValueError(f"hours: unknown day {day!r} (use {', '.join(WEEKDAYS)})")
        parsed[day] = []
        for span in spans:
            if len(span) != 2:
                raise ValueError(f"hours.{day}: each span is [open, close]")
            try:
                opens, closes = time.fromisoformat(span[0]), time.fromisoformat(span[1])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"hours.{day}: {exc}") from None
            if closes <= opens:
                raise ValueError(f"hours.{day}: closes {span[1]} before it opens {span[0]}")
            parsed[day].append((opens, closes))
    return parsed


@dataclass(frozen=True)
class StoreInfo:
    id: int
    name: str
    timezone: str
    hours: dict[str, list[list[str]]] = field(default_factory=dict)
    dids: tuple[str, ...] = ()
    recording_consent: bool = True
    statuses: tuple[str, ...] = STANDARD_STATUSES

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.tz)

    def is_open(self, at: datetime) -> bool:
        """Opening hours are in the store's own time zone, whatever zone `at` is in."""
        local = self.local(at)
        spans = parse_hours(self.hours).get(WEEKDAYS[local.weekday()], [])
        return any(opens <= local.time() < closes for opens, closes in spans)


@dataclass(frozen=True)
class AdvisorInfo:
    id: int
    name: str
    username: str
    contact: str | None = None  # SIP URI or E.164 number the worker rings on transfer
    groups: tuple[str, ...] = ()

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name else ""


@dataclass(frozen=True)
class VehicleInfo:
    id: int
    year: int | None
    make: str
    model: str
    vin: str | None = None
    plate: str | None = None

    @property
    def description(self) -> str:
        return " ".join(str(p) for p in (self.year, self.make, self.model) if p)


@dataclass(frozen=True)
class StatusEvent:
    status: str
    at: datetime
    note: str | None = None


@dataclass(frozen=True)
class RepairOrderInfo:
    id: int
    number: str
    status: str
    opened_at: datetime
    promised_at: datetime | None = None
    vehicle: VehicleInfo | None = None
    advisor: AdvisorInfo | None = None
    history: tuple[StatusEvent, ...] = ()
    customer_id: int | None = None

    @property
    def is_open(self) -> bool:
        return self.status not in CLOSED_STATUSES

    @property
    def status_since(self) -> datetime:
        return self.history[-1].at if self.history else self.opened_at


@dataclass(frozen=True)
class ThreadEntryInfo:
    id: int
    kind: str
    at: datetime
    body: str
    author: str | None = None


@dataclass(frozen=True)
class CustomerInfo:
    id: int
    first_name: str
    last_name: str
    phones: tuple[str, ...] = ()
    vehicles: tuple[VehicleInfo, ...] = ()
    open_repair_orders: tuple[RepairOrderInfo, ...] = ()
    advisor: AdvisorInfo | None = None
    recent_entries: tuple[ThreadEntryInfo, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()
