"""Import a DMS export (CSV or JSON) into the shared record: `driveline import FILE`.

The DMS is the record of truth; this keeps Driveline's copy in step. Rows are upserted by their
DMS keys, so running the same file twice changes nothing.

Row format: one flat row per thing, with a `type` field. A CSV file has one header with the
union of the columns (cells a row's type does not use stay empty); a JSON file is a list of
objects, or `{"rows": [...]}`. Field names are case-insensitive.

    type          key                 other fields
    store         store               name*, timezone, dids, hours, recording_consent,
                                      custom_statuses, address, closures, retention_days
    advisor       id (user DMS id)    username*, name*, store, role, email, phone, sip_contact,
                                      groups, active
    customer      store, id           first_name, last_name, email, advisor, phone, home_phone,
                                      work_phone
    vehicle       store, id           customer*, year, make, model, vin, plate
    repair_order  store, number       customer*, status*, vehicle, advisor, opened_at,
                                      promised_at, closed_at, concern, status_at
    department    store, kind         name, hours, flow, numbers
    purchase      store, id (deal)    customer*, purchased_at*, vehicle, vin, year, make, model,
                                      salesperson, condition
    line_item     store, repair_order, description*, status, estimate, decided_at
                  id (line code)

    * required when the row creates the thing.

- `store` on every other row is the store's DMS id; `customer`, `vehicle` and `advisor` refer to
  the DMS ids of rows of those types (in this file or imported before). The file may list rows
  in any order: stores are applied first, then advisors, customers, vehicles, repair orders.
- Lists (`dids`, `custom_statuses`, `groups`, an advisor's `store`) are `;`-separated in CSV,
  or JSON arrays. An advisor row adds store scopes and never removes one.
- `hours`: `mon-fri 07:00-18:00; sat 08:00-14:00` (several spans: `mon 07:00-12:00,13:00-17:00`)
  or the JSON object `{"mon": [["07:00", "18:00"]], ...}`; a day not named is closed.
- Phones and DIDs in any format (`(555) 201-0001`, `555.201.0001`, `+1 555 201 0001`) are
  stored as E.164. A customer row's phone columns are the customer's whole list of numbers.
- `role` is `advisor` (default) or `manager`; admins are made with `driveline users`, never by
  a DMS file. New advisors join the `service` ring group unless `groups` says otherwise.
- Times are ISO 8601 (`2026-11-25T14:30`, `2026-11-25 14:30-05:00`) or `11/25/2026 2:30 PM`;
  a time without an offset is in the store's time zone.
- `status` is a standard status, `Picked Up`/`Closed`, or one of the store's custom statuses.
  A new RO starts with a status event (source `import`) at `status_at`, else now. A changed
  status is a status change like the webhook's (usecases/status.py): status event, thread
  entry, promises waiting for it, the pickup call if the store opted in; an unchanged status
  (or the same change imported again) does nothing. A closed status without `closed_at`
  closes the RO now.
- An empty cell (or JSON null) clears an optional field; a field absent from a JSON object is
  left as it is.

Each row is applied in its own savepoint: a bad row is reported as `row N: field: reason` and
skipped, good rows are kept. Row N is the line of the CSV file (the header is row 1), or the
1-based position in the JSON list.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from events.bus import EventBus
from ivr.domain import (
    CLOSED_STATUSES,
    STANDARD_STATUSES,
    DepartmentKind,
    LineStatus,
    Role,
    parse_closures,
    parse_hours,
)
from ivr.phone import BadPhoneNumber, to_e164
from ivr.policies import check_retention_days
from records import followups, queries, sales
from records.db import session_factory, transaction
from records.models import (
    Customer,
    Department,
    PhoneNumber,
    RepairOrder,
    StatusEventRow,
    Store,
    StoreNumber,
    User,
    Vehicle,
    VehiclePurchase,
    utcnow,
)
from usecases import status as status_usecase
from usecases.announce import Announcements

ANNOUNCEMENTS = "driveline.import.announcements"  # session.info key: the current row's

TYPES: tuple[str, ...] = (
    "store",
    "department",
    "advisor",
    "customer",
    "vehicle",
    "repair_order",
    "line_item",
    "purchase",
)
OUTCOMES: tuple[str, ...] = ("created", "updated", "unchanged", "failed")
PHONE_FIELDS: dict[str, str] = {"phone": "mobile", "home_phone": "home", "work_phone": "work"}
FIELDS: dict[str, frozenset[str]] = {
    "store": frozenset(
        {"store", "name", "timezone", "dids", "hours", "recording_consent", "custom_statuses"}
    ),
    "advisor": frozenset(
        {
            "id",
            "store",
            "username",
            "name",
            "role",
            "email",
            "phone",
            "sip_contact",
            "groups",
            "active",
            "department",
        }
    ),
    "customer": frozenset(
        {"store", "id", "first_name", "last_name", "email", "advisor", *PHONE_FIELDS}
    ),
    "vehicle": frozenset({"store", "id", "customer", "year", "make", "model", "vin", "plate"}),
    "repair_order": frozenset(
        {
            "store",
            "number",
            "customer",
            "status",
            "vehicle",
            "advisor",
            "opened_at",
            "promised_at",
            "closed_at",
            "concern",
            "status_at",
        }
    ),
    "line_item": frozenset(
        {"store", "repair_order", "id", "description", "status", "estimate", "decided_at"}
    ),
}
# Column sizes in records.models, checked up front so both databases reject the same rows.
MAX_LENGTH: dict[str, int] = {
    "store": 64,
    "id": 64,
    "customer": 64,
    "vehicle": 64,
    "advisor": 64,
    "timezone": 64,
    "name": 200,
    "username": 64,
    "email": 200,
    "sip_contact": 200,
    "first_name": 100,
    "last_name": 100,
    "make": 50,
    "model": 50,
    "plate": 16,
    "number": 32,
    "repair_order": 32,
    "status": 50,
}
_US_TIME_FORMATS = ("%m/%d/%Y %I:%M %p", "%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y")
_VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")


class ImportFileError(Exception):
    """The file as a whole cannot be read (not CSV/JSON, no `type` column, bad JSON)."""


class RowError(Exception):
    """One row is wrong; `field` names the culprit so the message points at the cell."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass
class ImportReport:
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # "row 7: phone: not a phone number: 'abc'"

    def add(self, kind: str, outcome: str) -> None:
        self.counts.setdefault(kind, Counter())[outcome] += 1

    @property
    def failed(self) -> int:
        return sum(c["failed"] for c in self.counts.values())

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def summary_lines(self) -> list[str]:
        """One line per type: `customer  created 3  updated 1  unchanged 0  failed 0`."""
        kinds = [t for t in TYPES if t in self.counts] + [t for t in self.counts if t not in TYPES]
        return [
            f"{kind:<13}" + "  ".join(f"{o} {self.counts[kind][o]}" for o in OUTCOMES)
            for kind in kinds
        ]


# --- reading files ----------------------------------------------------------------------------


def read_rows(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """(row number, fields) pairs from a CSV or JSON file; field names lower-cased."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # Excel writes a BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFileError(f"{path}: {exc}") from None
    is_json = path.suffix.lower() == ".json" or (
        path.suffix.lower() != ".csv" and text.lstrip()[:1] in ("[", "{")
    )
    return _json_rows(text, path) if is_json else _csv_rows(text, path)


def _csv_rows(text: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(text.splitlines(keepends=True))
    if reader.fieldnames is None:
        raise ImportFileError(f"{path}: empty file")
    reader.fieldnames = [(name or "").strip().lower() for name in reader.fieldnames]
    if "type" not in reader.fieldnames:
        raise ImportFileError(f"{path}: the header has no 'type' column")
    rows = []
    try:
        for record in reader:
            rows.append((reader.line_num, record))
    except csv.Error as exc:
        raise ImportFileError(f"{path}: line {reader.line_num}: {exc}") from None
    return rows


def _json_rows(text: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFileError(f"{path}: not valid JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("rows"), list):
        data = data["rows"]
    if not isinstance(data, list):
        raise ImportFileError(f'{path}: expected a list of rows or {{"rows": [...]}}')
    rows: list[tuple[int, dict[str, Any]]] = []
    for n, item in enumerate(data, start=1):
        if isinstance(item, dict):
            rows.append((n, {str(k).strip().lower(): v for k, v in item.items()}))
        else:
            rows.append((n, {"__not_an_object__": item}))
    return rows


# --- reading one row's fields -----------------------------------------------------------------


class Row:
    """Typed access to one row's fields; remembers which fields were read."""

    def __init__(self, kind: str, fields: dict[Any, Any], region: str) -> None:
        self.kind = kind
        self.fields = fields
        self.region = region

    def check_fields(self) -> None:
        if None in self.fields:  # csv.DictReader puts surplus cells under None
            raise RowError("row", "more cells than the header has columns")
        if "__not_an_object__" in self.fields:
            raise RowError("row", "not an object")
        allowed = FIELDS[self.kind] | {"type"}
        for name, value in self.fields.items():
            if name not in allowed and not _blank(value):
                raise RowError(str(name), f"not a field of a {self.kind} row")

    def has(self, name: str) -> bool:
        return name in self.fields

    def text(self, name: str) -> str | None:
        value = self.fields.get(name)
        if _blank(value):
            return None
        if isinstance(value, (dict, list)):
            raise RowError(name, "expected text")
        text = str(value).strip()
        limit = MAX_LENGTH.get(name)
        if limit is not None and len(text) > limit:
            # PostgreSQL would refuse it and SQLite would not; refuse it the same way on both.
            raise RowError(name, f"longer than {limit} characters")
        return text

    def required(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise RowError(name, "required")
        return value

    def items(self, name: str) -> list[str]:
        value = self.fields.get(name)
        if _blank(value):
            return []
        if isinstance(value, list):
            return [str(v).strip() for v in value if not _blank(v)]
        return [part.strip() for part in str(value).split(";") if part.strip()]

    def flag(self, name: str) -> bool | None:
        value = self.fields.get(name)
        if _blank(value) or isinstance(value, bool):
            return None if _blank(value) else bool(value)
        word = str(value).strip().lower()
        if word in ("1", "true", "yes", "y", "t"):
            return True
        if word in ("0", "false", "no", "n", "f"):
            return False
        raise RowError(name, f"expected true or false, got {value!r}")

    def phone(self, name: str) -> str | None:
        raw = self.text(name)
        return None if raw is None else _e164(name, raw, self.region)

    def when(self, name: str, tz: ZoneInfo) -> datetime | None:
        raw = self.text(name)
        if raw is None:
            return None
        parsed = _parse_time(raw)
        if parsed is None:
            raise RowError(name, f"not a date and time: {raw!r} (use 2026-11-25T14:30)")
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _e164(name: str, raw: str, region: str) -> str:
    try:
        return to_e164(raw, region)
    except BadPhoneNumber as exc:
        raise RowError(name, str(exc).split(" (", 1)[0]) from None


def _parse_time(raw: str) -> datetime | None:
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        pass
    for fmt in _US_TIME_FORMATS:
        try:
            return datetime.strptime(raw.upper(), fmt)
        except ValueError:
            continue
    return None


def parse_hours_text(value: Any) -> dict[str, list[list[str]]]:
    """`mon-fri 07:00-18:00; sat 08:00-14:00` (or the JSON form) → Store.hours."""
    if isinstance(value, dict):
        hours = {str(k).lower(): v for k, v in value.items()}
    elif str(value).strip().startswith("{"):
        try:
            hours = json.loads(str(value))
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
    else:
        hours = {}
        days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        for part in str(value).split(";"):
            if not part.strip():
                continue
            match = re.fullmatch(r"\s*([a-z]{3})(?:\s*-\s*([a-z]{3}))?\s+(.+?)\s*", part.lower())
            if not match or match[1] not in days or (match[2] and match[2] not in days):
                raise ValueError(f"cannot read {part.strip()!r} (e.g. 'mon-fri 07:00-18:00')")
            first, last = days.index(match[1]), days.index(match[2] or match[1])
            if last < first:
                raise ValueError(f"{match[1]}-{match[2]}: days run backwards")
            spans = []
            for span in match[3].split(","):
                times = [t.strip() for t in span.split("-")]
                if len(times) != 2 or not all(re.fullmatch(r"\d{1,2}:\d{2}", t) for t in times):
                    raise ValueError(f"{span.strip()!r}: expected OPEN-CLOSE like 07:00-18:00")
                spans.append([t.zfill(5) for t in times])
            for day in days[first : last + 1]:
                hours[day] = [list(s) for s in spans]
    if not isinstance(hours, dict):
        raise ValueError('expected an object like {"mon": [["07:00", "18:00"]]}')
    parse_hours(hours)  # validates; raises ValueError naming the day
    return {day: [[str(t) for t in span] for span in spans] for day, spans in hours.items()}


# --- applying rows ----------------------------------------------------------------------------


class Changes:
    """Sets attributes and remembers whether anything actually changed (for the counts)."""

    def __init__(self) -> None:
        self.changed = False

    def set(self, obj: Any, attr: str, value: Any) -> None:
        if getattr(obj, attr) != value:
            setattr(obj, attr, value)
            self.changed = True


def _store(session: Session, row: Row) -> Store:
    dms_id = row.required("store")
    store = session.scalars(select(Store).where(Store.dms_id == dms_id)).first()
    if store is None:
        raise RowError("store", f"no store with DMS id {dms_id!r} (add a store row)")
    return store


def _user_ref(session: Session, row: Row, name: str, store: Store) -> User | None:
    dms_id = row.text(name)
    if dms_id is None:
        return None
    user = session.scalars(select(User).where(User.dms_id == dms_id)).first()
    if user is None:
        raise RowError(name, f"no advisor with DMS id {dms_id!r}")
    if store not in user.stores:
        raise RowError(name, f"advisor {dms_id!r} does not work at store {store.dms_id!r}")
    return user


def _customer_ref(session: Session, row: Row, store: Store) -> Customer | None:
    dms_id = row.text("customer")
    if dms_id is None:
        return None
    customer = session.scalars(
        select(Customer).where(Customer.store_id == store.id, Customer.dms_id == dms_id)
    ).first()
    if customer is None:
        raise RowError("customer", f"no customer {dms_id!r} at store {store.dms_id!r}")
    return customer


def _tz(store: Store) -> ZoneInfo:
    return ZoneInfo(store.timezone)


def apply_store(session: Session, row: Row, now: datetime) -> str:
    dms_id = row.required("store")
    store = session.scalars(select(Store).where(Store.dms_id == dms_id)).first()
    created = store is None
    if store is None:
        store = Store(dms_id=dms_id, name=row.required("name"), hours={}, custom_statuses=[])
        session.add(store)
    c = Changes()
    if row.has("name"):
        c.set(store, "name", row.required("name"))
    if row.has("timezone") or created:
        zone = row.text("timezone") or "America/New_York"
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise RowError("timezone", f"unknown time zone {zone!r}") from None
        c.set(store, "timezone", zone)
    if row.has("hours"):
        raw = row.fields["hours"]
        try:
            c.set(store, "hours", {} if _blank(raw) else parse_hours_text(raw))
        except ValueError as exc:
            raise RowError("hours", str(exc)) from None
    if row.has("recording_consent"):
        consent = row.flag("recording_consent")
        c.set(store, "recording_consent", True if consent is None else consent)
    if row.has("custom_statuses"):
        statuses = row.items("custom_statuses")
        if any(len(status) > 50 for status in statuses):
            raise RowError("custom_statuses", "a status is longer than 50 characters")
        c.set(store, "custom_statuses", statuses)
    if row.has("address"):
        c.set(store, "address", row.text("address"))
    if row.has("closures"):
        c.set(store, "closures", _closures(row))
    if row.has("retention_days"):
        c.set(store, "retention_days", _retention_days(row))
    if row.has("dids"):
        dids = list(dict.fromkeys(_e164("dids", d, row.region) for d in row.items("dids")))
        for did in dids:
            owner = session.scalars(select(StoreNumber).where(StoreNumber.e164 == did)).first()
            if owner is not None and owner.store is not store:
                raise RowError("dids", f"{did} already rings store {owner.store.dms_id!r}")
        # `dids` are the numbers that ring service; a department row's numbers stay.
        wanted = set(dids)
        departments = [n for n in store.numbers if n.department_id and n.e164 not in wanted]
        if [n.e164 for n in store.numbers if n not in departments] != dids:
            keep = {n.e164: n for n in store.numbers}
            store.numbers = [keep.get(d) or StoreNumber(e164=d) for d in dids] + departments
            c.changed = True
    return "created" if created else ("updated" if c.changed else "unchanged")


def apply_advisor(session: Session, row: Row, now: datetime) -> str:
    dms_id = row.required("id")
    user = session.scalars(select(User).where(User.dms_id == dms_id)).first()
    username = row.text("username")
    if user is None and username is not None:
        # A user made with `driveline users` before the DMS knew them: adopt it.
        same = session.scalars(select(User).where(User.username == username)).first()
        if same is not None and same.dms_id is not None:
            raise RowError("username", f"{username!r} belongs to DMS user {same.dms_id!r}")
        user = same
    created = user is None
    role = (row.text("role") or "advisor").lower()
    if role not in (Role.advisor, Role.manager):
        raise RowError("role", f"{role!r}: an import may create advisors and managers only")
    if user is None:
        user = User(
            dms_id=dms_id,
            username=row.required("username"),
            name=row.required("name"),
            role=role,
            groups=["service"] if role == Role.advisor and not row.has("groups") else [],
            active=True,
        )
        session.add(user)
    elif user.role == Role.admin and row.has("role"):
        raise RowError("role", f"{user.username!r} is an admin; change admins with driveline users")
    c = Changes()
    c.set(user, "dms_id", dms_id)
    if row.has("username") and row.required("username") != user.username:
        wanted = row.required("username")
        if session.scalars(select(User).where(User.username == wanted)).first() is not None:
            raise RowError("username", f"{wanted!r} is taken by another user")
        c.set(user, "username", wanted)
    if row.has("name"):
        c.set(user, "name", row.required("name"))
    if row.has("role") and user.role != Role.admin:
        c.set(user, "role", role)
    if row.has("email"):
        c.set(user, "email", row.text("email"))
    if row.has("phone"):
        c.set(user, "phone", row.phone("phone"))
    if row.has("sip_contact"):
        contact = row.text("sip_contact")
        if contact is not None and not contact.lower().startswith(("sip:", "sips:")):
            raise RowError(
                "sip_contact", f"expected a SIP URI like sip:alice@10.0.0.5, got {contact!r}"
            )
        c.set(user, "sip_contact", contact)
    if row.has("groups"):
        c.set(user, "groups", row.items("groups"))
    if row.has("active"):
        active = row.flag("active")
        c.set(user, "active", True if active is None else active)
    for store_dms_id in row.items("store"):
        store = session.scalars(select(Store).where(Store.dms_id == store_dms_id)).first()
        if store is None:
            raise RowError("store", f"no store with DMS id {store_dms_id!r}")
        if store not in user.stores:
            user.stores.append(store)
            c.changed = True
    if row.has("department"):
        c.set(user, "department_id", _user_department(session, row, user))
    return "created" if created else ("updated" if c.changed else "unchanged")


def apply_customer(session: Session, row: Row, now: datetime) -> str:
    store = _store(session, row)
    dms_id = row.required("id")
    customer = session.scalars(
        select(Customer).where(Customer.store_id == store.id, Customer.dms_id == dms_id)
    ).first()
    created = customer is None
    if customer is None:
        customer = Customer(store_id=store.id, dms_id=dms_id, first_name="", last_name="")
        session.add(customer)
    c = Changes()
    for name in ("first_name", "last_name"):
        if row.has(name):
            c.set(customer, name, row.text(name) or "")
    if created and not (customer.first_name or customer.last_name):
        raise RowError("last_name", "a new customer needs a first_name or last_name")
    if row.has("email"):
        c.set(customer, "email", row.text("email"))
    if row.has("advisor"):
        advisor = _user_ref(session, row, "advisor", store)
        if customer.advisor is not advisor:
            customer.advisor = advisor
            c.changed = True
    if any(row.has(name) for name in PHONE_FIELDS):
        wanted: dict[str, str] = {}
        for name, label in PHONE_FIELDS.items():
            e164 = row.phone(name)
            if e164 is not None and e164 not in wanted:
                wanted[e164] = label
        current = {p.e164: p for p in customer.phones}
        if {e: p.label for e, p in current.items()} != wanted:
            phones = []
            for e164, label in wanted.items():
                phone = current.get(e164) or PhoneNumber(store_id=store.id, e164=e164)
                phone.label = label
                phones.append(phone)
            customer.phones = phones
            c.changed = True
    return "created" if created else ("updated" if c.changed else "unchanged")


def apply_vehicle(session: Session, row: Row, now: datetime) -> str:
    store = _store(session, row)
    dms_id = row.required("id")
    vehicle = session.scalars(
        select(Vehicle).where(Vehicle.store_id == store.id, Vehicle.dms_id == dms_id)
    ).first()
    created = vehicle is None
    customer = _customer_ref(session, row, store)
    if vehicle is None:
        if customer is None:
            raise RowError("customer", "required")
        vehicle = Vehicle(store_id=store.id, dms_id=dms_id, customer=customer, make="", model="")
        session.add(vehicle)
    c = Changes()
    if customer is not None and vehicle.customer is not customer:
        vehicle.customer = customer  # sold or transferred: the DMS moved it
        c.changed = True
    if row.has("year"):
        year_text = row.text("year")
        year = None
        if year_text is not None:
            if not year_text.isdigit() or not 1900 <= int(year_text) <= 2100:
                raise RowError("year", f"not a model year: {year_text!r}")
            year = int(year_text)
        c.set(vehicle, "year", year)
    for name in ("make", "model"):
        if row.has(name):
            c.set(vehicle, name, row.text(name) or "")
    if row.has("vin"):
        vin = row.text("vin")
        vin = vin.upper().replace(" ", "") if vin else None
        if vin is not None and not _VIN.match(vin):
            raise RowError("vin", f"not a VIN (17 letters and digits, no I, O or Q): {vin!r}")
        c.set(vehicle, "vin", vin)
    if row.has("plate"):
        plate = row.text("plate")
        c.set(vehicle, "plate", plate.upper() if plate else None)
    return "created" if created else ("updated" if c.changed else "unchanged")


def _status(store: Store, raw: str) -> str:
    """The canonical spelling of a status this store knows, matched case-insensitively."""
    known = [*STANDARD_STATUSES, *(store.custom_statuses or []), *CLOSED_STATUSES]
    for status in known:
        if status.lower() == raw.strip().lower():
            return status
    raise RowError(
        "status", f"unknown status {raw!r} (store {store.dms_id!r} knows: {', '.join(known)})"
    )


def _announcements(session: Session) -> Announcements:
    """What the rows applied so far have to announce once the file is committed."""
    said: Announcements = session.info.setdefault(ANNOUNCEMENTS, Announcements())
    return said


def apply_repair_order(session: Session, row: Row, now: datetime) -> str:
    """A changed status of a known RO goes through `usecases.status`, as the webhook's does:
    status event, thread entry, promises, the pickup call; the same file twice changes nothing."""
    store = _store(session, row)
    tz = _tz(store)
    number = row.required("number")
    ro = session.scalars(
        select(RepairOrder).where(RepairOrder.store_id == store.id, RepairOrder.number == number)
    ).first()
    created = ro is None
    customer = _customer_ref(session, row, store)
    status = _status(store, row.required("status")) if (created or row.has("status")) else None
    status_at = row.when("status_at", tz) or now
    if ro is None:
        if customer is None:
            raise RowError("customer", "required")
        ro = RepairOrder(
            store_id=store.id,
            number=number,
            customer=customer,
            status=status,
            opened_at=row.when("opened_at", tz) or now,
        )
        session.add(ro)
    c = Changes()
    if customer is not None and ro.customer is not customer:
        ro.customer = customer
        c.changed = True
    if row.has("vehicle"):
        vehicle_id = row.text("vehicle")
        vehicle = None
        if vehicle_id is not None:
            vehicle = session.scalars(
                select(Vehicle).where(Vehicle.store_id == store.id, Vehicle.dms_id == vehicle_id)
            ).first()
            if vehicle is None:
                raise RowError("vehicle", f"no vehicle {vehicle_id!r} at store {store.dms_id!r}")
        if ro.vehicle is not vehicle:
            ro.vehicle = vehicle
            c.changed = True
    if row.has("advisor"):
        advisor = _user_ref(session, row, "advisor", store)
        if ro.advisor is not advisor:
            ro.advisor = advisor
            c.changed = True
    if row.has("opened_at") and row.text("opened_at") is not None:
        c.set(ro, "opened_at", row.when("opened_at", tz))
    if row.has("promised_at"):
        c.set(ro, "promised_at", row.when("promised_at", tz))
    if row.has("concern"):
        c.set(ro, "concern", row.text("concern"))
    if status is not None:
        if created:  # its first status is where it starts: no thread entry, nobody called
            ro.events.append(StatusEventRow(status=status, at=status_at, source="import"))
        elif ro.status != status:
            outcome = status_usecase.record_status_change(
                session, ro=ro, status=status, at=status_at, note=None, source="import", now=now
            )
            _announcements(session).extend(outcome.said)
            c.changed = c.changed or not outcome.duplicate
        closed_at = row.when("closed_at", tz)
        if status in CLOSED_STATUSES:
            c.set(ro, "closed_at", closed_at or ro.closed_at or status_at)
        else:
            c.set(ro, "closed_at", closed_at)
    elif row.has("closed_at"):
        c.set(ro, "closed_at", row.when("closed_at", tz))
    return "created" if created else ("updated" if c.changed else "unchanged")


# --- sales data: departments and vehicle purchases ---------------------------------------------

FIELDS.update(
    department=frozenset({"store", "kind", "name", "hours", "flow", "numbers"}),
    purchase=frozenset(
        {
            "store",
            "id",
            "customer",
            "purchased_at",
            "vehicle",
            "vin",
            "year",
            "make",
            "model",
            "salesperson",
            "condition",
        }
    ),
)
MAX_LENGTH.update(kind=16, flow=100, salesperson=200, condition=10, address=300)
FIELDS["store"] = FIELDS["store"] | {"address", "closures", "retention_days"}
_CLOSURE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:\s+(\d{1,2}:\d{2})-(\d{1,2}:\d{2}))?\s*(.*)$")


def _closures(row: Row) -> list[dict[str, Any]]:
    """`2026-12-25 Christmas Day; 2026-12-24 08:00-12:00 Christmas Eve` or the JSON list."""
    raw = row.fields.get("closures")
    if _blank(raw):
        return []
    if isinstance(raw, str) and raw.strip().startswith("["):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise RowError("closures", f"not valid JSON: {exc}") from None
    if isinstance(raw, list) and all(isinstance(item, dict) for item in raw):
        items = [dict(item) for item in raw]
    else:
        items = []
        for part in row.items("closures"):
            match = _CLOSURE.match(part)
            if match is None:
                raise RowError("closures", f"cannot read {part!r} (e.g. '2026-12-25 Christmas')")
            item: dict[str, Any] = {"date": match[1], "name": match[4] or "Closed"}
            if match[2]:
                item["hours"] = [[match[2].zfill(5), match[3].zfill(5)]]
            items.append(item)
    try:
        parse_closures(items)
    except ValueError as exc:
        raise RowError("closures", str(exc)) from None
    return items


def _retention_days(row: Row) -> int | None:
    """Days to keep recordings and transcripts (ivr.policies.check_retention_days); empty:
    keep them forever."""
    raw = row.text("retention_days")
    try:
        return check_retention_days(None if raw is None else int(raw))
    except ValueError as exc:
        reason = str(exc) if "retention" in str(exc) else f"not a whole number of days: {raw!r}"
        raise RowError("retention_days", reason) from None


def _department_kind(row: Row) -> str:
    kind = row.required("kind").lower()
    if kind not in DepartmentKind.__members__:
        raise RowError("kind", f"unknown department {kind!r} (use {', '.join(DepartmentKind)})")
    return kind


def _user_department(session: Session, row: Row, user: User) -> int | None:
    """An advisor row's `department` (a kind: sales, ...) at the user's store; empty: none."""
    kind = row.text("department")
    if kind is None:
        return None
    kind = kind.lower()
    if kind not in DepartmentKind.__members__:
        raise RowError("department", f"unknown department {kind!r}")
    ids = [s.id for s in user.stores]
    found = session.scalars(
        select(Department.id).where(Department.store_id.in_(ids), Department.kind == kind)
    ).first()
    if found is None:
        raise RowError("department", f"no {kind} department at the user's store (add a row)")
    return found


def apply_department(session: Session, row: Row, now: datetime) -> str:
    store = _store(session, row)
    kind = _department_kind(row)
    department = session.scalars(
        select(Department).where(Department.store_id == store.id, Department.kind == kind)
    ).first()
    created = department is None
    if department is None:
        department = Department(store_id=store.id, kind=kind, name=kind.title(), flow="main")
        session.add(department)
        session.flush()
    c = Changes()
    if row.has("name"):
        c.set(department, "name", row.text("name") or kind.title())
    if row.has("hours"):
        raw = row.fields["hours"]
        try:
            c.set(department, "hours", None if _blank(raw) else parse_hours_text(raw))
        except ValueError as exc:
            raise RowError("hours", str(exc)) from None
    if row.has("flow"):
        flow = row.text("flow") or "main"
        if not re.fullmatch(r"[\w-]+", flow):
            raise RowError("flow", f"not a flow name: {flow!r}")
        c.set(department, "flow", flow)
    if row.has("numbers"):
        for did in dict.fromkeys(_e164("numbers", d, row.region) for d in row.items("numbers")):
            number = session.scalars(select(StoreNumber).where(StoreNumber.e164 == did)).first()
            if number is not None and number.store_id != store.id:
                raise RowError("numbers", f"{did} already rings store {number.store.dms_id!r}")
            if number is None:
                number = StoreNumber(e164=did)
                store.numbers.append(number)
            if number.department_id != department.id:
                number.department_id = department.id
                c.changed = True
    return "created" if created else ("updated" if c.changed else "unchanged")


def _purchase_vehicle(
    session: Session, row: Row, store: Store, customer: Customer
) -> Vehicle | None:
    """By the vehicle's DMS id, else by VIN (the customer's first); an unknown VIN becomes the
    customer's vehicle, so a deal can arrive before the vehicle row."""
    vehicle_id = row.text("vehicle")
    if vehicle_id is not None:
        vehicle = session.scalars(
            select(Vehicle).where(Vehicle.store_id == store.id, Vehicle.dms_id == vehicle_id)
        ).first()
        if vehicle is None:
            raise RowError("vehicle", f"no vehicle {vehicle_id!r} at store {store.dms_id!r}")
        return vehicle
    vin = row.text("vin")
    if vin is None:
        return None
    vin = vin.upper().replace(" ", "")
    if not _VIN.match(vin):
        raise RowError("vin", f"not a VIN (17 letters and digits, no I, O or Q): {vin!r}")
    year = row.text("year")
    if year is not None and (not year.isdigit() or not 1900 <= int(year) <= 2100):
        raise RowError("year", f"not a model year: {year!r}")
    return queries.vehicle_by_vin(
        session, customer, vin, year=int(year) if year else None,
        make=row.text("make") or "", model=row.text("model") or "",
    )  # fmt: skip


def apply_purchase(session: Session, row: Row, now: datetime) -> str:
    store = _store(session, row)
    deal = row.required("id")
    customer = _customer_ref(session, row, store)
    existing = session.scalars(
        select(VehiclePurchase).where(
            VehiclePurchase.store_id == store.id, VehiclePurchase.dms_id == deal
        )
    ).first()
    if customer is None:
        if existing is None:
            raise RowError("customer", "required")
        customer = session.get(Customer, existing.customer_id)
        assert customer is not None
    purchased_at = row.when("purchased_at", _tz(store))
    if purchased_at is None:
        if existing is None:
            raise RowError("purchased_at", "required")
        purchased_at = existing.purchased_at
    if row.has("vehicle") or row.has("vin"):
        vehicle = _purchase_vehicle(session, row, store, customer)
    else:
        vehicle = existing.vehicle if existing else None
    seller_ref = row.text("salesperson") if row.has("salesperson") else None
    if not row.has("salesperson") and existing is not None:
        seller, seller_name = existing.salesperson, existing.salesperson_name
    else:
        seller = sales.find_salesperson(session, store.id, seller_ref) if seller_ref else None
        seller_name = seller.name if seller else (seller_ref or "")
    condition = (row.text("condition") or (existing.condition if existing else "new")).lower()
    if condition not in sales.CONDITIONS:
        raise RowError("condition", f"{condition!r} (use {', '.join(sales.CONDITIONS)})")
    _, outcome = sales.upsert_purchase(
        session,
        customer=customer,
        purchased_at=purchased_at,
        dms_id=deal,
        vehicle=vehicle,
        salesperson=seller,
        salesperson_name=seller_name,
        condition=condition,
    )
    return outcome


def _cents(row: Row, name: str) -> int | None:
    """Dollars as a DMS writes them (`249.95`, `$1,249.95`) → cents."""
    raw = row.text(name)
    if raw is None:
        return None
    text = raw.replace("$", "").replace(",", "").strip()
    if not re.fullmatch(r"\d{1,8}(\.\d{1,2})?", text):
        raise RowError(name, f"not an amount in dollars: {raw!r} (e.g. 249.95)")
    dollars, _, cents = text.partition(".")
    return int(dollars) * 100 + int(cents.ljust(2, "0") or 0)


def apply_line_item(session: Session, row: Row, now: datetime) -> str:
    """A recommended repair on an RO, keyed by its line code; declined, it becomes a
    follow-up (records/followups.py), approved or done closes that follow-up."""
    store = _store(session, row)
    number = row.required("repair_order")
    ro = session.scalars(
        select(RepairOrder).where(RepairOrder.store_id == store.id, RepairOrder.number == number)
    ).first()
    if ro is None:
        raise RowError("repair_order", f"no repair order {number!r} at store {store.dms_id!r}")
    dms_id = row.required("id")
    status_text = (row.text("status") or "").lower().replace(" ", "_")
    if status_text and status_text not in {s.value for s in LineStatus}:
        raise RowError(
            "status",
            f"unknown line status {row.text('status')!r} (use "
            + ", ".join(s.value for s in LineStatus)
            + ")",
        )
    decided_at = row.when("decided_at", _tz(store))
    item = followups.line_item_by_dms_id(session, ro_id=ro.id, dms_id=dms_id)
    if item is None:
        followups.add_line_item(
            session,
            ro=ro,
            description=row.required("description"),
            status=status_text or LineStatus.recommended,
            estimate_cents=_cents(row, "estimate"),
            dms_id=dms_id,
            decided_at=decided_at,
            now=now,
        )
        return "created"
    c = Changes()
    if row.has("description"):
        c.set(item, "description", row.required("description"))
    if row.has("estimate"):
        c.set(item, "estimate_cents", _cents(row, "estimate"))
    if status_text and (
        status_text != item.status or (decided_at and decided_at != item.decided_at)
    ):
        followups.set_line_item_status(
            session, item=item, status=status_text, at=decided_at, now=now
        )
        c.changed = True
    return "updated" if c.changed else "unchanged"


APPLY: dict[str, Callable[[Session, Row, datetime], str]] = {
    "store": apply_store,
    "advisor": apply_advisor,
    "customer": apply_customer,
    "vehicle": apply_vehicle,
    "repair_order": apply_repair_order,
    "line_item": apply_line_item,
    "department": apply_department,
    "purchase": apply_purchase,
}


def import_rows(
    engine: Engine,
    rows: Iterable[tuple[int, dict[str, Any]]],
    region: str = "US",
    now: datetime | None = None,
    bus: EventBus | None = None,
) -> ImportReport:
    """Apply rows (dependency order, then file order), each in its own savepoint; then, with a
    `bus`, announce what the committed rows did (status events, pickup calls to queue)."""
    now = now or utcnow()
    report = ImportReport()
    said = Announcements()
    rank = {kind: i for i, kind in enumerate(TYPES)}

    def order(item: tuple[int, dict[str, Any]]) -> tuple[int, int]:
        kind = str(item[1].get("type") or "").strip().lower()
        return rank.get(kind, -1), item[0]  # unknown types first: they fail fast

    with transaction(session_factory(engine)) as session:
        for number, fields in sorted(rows, key=order):
            kind = str(fields.get("type") or "").strip().lower()
            if kind not in APPLY:
                shown = kind or "(empty)"
                report.errors.append(
                    f"row {number}: type: unknown type {shown!r} (use {', '.join(TYPES)})"
                )
                report.add(kind or "(no type)", "failed")
                continue
            row = Row(kind, fields, region)
            session.info[ANNOUNCEMENTS] = Announcements()
            try:
                with session.begin_nested():
                    row.check_fields()
                    outcome = APPLY[kind](session, row, now)
                    session.flush()
            except RowError as exc:
                report.errors.append(f"row {number}: {exc}")
                outcome = "failed"
            except ValueError as exc:  # e.g. a model validator; still only this row's fault
                report.errors.append(f"row {number}: {exc}")
                outcome = "failed"
            except (IntegrityError, DBAPIError) as exc:
                reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                report.errors.append(f"row {number}: database: {reason}")
                outcome = "failed"
            row_said = session.info.pop(ANNOUNCEMENTS)
            if outcome != "failed":  # a failed row's savepoint took its rows back
                said.extend(row_said)
            report.add(kind, outcome)
    if bus is not None:
        said.send(bus)
    return report


def import_path(
    engine: Engine, path: str | Path, region: str = "US", bus: EventBus | None = None
) -> ImportReport:
    """Read and import one CSV or JSON file; raises ImportFileError if it cannot be read."""
    return import_rows(engine, read_rows(path), region=region, bus=bus)
