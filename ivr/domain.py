"""The domain as the flow engine and the screen-pop see it: plain, immutable values.

These are read views of the shared record. The SQL adapter (`records/`) builds them; the flow
engine, templates and events only read them, so the core never touches SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

# The life of a repair order in a service lane, in order. Stores may add their own statuses
# (Store.custom_statuses); those sort after the standard ones unless they name a position.
READY_FOR_PICKUP = "Ready for Pickup"  # the status that makes the proactive pickup call
STANDARD_STATUSES: tuple[str, ...] = (
    "Waiting on Dispatch",
    "In Shop",
    "Tech Working",
    READY_FOR_PICKUP,
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


class AuditAction(StrEnum):
    """What an audit-log row (records.models.AuditLog) records."""

    customer_export = "customer.export"
    customer_erase = "customer.erase"
    retention = "retention"  # a retention run that deleted (or would have deleted) recordings


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


def parse_spans(spans: Any) -> tuple[tuple[time, time], ...]:
    """`[["08:00", "12:00"], ...]` → time pairs, for one day; raises ValueError."""
    return tuple(parse_hours({"mon": spans}).get("mon", [])) if spans else ()


@dataclass(frozen=True)
class Closure:
    """A holiday or closure of the whole store; `hours` empty: closed all day, else the hours
    it keeps that day (Christmas Eve 8 to 12)."""

    date: date
    name: str
    hours: tuple[tuple[time, time], ...] = ()


def parse_closures(items: Any) -> tuple[Closure, ...]:
    """Validate `Store.closures` (`[{"date": "2026-12-25", "name": ..., "hours": [...]}]`);
    raises ValueError naming the bad entry."""
    if items is None:
        return ()
    if not isinstance(items, list):
        raise ValueError("closures: must be a list of {date, name, hours?}")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "date" not in item:
            raise ValueError(f"closures[{i}]: needs a date (YYYY-MM-DD)")
        try:
            day = date.fromisoformat(str(item["date"]))
        except ValueError:
            raise ValueError(f"closures[{i}].date: {item['date']!r} is not YYYY-MM-DD") from None
        try:
            spans = parse_spans(item.get("hours"))
        except ValueError as exc:
            raise ValueError(f"closures[{i}].hours: {str(exc).split(': ', 1)[-1]}") from None
        out.append(Closure(date=day, name=str(item.get("name") or "a holiday"), hours=spans))
    return tuple(out)


@dataclass(frozen=True)
class DepartmentInfo:
    """One department of a store: the number a caller dialled rings it (StoreNumber)."""

    id: int
    kind: str  # DepartmentKind
    name: str
    hours: dict[str, list[list[str]]] | None = None  # None: the store's hours
    flow: str = "main"


@dataclass(frozen=True)
class StoreInfo:
    id: int
    name: str
    timezone: str
    hours: dict[str, list[list[str]]] = field(default_factory=dict)
    dids: tuple[str, ...] = ()
    recording_consent: bool = True
    statuses: tuple[str, ...] = STANDARD_STATUSES
    address: str | None = None
    closures: tuple[Closure, ...] = ()
    departments: tuple[DepartmentInfo, ...] = ()
    # DID (E.164) → department kind, for numbers that ring a department; the rest ring service.
    number_departments: dict[str, str] = field(default_factory=dict)

    def department(self, kind: str) -> DepartmentInfo | None:
        return next((d for d in self.departments if d.kind == kind), None)

    def department_for_did(self, did: str | None) -> DepartmentInfo | None:
        """The department a dialled number rings: its own, else service (None when the store
        keeps no service department row: then it is the store itself, as before departments)."""
        kind = self.number_departments.get(did or "", DepartmentKind.service.value)
        return self.department(kind)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.tz)

    def is_open(self, at: datetime) -> bool:
        """Opening hours are in the store's own time zone, whatever zone `at` is in; a closure
        that day replaces them."""
        from ivr.hours import Hours  # ivr.hours builds on these views

        return Hours.of(self).open_at(at)


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
class PurchaseInfo:
    """A vehicle the customer bought here (sales), with who sold it."""

    id: int
    purchased_at: datetime
    salesperson: str  # the user's name, else as the DMS named them
    condition: str = "new"
    vehicle: VehicleInfo | None = None
    deal: str | None = None  # the DMS deal number
    salesperson_id: int | None = None


@dataclass(frozen=True)
class DeclinedItemInfo:
    """A repair the customer was offered on an RO and declined: a reason to call them."""

    id: int
    description: str
    repair_order: str  # its RO number
    estimate_cents: int | None = None
    decided_at: datetime | None = None


@dataclass(frozen=True)
class RelationshipInfo:
    """The whole relationship with the store, whichever department is asking: what they
    bought, how often they come for service, what is open, declined and owed to them."""

    purchases: tuple[PurchaseInfo, ...] = ()  # newest first
    service_visits: int = 0  # closed repair orders
    last_visit_at: datetime | None = None
    open_repair_orders: int = 0
    declined: tuple[DeclinedItemInfo, ...] = ()  # newest first
    open_follow_ups: int = 0


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
    relationship: RelationshipInfo = field(default_factory=RelationshipInfo)

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


# --- how a call ended ---------------------------------------------------------------------


class Disposition(StrEnum):
    handled_by_ivr = "handled_by_ivr"  # the flow finished the call (status read, pickup, ...)
    transferred = "transferred"  # bridged to a person
    voicemail = "voicemail"  # left a message
    abandoned = "abandoned"  # answered, caller hung up before being helped
    missed = "missed"  # never answered, or nobody picked up a transfer and no voicemail
    failed = "failed"  # our error (flow bug, media never came up)


# Dispositions after which somebody owes the caller a call back.
NEEDS_CALLBACK = frozenset({Disposition.missed, Disposition.abandoned, Disposition.voicemail})


def disposition_for(outcome_kind: str | None, *, answered: bool) -> Disposition:
    """Map the flow engine's `Outcome.kind` to a disposition (None: the flow never ran)."""
    if not answered or outcome_kind is None:
        return Disposition.missed
    return {
        "transfer": Disposition.transferred,
        "voicemail": Disposition.voicemail,
        "hangup": Disposition.handled_by_ivr,
        "caller_hung_up": Disposition.abandoned,
    }.get(outcome_kind, Disposition.failed)
