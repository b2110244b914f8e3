"""The `advisor` and `customer` rows: the store's users (advisors, managers) and its customers
with their phone numbers.

Together because a customer row points at an advisor, and both are people found by a DMS id:
an advisor's is unique overall, a customer's per store.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.domain import DepartmentKind, Role
from records.importer.applying import (
    Changes,
    RowType,
    at_store,
    row_store,
    store_by_dms_id,
    user_ref,
)
from records.importer.fields import Row, RowError
from records.models import Customer, Department, PhoneNumber, User

PHONE_FIELDS: dict[str, str] = {"phone": "mobile", "home_phone": "home", "work_phone": "work"}


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
    if row.has("role") and user.role != Role.admin:
        c.set(user, "role", role)
    c.cells(user, row, name=row.required, email=row.text, phone=row.phone, groups=row.items)
    if row.has("sip_contact"):
        contact = row.text("sip_contact")
        if contact is not None and not contact.lower().startswith(("sip:", "sips:")):
            raise RowError(
                "sip_contact", f"expected a SIP URI like sip:alice@10.0.0.5, got {contact!r}"
            )
        c.set(user, "sip_contact", contact)
    if row.has("active"):
        active = row.flag("active")
        c.set(user, "active", True if active is None else active)
    for store_dms_id in row.items("store"):
        store = store_by_dms_id(session, store_dms_id)
        if store is None:
            raise RowError("store", f"no store with DMS id {store_dms_id!r}")
        if store not in user.stores:
            user.stores.append(store)
            c.changed = True
    if row.has("department"):
        c.set(user, "department_id", _user_department(session, row, user))
    return c.outcome(created)


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


def apply_customer(session: Session, row: Row, now: datetime) -> str:
    store = row_store(session, row)
    dms_id = row.required("id")
    customer = at_store(session, Customer, store, dms_id)
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
    c.cells(customer, row, email=row.text)
    if row.has("advisor"):
        c.link(customer, "advisor", user_ref(session, row, "advisor", store))
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
    return c.outcome(created)


ADVISOR = RowType(
    fields=frozenset(
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
    apply=apply_advisor,
)
CUSTOMER = RowType(
    fields=frozenset({"store", "id", "first_name", "last_name", "email", "advisor", *PHONE_FIELDS}),
    apply=apply_customer,
)
