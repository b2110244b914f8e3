"""The `store` and `department` rows: a rooftop's name, time zone, hours, closures and the
numbers that ring it, and the departments (service, sales, ...) those numbers may ring instead.

Together because both hand out the store's DIDs: a store row's `dids` ring service and never
take away a number a department row gave its department.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.domain import DepartmentKind
from ivr.policies import check_retention_days
from records.importer.applying import Changes, RowType, row_store, store_by_dms_id
from records.importer.fields import Row, RowError
from records.models import Department, Store, StoreNumber


def apply_store(session: Session, row: Row, now: datetime) -> str:
    dms_id = row.required("store")
    store = store_by_dms_id(session, dms_id)
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
        c.set(store, "hours", row.hours("hours") or {})
    if row.has("recording_consent"):
        consent = row.flag("recording_consent")
        c.set(store, "recording_consent", True if consent is None else consent)
    if row.has("custom_statuses"):
        statuses = row.items("custom_statuses")
        if any(len(status) > 50 for status in statuses):
            raise RowError("custom_statuses", "a status is longer than 50 characters")
        c.set(store, "custom_statuses", statuses)
    c.cells(store, row, address=row.text, closures=row.closures)
    if row.has("retention_days"):
        c.set(store, "retention_days", _retention_days(row))
    if row.has("dids"):
        dids = list(_numbers(session, row, "dids", store))
        # `dids` are the numbers that ring service; a department row's numbers stay.
        wanted = set(dids)
        departments = [n for n in store.numbers if n.department_id and n.e164 not in wanted]
        if [n.e164 for n in store.numbers if n not in departments] != dids:
            keep = {n.e164: n for n in store.numbers}
            store.numbers = [keep.get(d) or StoreNumber(e164=d) for d in dids] + departments
            c.changed = True
    return c.outcome(created)


def apply_department(session: Session, row: Row, now: datetime) -> str:
    store = row_store(session, row)
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
    c.cells(department, row, hours=row.hours)
    if row.has("flow"):
        flow = row.text("flow") or "main"
        if not re.fullmatch(r"[\w-]+", flow):
            raise RowError("flow", f"not a flow name: {flow!r}")
        c.set(department, "flow", flow)
    if row.has("numbers"):
        for did, number in _numbers(session, row, "numbers", store).items():
            if number is None:
                number = StoreNumber(e164=did)
                store.numbers.append(number)
            c.set(number, "department_id", department.id)
    return c.outcome(created)


def _numbers(session: Session, row: Row, name: str, store: Store) -> dict[str, StoreNumber | None]:
    """The cell's DIDs (E.164, in order) with the StoreNumber each already is, if any; a DID
    that already rings another store is refused."""
    found: dict[str, StoreNumber | None] = {}
    for did in row.numbers(name):
        number = session.scalars(select(StoreNumber).where(StoreNumber.e164 == did)).first()
        if number is not None and number.store is not store:
            raise RowError(name, f"{did} already rings store {number.store.dms_id!r}")
        found[did] = number
    return found


def _department_kind(row: Row) -> str:
    kind = row.required("kind").lower()
    if kind not in DepartmentKind.__members__:
        raise RowError("kind", f"unknown department {kind!r} (use {', '.join(DepartmentKind)})")
    return kind


def _retention_days(row: Row) -> int | None:
    """Days to keep recordings and transcripts (ivr.policies.check_retention_days); empty:
    keep them forever."""
    raw = row.text("retention_days")
    try:
        return check_retention_days(None if raw is None else int(raw))
    except ValueError as exc:
        reason = str(exc) if "retention" in str(exc) else f"not a whole number of days: {raw!r}"
        raise RowError("retention_days", reason) from None


STORE = RowType(
    fields=frozenset(
        {
            "store",
            "name",
            "timezone",
            "dids",
            "hours",
            "recording_consent",
            "custom_statuses",
            "address",
            "closures",
            "retention_days",
        }
    ),
    apply=apply_store,
)
DEPARTMENT = RowType(
    fields=frozenset({"store", "kind", "name", "hours", "flow", "numbers"}),
    apply=apply_department,
)
