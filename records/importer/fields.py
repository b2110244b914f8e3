"""One row's cells → typed values (text, flags, phones, times, hours, money, VINs), or a
RowError naming the cell.

Every row type reads its cells through `Row`, so a phone, a time or an hours cell is read the
same way, with the same message, whichever row it is on.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ivr.domain import parse_closures, parse_hours
from ivr.phone import BadPhoneNumber, to_e164

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
    "kind": 16,
    "flow": 100,
    "salesperson": 200,
    "condition": 10,
    "address": 300,
}
_US_TIME_FORMATS = ("%m/%d/%Y %I:%M %p", "%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y")
_VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
_CLOSURE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:\s+(\d{1,2}:\d{2})-(\d{1,2}:\d{2}))?\s*(.*)$")


class RowError(Exception):
    """One row is wrong; `field` names the culprit so the message points at the cell."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class Row:
    """Typed access to one row's cells: each reader checks its cell and raises RowError."""

    def __init__(self, kind: str, fields: dict[Any, Any], region: str) -> None:
        self.kind = kind
        self.fields = fields
        self.region = region

    def check_fields(self, allowed: frozenset[str]) -> None:
        """A non-empty cell outside the row type's columns is an error: a misspelled column."""
        if None in self.fields:  # csv.DictReader puts surplus cells under None
            raise RowError("row", "more cells than the header has columns")
        if "__not_an_object__" in self.fields:
            raise RowError("row", "not an object")
        allowed = allowed | {"type"}
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

    def numbers(self, name: str) -> list[str]:
        """A list of phone numbers (a store's DIDs) as E.164, each once, in the row's order."""
        return list(dict.fromkeys(_e164(name, raw, self.region) for raw in self.items(name)))

    def when(self, name: str, tz: ZoneInfo) -> datetime | None:
        raw = self.text(name)
        if raw is None:
            return None
        parsed = _parse_time(raw)
        if parsed is None:
            raise RowError(name, f"not a date and time: {raw!r} (use 2026-11-25T14:30)")
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)

    def hours(self, name: str) -> dict[str, list[list[str]]] | None:
        """Opening hours (see parse_hours_text); an empty cell is None."""
        raw = self.fields.get(name)
        if _blank(raw):
            return None
        try:
            return parse_hours_text(raw)
        except ValueError as exc:
            raise RowError(name, str(exc)) from None

    def closures(self, name: str) -> list[dict[str, Any]]:
        """`2026-12-25 Christmas Day; 2026-12-24 08:00-12:00 Christmas Eve` or the JSON list."""
        raw = self.fields.get(name)
        if _blank(raw):
            return []
        if isinstance(raw, str) and raw.strip().startswith("["):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise RowError(name, f"not valid JSON: {exc}") from None
        if isinstance(raw, list) and all(isinstance(item, dict) for item in raw):
            items = [dict(item) for item in raw]
        else:
            items = []
            for part in self.items(name):
                match = _CLOSURE.match(part)
                if match is None:
                    raise RowError(name, f"cannot read {part!r} (e.g. '2026-12-25 Christmas')")
                item: dict[str, Any] = {"date": match[1], "name": match[4] or "Closed"}
                if match[2]:
                    item["hours"] = [[match[2].zfill(5), match[3].zfill(5)]]
                items.append(item)
        try:
            parse_closures(items)
        except ValueError as exc:
            raise RowError(name, str(exc)) from None
        return items

    def cents(self, name: str) -> int | None:
        """Dollars as a DMS writes them (`249.95`, `$1,249.95`) → cents."""
        raw = self.text(name)
        if raw is None:
            return None
        text = raw.replace("$", "").replace(",", "").strip()
        if not re.fullmatch(r"\d{1,8}(\.\d{1,2})?", text):
            raise RowError(name, f"not an amount in dollars: {raw!r} (e.g. 249.95)")
        dollars, _, cents = text.partition(".")
        return int(dollars) * 100 + int(cents.ljust(2, "0") or 0)

    def vin(self, name: str) -> str | None:
        """A VIN, upper-cased and without spaces."""
        vin = self.text(name)
        if vin is None:
            return None
        vin = vin.upper().replace(" ", "")
        if not _VIN.match(vin):
            raise RowError(name, f"not a VIN (17 letters and digits, no I, O or Q): {vin!r}")
        return vin

    def model_year(self, name: str) -> int | None:
        year = self.text(name)
        if year is None:
            return None
        if not year.isdigit() or not 1900 <= int(year) <= 2100:
            raise RowError(name, f"not a model year: {year!r}")
        return int(year)


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
