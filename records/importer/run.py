"""The run: every row of a file applied through the row-type table, each in its own savepoint,
counted in a report; what the committed rows announce is sent after the commit.

The one place that knows the order rows are applied in (`TABLE`'s: a row may refer to rows of
the types above it, whatever the file's order) and what a failed row costs (that row alone).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from events.bus import EventBus
from records.db import session_factory, transaction
from records.importer.applying import ANNOUNCEMENTS, RowType
from records.importer.fields import Row, RowError
from records.importer.people import ADVISOR, CUSTOMER
from records.importer.reading import read_rows
from records.importer.repair_orders import LINE_ITEM, REPAIR_ORDER
from records.importer.stores import DEPARTMENT, STORE
from records.importer.vehicles import PURCHASE, VEHICLE
from records.models import utcnow
from usecases.announce import Announcements

# Row type → its columns and applier, in the order rows are applied.
TABLE: dict[str, RowType] = {
    "store": STORE,
    "department": DEPARTMENT,
    "advisor": ADVISOR,
    "customer": CUSTOMER,
    "vehicle": VEHICLE,
    "repair_order": REPAIR_ORDER,
    "line_item": LINE_ITEM,
    "purchase": PURCHASE,
}
TYPES: tuple[str, ...] = tuple(TABLE)
OUTCOMES: tuple[str, ...] = ("created", "updated", "unchanged", "failed")


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
            row_type = TABLE.get(kind)
            if row_type is None:
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
                    row.check_fields(row_type.fields)
                    outcome = row_type.apply(session, row, now)
                    session.flush()
            except (RowError, ValueError) as exc:  # ValueError: e.g. a model validator's
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
