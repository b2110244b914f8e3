"""The demo store: enough realistic, deterministic data to call in and hear every branch.

`seed_demo(engine)` creates "Demo Chevrolet" (DMS id `DEMO`, DID +1 555 010 0100,
America/New_York, Mon–Fri 07:00–18:00, Sat 08:00–14:00, recording consent on), its staff and
200 customers. Names, vehicles and the spread of repair orders come from a fixed random seed,
so the same numbers mean the same customers on every machine; times are relative to the
moment of seeding (re-seed with `reset=True`, `driveline demo-data --reset`, to refresh them).

Staff (all scoped to the demo store). `driveline serve --demo` gives each of them the web-page
password "demo-password" (`driveline.serve.DEMO_PASSWORD`; only for a local demo):

    username  role     phone          SIP contact
    alice     advisor  +15550100201   sip:alice@127.0.0.1:5070
    bob       advisor  +15550100202   sip:bob@127.0.0.1:5071
    carol     advisor  +15550100203   sip:carol@127.0.0.1:5072
    dave      advisor  +15550100204   sip:dave@127.0.0.1:5073
    maria     manager  +15550100210
    admin     admin

Customer N (1…200) has DMS id `DEMO-C{N:04}` and mobile +1555020{N:04} (+15550200001 …
+15550200200); every third customer (N divisible by 3) also has a home phone +1555021{N:04}.
The first eight are fixed so docs and tests can cite them:

    phone          customer's repair orders (RO number: status)
    +15550200001   500001: Waiting on Dispatch
    +15550200002   500002: In Shop
    +15550200003   500003: Tech Working              (also home phone +15550210003)
    +15550200004   500004: Ready for Pickup
    +15550200005   500005: Ready for Pickup (opened 2 days ago), 500006: Waiting on Dispatch
    +15550200006   none at all                       (also home phone +15550210006)
    +15550200007   500007: Picked Up (closed last month), so no open RO
    +15550200008   500008: In Shop (opened yesterday), 500009: Tech Working

Customers 9–200 get a seeded mix: one open RO in a random standard status, none, only closed
ones, or an open one plus older closed ones. Unknown caller for tests: +15550299999.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from ivr.domain import STANDARD_STATUSES, Role, ThreadKind
from ivr.phone import FICTIONAL
from records import followups, sales
from records.db import session_factory, transaction
from records.models import (
    Customer,
    Department,
    PhoneNumber,
    RepairOrder,
    StatusEventRow,
    Store,
    StoreNumber,
    ThreadEntry,
    User,
    Vehicle,
)
from records.views import is_open_clause

DEMO_DMS_ID = "DEMO"
DEMO_STORE_NAME = "Demo Chevrolet"
DEMO_DID = "+15550100100"
DEMO_TIMEZONE = "America/New_York"
DEMO_HOURS: dict[str, list[list[str]]] = {
    **{day: [["07:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    "sat": [["08:00", "14:00"]],
}
DEMO_ADDRESS = "4100 Commerce Drive, Springfield"
# The sales department: its own number, hours and flow; one salesperson; deals for some of
# the service customers, so a call to the sales line pops their whole relationship.
DEMO_SALES_DID = "+15550100200"
DEMO_SALES_HOURS: dict[str, list[list[str]]] = {
    **{day: [["09:00", "20:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    "sat": [["09:00", "18:00"]],
    "sun": [["11:00", "17:00"]],
}
DEMO_SALESPERSON = ("sam", "Sam Rivera", "+15550100205", "sip:sam@127.0.0.1:5074")
DEMO_DEALS = 40  # customers 1, 5, 9, ... bought their first vehicle here
CUSTOMER_COUNT = 200
FIRST_RO_NUMBER = 500001
SEED = 20261125
WAITING, IN_SHOP, TECH_WORKING, READY = STANDARD_STATUSES
PICKED_UP = "Picked Up"


@dataclass(frozen=True)
class DemoUser:
    username: str
    name: str
    role: Role
    phone: str | None
    sip_contact: str | None


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("alice", "Alice Moreno", Role.advisor, "+15550100201", "sip:alice@127.0.0.1:5070"),
    DemoUser("bob", "Bob Tran", Role.advisor, "+15550100202", "sip:bob@127.0.0.1:5071"),
    DemoUser("carol", "Carol Nguyen", Role.advisor, "+15550100203", "sip:carol@127.0.0.1:5072"),
    DemoUser("dave", "Dave Okafor", Role.advisor, "+15550100204", "sip:dave@127.0.0.1:5073"),
    DemoUser("maria", "Maria Lopez", Role.manager, "+15550100210", None),
    DemoUser("admin", "Demo Admin", Role.admin, None, None),
)

FIRST_NAMES = tuple(
    (
        "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
        "Richard Susan Joseph Jessica Thomas Sarah Carlos Karen Daniel Lisa Matthew Nancy Anthony "
        "Betty Mark Sandra Kevin Ashley Luis Aisha Wei Priya Andre Keisha"
    ).split()
)
LAST_NAMES = tuple(
    (
        "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez "
        "Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson "
        "White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott "
        "Torres Nguyen Hill Flores Patel Kim Okafor Schmidt"
    ).split()
)
# (model, first year, last year, VIN prefix: world manufacturer + vehicle attributes)
MODELS = (
    ("Silverado 1500", 2014, 2025, "1GCUY"),
    ("Equinox", 2015, 2025, "2GNAX"),
    ("Malibu", 2014, 2024, "1G1ZD"),
    ("Traverse", 2015, 2025, "1GNER"),
    ("Tahoe", 2015, 2025, "1GNSK"),
    ("Colorado", 2016, 2025, "1GCGT"),
    ("Trax", 2016, 2025, "KL7CJ"),
    ("Blazer", 2019, 2025, "3GNKB"),
    ("Suburban", 2015, 2025, "1GNSK"),
    ("Bolt EV", 2017, 2023, "1G1FY"),
    ("Trailblazer", 2021, 2025, "KL79M"),
    ("Camaro", 2014, 2024, "1G1FB"),
)
CONCERNS = (
    "Oil change and tire rotation",
    "Check engine light is on",
    "Brakes squeak when stopping",
    "AC blowing warm air",
    "Open recall: software update",
    "Battery will not hold a charge",
    "Transmission slips between 2nd and 3rd",
    "State inspection",
    "Clunk from the front end over bumps",
    "Pulls to the right; alignment",
    "Coolant leak under the engine",
    "Infotainment screen goes blank",
)
# Scenarios for the cited customers: each entry is one RO, (status, hours since opened).
FIXED: dict[int, list[tuple[str, float]]] = {
    1: [(WAITING, 0.7)],
    2: [(IN_SHOP, 3)],
    3: [(TECH_WORKING, 4.5)],
    4: [(READY, 6)],
    5: [(READY, 48), (WAITING, 0.5)],
    6: [],
    7: [(PICKED_UP, 24 * 30)],
    8: [(IN_SHOP, 26), (TECH_WORKING, 5)],
}
VIN_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"  # no I, O, Q
_VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_MODEL_YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"  # 2010 = A, cycles every 30 years


def demo_vin(prefix: str, year: int, rng: random.Random) -> str:
    """A VIN with a valid check digit, so VIN validators downstream accept demo data."""
    year_code = _MODEL_YEAR_CODES[(year - 2010) % 30]
    body = prefix + "".join(rng.choice(VIN_CHARS) for _ in range(3))  # positions 1–8
    tail = year_code + "F" + "".join(str(rng.randint(0, 9)) for _ in range(6))  # 10–17
    vin = body + "0" + tail
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin, _VIN_WEIGHTS, strict=True))
    check = "X" if total % 11 == 10 else str(total % 11)
    return body + check + tail


def seed_demo(
    engine: Engine, *, reset: bool = False, now: datetime | None = None
) -> dict[str, Any]:
    """Create the demo store once; later calls change nothing and return the same summary.

    `reset=True` deletes the demo store (and demo-only users) first, to refresh times.
    """
    now = now or datetime.now(UTC)
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        if reset:
            _delete_demo(session)
        store = session.scalars(select(Store).where(Store.dms_id == DEMO_DMS_ID)).first()
        created = store is None
        if store is None:
            store = _create(session, now)
        summary = _summary(session, store)
    summary["created"] = created
    return summary


def _delete_demo(session: Session) -> None:
    # Core deletes let the database's ON DELETE CASCADE remove customers, ROs and the rest.
    session.execute(delete(Store).where(Store.dms_id == DEMO_DMS_ID))
    session.execute(delete(User).where(User.dms_id.like("DEMO-U-%")))
    session.flush()
    session.expire_all()


def _users(session: Session, store: Store) -> list[User]:
    """Demo staff; a user that already exists under the same username is reused as is."""
    users = []
    for spec in DEMO_USERS:
        user = session.scalars(select(User).where(User.username == spec.username)).first()
        if user is None:
            user = User(
                dms_id=f"DEMO-U-{spec.username}",
                username=spec.username,
                name=spec.name,
                email=f"{spec.username}@demo-chevrolet.example",
                role=spec.role.value,
                phone=spec.phone,
                sip_contact=spec.sip_contact,
                groups=["service"] if spec.role == Role.advisor else [],
                active=True,
            )
            session.add(user)
        if store not in user.stores:
            user.stores.append(store)
        users.append(user)
    return users


def _history(
    rng: random.Random, status: str, opened: datetime, now: datetime
) -> list[tuple[str, datetime]]:
    """Status steps from opening up to `status`, at increasing times before now."""
    if status == PICKED_UP:
        steps = [*STANDARD_STATUSES, PICKED_UP]
        end = opened + timedelta(hours=rng.uniform(5, 9))
    else:
        steps = list(STANDARD_STATUSES[: STANDARD_STATUSES.index(status) + 1])
        end = now - timedelta(minutes=rng.uniform(3, 20))
    span = max((end - opened).total_seconds(), 60.0)
    cuts = sorted(rng.uniform(0.1, 1.0) * span for _ in steps[1:])
    return [(steps[0], opened)] + [
        (s, opened + timedelta(seconds=c)) for s, c in zip(steps[1:], cuts, strict=True)
    ]


def _random_scenario(rng: random.Random) -> list[tuple[str, float]]:
    roll = rng.random()
    open_ro = (rng.choice(STANDARD_STATUSES), rng.uniform(0.3, 30))
    closed = [(PICKED_UP, 24 * rng.uniform(10, 400)) for _ in range(rng.randint(1, 2))]
    if roll < 0.45:
        return [open_ro]
    if roll < 0.65:
        return []
    if roll < 0.85:
        return closed
    return closed + [open_ro]


def _create(session: Session, now: datetime) -> Store:
    rng = random.Random(SEED)
    store = Store(
        dms_id=DEMO_DMS_ID,
        name=DEMO_STORE_NAME,
        timezone=DEMO_TIMEZONE,
        hours=DEMO_HOURS,
        recording_consent=True,
        custom_statuses=[],
        numbers=[StoreNumber(e164=DEMO_DID)],
        address=DEMO_ADDRESS,
        closures=_demo_closures(now),
        outbound={"allow": [FICTIONAL]},  # the demo's +1 555 numbers are fictional
    )
    session.add(store)
    session.flush()
    advisors = [u for u in _users(session, store) if u.role == Role.advisor]

    ro_number = FIRST_RO_NUMBER
    entries: list[tuple[Customer, ThreadEntry]] = []
    for n in range(1, CUSTOMER_COUNT + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        advisor = rng.choice(advisors)
        customer = Customer(
            store_id=store.id,
            dms_id=f"DEMO-C{n:04}",
            first_name=first,
            last_name=last,
            email=f"{first}.{last}{n}@example.com".lower(),
            advisor=advisor,
            created_at=now - timedelta(days=rng.randint(30, 900)),
        )
        customer.phones.append(PhoneNumber(store_id=store.id, e164=f"+1555020{n:04}"))
        if n % 3 == 0:
            customer.phones.append(
                PhoneNumber(store_id=store.id, e164=f"+1555021{n:04}", label="home")
            )
        for v in range(2 if rng.random() < 0.2 else 1):
            model, y0, y1, prefix = rng.choice(MODELS)
            year = rng.randint(y0, y1)
            customer.vehicles.append(
                Vehicle(
                    store_id=store.id,
                    dms_id=f"DEMO-V{n:04}-{v + 1}",
                    year=year,
                    make="Chevrolet",
                    model=model,
                    vin=demo_vin(prefix, year, rng),
                    plate=f"{''.join(rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ') for _ in range(3))}"
                    f"-{rng.randint(1000, 9999)}",
                )
            )
        session.add(customer)

        scenario = FIXED.get(n) if n in FIXED else _random_scenario(rng)
        for status, hours_ago in scenario or []:
            opened = now - timedelta(hours=hours_ago)
            history = _history(rng, status, opened, now)
            is_closed = status == PICKED_UP
            promised = opened + timedelta(hours=rng.choice((4, 6, 8, 24)))
            if not is_closed and status != READY and promised < now:
                promised = now + timedelta(hours=rng.uniform(1, 5))  # still ahead of us
            ro = RepairOrder(
                store_id=store.id,
                number=str(ro_number),
                customer=customer,
                vehicle=rng.choice(customer.vehicles),
                advisor=advisor if rng.random() < 0.85 else rng.choice(advisors),
                status=status,
                opened_at=opened,
                promised_at=promised,
                closed_at=history[-1][1] if is_closed else None,
                concern=rng.choice(CONCERNS),
            )
            ro.events = [StatusEventRow(status=s, at=at, source="demo") for s, at in history]
            session.add(ro)
            ro_number += 1
            if not is_closed:
                entries.append(
                    (
                        customer,
                        ThreadEntry(
                            store_id=store.id,
                            kind=ThreadKind.status_change.value,
                            at=history[-1][1],
                            body=f"RO {ro.number} is now {status}.",
                            data={"ro": ro.number, "status": status},
                        ),
                    )
                )
        if n in FIXED:
            entries.append(
                (
                    customer,
                    ThreadEntry(
                        store_id=store.id,
                        kind=ThreadKind.note.value,
                        at=now - timedelta(days=2, minutes=n),
                        author=advisor,
                        body=f"{first} prefers a text when the car is ready.",
                    ),
                )
            )
    session.flush()  # customers get their ids
    for customer, entry in entries:
        entry.customer_id = customer.id
        session.add(entry)
    session.flush()
    _follow_ups(session, store, now)
    _sales(session, store, now)
    return store


def _demo_closures(now: datetime) -> list[dict[str, Any]]:
    """Christmas Eve (short day), Christmas and New Year's Day in the year ahead."""
    found = []
    for year in (now.year, now.year + 1):
        found += [
            {"date": f"{year}-12-24", "name": "Christmas Eve", "hours": [["08:00", "12:00"]]},
            {"date": f"{year}-12-25", "name": "Christmas Day"},
            {"date": f"{year + 1}-01-01", "name": "New Year's Day"},
        ]
    today = now.date().isoformat()
    return [c for c in found if today <= c["date"] <= f"{now.year + 1}-{today[5:]}"]


def _sales(session: Session, store: Store, now: datetime) -> None:
    """The sales department (number, hours, flow `sales`), Sam the salesperson, and a deal for
    every fourth customer's first vehicle (picked by number, not the random generator)."""
    sales_dept = Department(
        store_id=store.id, kind="sales", name="Sales", hours=DEMO_SALES_HOURS, flow="sales"
    )
    session.add(sales_dept)
    session.flush()
    store.numbers.append(StoreNumber(e164=DEMO_SALES_DID, department_id=sales_dept.id))
    username, name, phone, contact = DEMO_SALESPERSON
    sam = session.scalars(select(User).where(User.username == username)).first()
    if sam is None:
        sam = User(
            dms_id=f"DEMO-U-{username}",
            username=username,
            name=name,
            email=f"{username}@demo-chevrolet.example",
            role=Role.advisor.value,
            phone=phone,
            sip_contact=contact,
            groups=["sales"],
            department_id=sales_dept.id,
            active=True,
        )
        session.add(sam)
    if store not in sam.stores:
        sam.stores.append(store)
    for n in range(1, 4 * DEMO_DEALS, 4):
        customer = session.scalars(
            select(Customer).where(
                Customer.store_id == store.id, Customer.dms_id == f"DEMO-C{n:04}"
            )
        ).one()
        vehicle = customer.vehicles[0]
        sales.upsert_purchase(
            session,
            customer=customer,
            purchased_at=now - timedelta(days=200 + 13 * n),
            dms_id=f"DEMO-D{n:04}",
            vehicle=vehicle,
            salesperson=sam,
            condition="used" if n % 3 == 0 else "new",
        )


# Declined repairs offered again (records/followups/): (advisor, description, cents).
DECLINED = (
    ("alice", "Front brake pads at 3 mm", 28950),
    ("alice", "Coolant flush", 14995),
    ("bob", "Rear wiper blade", 2495),
)


def _follow_ups(session: Session, store: Store, now: datetime) -> None:
    """Declined items on advisors' closed ROs of over 30 days ago (so their follow-ups are
    overdue), one declined on alice's open RO two days ago (due in 28 days), an approved and a
    recommended item, and alice's two promises: one waiting for part_arrived, one overdue.
    Picked by query, not by the random generator, so the rest of the demo stays the same."""
    staff = session.scalars(select(User).where(User.stores.contains(store)))
    users = {u.username: u for u in staff}

    def ros(username: str, closed: bool) -> list[RepairOrder]:
        stmt = select(RepairOrder).where(
            RepairOrder.store_id == store.id, RepairOrder.advisor_id == users[username].id
        )
        if closed:
            stmt = stmt.where(
                RepairOrder.closed_at.is_not(None),
                RepairOrder.closed_at < now - timedelta(days=31),
            ).order_by(RepairOrder.closed_at.desc())
        else:
            stmt = stmt.where(is_open_clause()).order_by(RepairOrder.opened_at, RepairOrder.id)
        return list(session.scalars(stmt))

    closed = {name: ros(name, closed=True) for name in ("alice", "bob")}
    for n, (name, description, cents) in enumerate(DECLINED):
        ro = closed[name][n % 2]
        followups.add_line_item(
            session, ro=ro, description=description, estimate_cents=cents,
            status="declined", decided_at=ro.closed_at, dms_id=f"DEMO-L{n + 1}", now=now,
        )  # fmt: skip
    open_ros = ros("alice", closed=False)
    visit, part, call_by = open_ros[0], open_ros[1], open_ros[2]
    for n, (description, cents, status) in enumerate(
        (("Cabin air filter", 5995, "declined"), ("Front wiper blades", 3990, "approved"),
         ("Tire rotation", 2995, "recommended"))
    ):  # fmt: skip
        followups.add_line_item(
            session, ro=visit, description=description, estimate_cents=cents, status=status,
            decided_at=now - timedelta(days=2), dms_id=f"DEMO-V{n + 1}", now=now,
        )  # fmt: skip
    alice = users["alice"].id
    followups.create_promise(
        session, ro=part, text="Call when the part arrives", created_by_id=alice,
        trigger="part_arrived", now=now - timedelta(hours=3),
    )  # fmt: skip
    followups.create_promise(
        session, ro=call_by, text="Call with the estimate by 3 pm", created_by_id=alice,
        due_at=now - timedelta(hours=2), now=now - timedelta(hours=5),
    )  # fmt: skip


def _count(session: Session, model: type, *where: Any) -> int:
    query = select(func.count()).select_from(model)
    for clause in where:
        query = query.where(clause)
    return int(session.scalar(query) or 0)


def _summary(session: Session, store: Store, per_status: int = 3) -> dict[str, Any]:
    """Counts and sample caller IDs per status, read back from the database."""
    in_store = RepairOrder.store_id == store.id
    open_rows = session.execute(
        select(RepairOrder.status, RepairOrder.number, Customer.id, PhoneNumber.e164)
        .join(Customer, Customer.id == RepairOrder.customer_id)
        .join(PhoneNumber, PhoneNumber.customer_id == Customer.id)
        .where(in_store, is_open_clause(), PhoneNumber.label == "mobile")
        .order_by(Customer.id, RepairOrder.opened_at)
    ).all()
    samples: dict[str, list[str]] = {status: [] for status in STANDARD_STATUSES}
    for status, _number, _cid, e164 in open_rows:
        picked = samples.setdefault(status, [])
        if len(picked) < per_status and e164 not in picked:
            picked.append(e164)
    with_open = {cid for _s, _n, cid, _e in open_rows}
    busy = (
        set(session.scalars(select(PhoneNumber.e164).where(PhoneNumber.customer_id.in_(with_open))))
        if with_open
        else set()
    )
    no_open = session.scalars(
        select(PhoneNumber.e164)
        .join(Customer, Customer.id == PhoneNumber.customer_id)
        .where(Customer.store_id == store.id, PhoneNumber.label == "mobile")
        .order_by(Customer.id)
    ).all()
    in_customers = Customer.store_id == store.id
    staff = session.scalars(select(User).where(User.stores.contains(store)).order_by(User.id)).all()
    return {
        "store": {
            "id": store.id,
            "name": store.name,
            "dms_id": store.dms_id,
            "dids": list(store.dids),
            "timezone": store.timezone,
        },
        "counts": {
            "users": len(staff),
            "customers": _count(session, Customer, in_customers),
            "phones": _count(session, PhoneNumber, PhoneNumber.store_id == store.id),
            "vehicles": _count(session, Vehicle, Vehicle.store_id == store.id),
            "repair_orders_open": _count(session, RepairOrder, in_store, is_open_clause()),
            "repair_orders_closed": _count(session, RepairOrder, in_store, ~is_open_clause()),
            "status_events": int(
                session.scalar(
                    select(func.count())
                    .select_from(StatusEventRow)
                    .join(RepairOrder, RepairOrder.id == StatusEventRow.repair_order_id)
                    .where(in_store)
                )
                or 0
            ),
            "thread_entries": _count(session, ThreadEntry, ThreadEntry.store_id == store.id),
        },
        "users": [
            {"username": u.username, "role": u.role, "phone": u.phone, "contact": u.sip_contact}
            for u in staff
        ],
        "samples": {
            **samples,
            "no open repair order": [e for e in no_open if e not in busy][:per_status],
        },
    }
