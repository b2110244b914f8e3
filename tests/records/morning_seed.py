"""A seeded week for the morning view: calls, callbacks and follow-ups across two departments
(service and sales) of one store in America/Chicago, with decoys in another store and just
outside the week. Each row has a short name; tests compare the names behind each figure with
the hand-computed lists written in the test (tests/records/test_morning.py explains each one).

Week: Mon 16 to Sun 22 Nov 2026, local. "Now" is Mon 23 Nov, 07:00 local (13:00 UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from records.models import (
    Call,
    CallbackTask,
    Customer,
    Department,
    FollowUp,
    RepairOrder,
    StatusEventRow,
    Store,
    User,
)

CHICAGO = ZoneInfo("America/Chicago")
NOW = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
STATUS = ["main.greet", "main.menu", "status_check.say_status"]


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Local Chicago time on a day of November 2026, as UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=CHICAGO).astimezone(UTC)


def seed_week(session: Session, *, store: Store, other: Store) -> dict[str, int]:
    """Rows of the week in `store` (decoys in `other`); returns name → id."""
    store.timezone = "America/Chicago"
    service = Department(store_id=store.id, kind="service", name="Service")
    sales = Department(store_id=store.id, kind="sales", name="Sales")
    session.add_all([service, sales])
    session.flush()
    ann = User(username="m_ann", name="Ann Service", role="advisor", department_id=service.id)
    sam = User(username="m_sam", name="Sam Sales", role="advisor", department_id=sales.id)
    session.add_all([ann, sam])
    session.flush()
    ids: dict[str, int] = {"service": service.id, "sales": sales.id}

    c1 = Customer(store_id=store.id, first_name="Cora", last_name="One", advisor_id=ann.id)
    c2 = Customer(store_id=store.id, first_name="Cy", last_name="Two", advisor_id=ann.id)
    c3 = Customer(store_id=store.id, first_name="Cal", last_name="Three")
    cb = Customer(store_id=other.id, first_name="Bo", last_name="Other")
    session.add_all([c1, c2, c3, cb])
    session.flush()
    ids.update(cust1=c1.id, cust2=c2.id, cust3=c3.id)
    # C1's RO last changed Mon 08:00; C2's changed Sat 12:00.
    session.add_all(
        [
            RepairOrder(
                store_id=store.id,
                number="M-1",
                customer_id=c1.id,
                status="Waiting on Parts",
                opened_at=at(16, 7),
                events=[StatusEventRow(status="Waiting on Parts", at=at(16, 8))],
            ),
            RepairOrder(
                store_id=store.id,
                number="M-2",
                customer_id=c2.id,
                status="Tech Working",
                opened_at=at(20, 7),
                events=[StatusEventRow(status="Tech Working", at=at(21, 12))],
            ),
        ]
    )

    def call(
        name: str,
        when: datetime,
        disposition: str,
        department: Department | None,
        customer: Customer | None = None,
        path: list[str] | None = None,
        direction: str = "inbound",
        in_store: Store = store,
    ) -> Call:
        row = Call(
            call_uuid=f"morning-{name}-{in_store.id}",
            store_id=in_store.id,
            customer_id=customer.id if customer else None,
            direction=direction,
            from_number="+15550400000",
            to_number="+15550300100",
            started_at=when,
            answered_at=None if disposition == "missed" else when,
            ended_at=when.replace(second=50),
            disposition=disposition,
            department_id=department.id if department else None,
            flow_path=path or [],
        )
        session.add(row)
        session.flush()
        ids[name] = row.id
        return row

    calls = {
        # service (None means service)
        "c1": call("c1", at(16, 9), "handled_by_ivr", None, c1, STATUS),
        "c2": call("c2", at(17, 10), "handled_by_ivr", service, c1, STATUS),
        "c3": call("c3", at(18, 11), "missed", service, c1),
        "c4": call("c4", at(19, 12), "abandoned", None),
        "c5": call("c5", at(20, 13), "voicemail", service, c2),
        "c6": call("c6", at(21, 14), "transferred", service, c2, STATUS),
        "c7": call("c7", at(22, 23, 30), "missed", None),
        "c8": call("c8", at(18, 15), "transferred", service, c1, direction="outbound"),
        "c9": call("c9", at(15, 23, 30), "missed", service),  # Sunday before: outside
        "c10": call("c10", at(23, 0, 30), "missed", service),  # Monday after: outside
        "c11": call("c11", at(19, 8), "failed", service),
        # sales
        "c20": call("c20", at(16, 10), "transferred", sales, c3),
        "c21": call("c21", at(17, 11), "missed", sales),
        "c22": call("c22", at(17, 12), "missed", sales),
        "c23": call("c23", at(20, 9), "handled_by_ivr", sales, c1, STATUS),
        # another store
        "c30": call("c30", at(18, 11), "missed", None, in_store=other),
    }

    def callback(
        name: str,
        created: datetime,
        due: datetime,
        done: datetime | None,
        call_name: str | None = None,
        owner: User | None = None,
        in_store: Store = store,
    ) -> None:
        row = CallbackTask(
            store_id=in_store.id,
            phone="+15550400000",
            owner_id=owner.id if owner else None,
            created_at=created,
            due_at=due,
            done_at=done,
            call_id=calls[call_name].id if call_name else None,
        )
        session.add(row)
        session.flush()
        ids[name] = row.id

    callback("k1", at(18, 11, 5), at(18, 13), at(18, 11, 35), "c3")
    callback("k2", at(20, 13, 10), at(20, 15), at(20, 16, 10), "c5")
    callback("k3", at(22, 23, 35), at(23, 9), None, "c7")
    callback("k4", at(17, 11, 5), at(17, 13), None, "c21", owner=ann)  # call's dept wins
    callback("k5", at(17, 12, 5), at(17, 14), at(17, 12, 25), "c22")
    callback("k6", at(13, 9), at(16, 9), at(16, 10), owner=sam)
    callback("k7", at(19, 8), at(19, 10), None, owner=ann)
    callback("k8", at(10, 9), at(12, 9), at(12, 10), owner=ann)
    callback("k9", at(19, 12, 5), at(19, 14), at(23, 8), "c4")
    callback("k10", at(18, 9), at(18, 10), None, "c30", in_store=other)

    def follow_up(
        name: str,
        kind: str,
        department: Department | None,
        due: datetime | None,
        done: datetime | None = None,
        outcome: str | None = None,
        customer: Customer = c1,
        in_store: Store = store,
    ) -> None:
        row = FollowUp(
            store_id=in_store.id,
            department_id=department.id if department else None,
            customer_id=customer.id,
            kind=kind,
            owner_id=ann.id,
            due_at=due,
            done_at=done,
            outcome=outcome,
            created_at=at(9, 9),
            dedupe_key=f"morning-{name}-{in_store.id}",
        )
        session.add(row)
        session.flush()
        ids[name] = row.id

    follow_up("p1", "promise", None, at(17, 15), at(17, 15, 10), "done")
    follow_up("p2", "promise", service, at(18, 15), at(18, 15, 20), "done")
    follow_up("p3", "promise", service, at(19, 15))
    follow_up("p4", "promise", sales, at(22, 23, 50))
    follow_up("p5", "promise", sales, at(21, 10), at(23, 8), "done")
    follow_up("p6", "promise", service, None)  # waiting for its DMS trigger
    follow_up("p7", "promise", sales, at(20, 9), at(20, 9, 15), "done")
    follow_up("d1", "declined_service", None, at(16, 9), at(16, 11), "booked")
    follow_up("d2", "declined_service", None, at(17, 9), None, "no_answer")
    follow_up("d3", "declined_service", service, at(9, 9), at(18, 10), "not_interested")
    follow_up("d4", "declined_service", service, at(21, 9), at(21, 9, 30), "booked")
    follow_up("d5", "declined_service", None, at(17, 9), at(17, 10), "booked", cb, other)
    follow_up("d6", "defector", service, at(17, 9))
    session.flush()
    return ids
