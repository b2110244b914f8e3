"""What every row type's applier shares: the `RowType` table entry, `Changes` (which decides a
row's outcome), and the rows a row refers to by DMS id (its store, a customer, a vehicle, an
advisor), each refused with a message naming the cell.

One copy of each, so every row type finds its references and counts its changes the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from records.importer.fields import Row, RowError
from records.models import Customer, Store, User, Vehicle, VehiclePurchase
from usecases.announce import Announcements

ANNOUNCEMENTS = "driveline.import.announcements"  # session.info key: the current row's

Apply = Callable[[Session, Row, datetime], str]  # → "created", "updated" or "unchanged"
AtStore = TypeVar("AtStore", Customer, Vehicle, VehiclePurchase)


@dataclass(frozen=True)
class RowType:
    """One row type: the columns a row of it may fill (any other non-empty cell is refused as a
    misspelled column) and the function that applies one row to the record."""

    fields: frozenset[str]
    apply: Apply


class Changes:
    """Sets attributes and remembers whether anything actually changed (for the counts)."""

    def __init__(self) -> None:
        self.changed = False

    def set(self, obj: Any, attr: str, value: Any) -> None:
        if getattr(obj, attr) != value:
            setattr(obj, attr, value)
            self.changed = True

    def link(self, obj: Any, attr: str, target: Any) -> None:
        """Point a relationship at `target` (or None): the same row or not, by identity."""
        if getattr(obj, attr) is not target:
            setattr(obj, attr, target)
            self.changed = True

    def cells(self, obj: Any, row: Row, **read: Callable[[str], Any]) -> None:
        """Set each attribute named in `read` to its cell as read, where the row has the column
        (`c.cells(user, row, email=row.text, phone=row.phone)`); absent columns stay as they are."""
        for name, reader in read.items():
            if row.has(name):
                self.set(obj, name, reader(name))

    def outcome(self, created: bool) -> str:
        return "created" if created else ("updated" if self.changed else "unchanged")


def store_by_dms_id(session: Session, dms_id: str) -> Store | None:
    return session.scalars(select(Store).where(Store.dms_id == dms_id)).first()


def row_store(session: Session, row: Row) -> Store:
    """The store a row belongs to (its `store` cell), which a store row must have added."""
    dms_id = row.required("store")
    store = store_by_dms_id(session, dms_id)
    if store is None:
        raise RowError("store", f"no store with DMS id {dms_id!r} (add a store row)")
    return store


def at_store(session: Session, model: type[AtStore], store: Store, dms_id: str) -> AtStore | None:
    """A customer, vehicle or purchase by its DMS id, which is unique per store."""
    found: AtStore | None = session.scalars(
        select(model).where(model.store_id == store.id, model.dms_id == dms_id)
    ).first()
    return found


def ref(
    session: Session, row: Row, name: str, model: type[AtStore], store: Store
) -> AtStore | None:
    """The customer or vehicle the cell `name` refers to; an empty cell is None."""
    dms_id = row.text(name)
    if dms_id is None:
        return None
    found = at_store(session, model, store, dms_id)
    if found is None:
        raise RowError(name, f"no {name} {dms_id!r} at store {store.dms_id!r}")
    return found


def user_ref(session: Session, row: Row, name: str, store: Store) -> User | None:
    """The advisor the cell `name` refers to, who must work at the row's store."""
    dms_id = row.text(name)
    if dms_id is None:
        return None
    user = session.scalars(select(User).where(User.dms_id == dms_id)).first()
    if user is None:
        raise RowError(name, f"no advisor with DMS id {dms_id!r}")
    if store not in user.stores:
        raise RowError(name, f"advisor {dms_id!r} does not work at store {store.dms_id!r}")
    return user


def zone_of(store: Store) -> ZoneInfo:
    return ZoneInfo(store.timezone)


def announcements(session: Session) -> Announcements:
    """What the rows applied so far have to announce once the file is committed."""
    said: Announcements = session.info.setdefault(ANNOUNCEMENTS, Announcements())
    return said
