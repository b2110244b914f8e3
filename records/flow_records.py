"""`SqlRecords`: the flow engine's `Records` protocol backed by the SQL database.

Each method runs a short, synchronous SQLAlchemy unit of work in a thread of its own pool, so a
database round trip never stalls the event loop that is also carrying other calls' audio and
DTMF. Writes publish their event only after the commit, so a listener that reacts by reading
the record finds the new row.

With a `timeout` (the SIP worker's: a caller must not be left ringing), a database that does not
answer in time, or answers with a connection error, raises `RecordsUnavailable`. The pool is
not the event loop's default one: threads still waiting on a dead connection (until the
engine's connect timeout) must not hold up the calls' other thread work (recording checksums).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from events.bus import AsyncEventBus, EventBus
from ivr.domain import AdvisorInfo, CustomerInfo, RepairOrderInfo, StoreInfo, ThreadKind
from ivr.flow.records import LastContact, RecordsUnavailable
from ivr.phone import try_e164
from records import followups, outbound, views
from records.db import session_factory, transaction
from records.models import CallbackTask, Customer, RepairOrder, ThreadEntry

T = TypeVar("T")


class SqlRecords:
    """Implements `ivr.flow.records.Records`. `bus` may be sync or async; None = publish nothing
    (e.g. `driveline flows run` on a laptop without Redis)."""

    def __init__(
        self,
        engine: Engine,
        bus: EventBus | AsyncEventBus | None = None,
        region: str = "US",
        *,
        timeout: float | None = None,
        threads: int = 4,
    ) -> None:
        """`timeout`: seconds one unit of work may take before `RecordsUnavailable` (None: no
        limit, e.g. `driveline flows run`)."""
        self.engine = engine
        self.bus = bus
        self.region = region
        self.timeout = timeout
        self._sessions = session_factory(engine)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="records")

    def close(self) -> None:
        """Stop the pool without waiting for units of work stuck on a dead connection."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- plumbing -----------------------------------------------------------------------------

    def _read(self, fn: Callable[..., T], *args: Any) -> T:
        with self._sessions() as session:
            return fn(session, *args)

    def _write(self, fn: Callable[..., T], *args: Any) -> T:
        with transaction(self._sessions) as session:
            return fn(session, *args)

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        work = asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        try:
            return await asyncio.wait_for(work, self.timeout)
        except TimeoutError:
            raise RecordsUnavailable(f"no answer from the database in {self.timeout:g} s") from None
        except (OperationalError, InterfaceError) as exc:  # connection trouble, not a bad query
            raise RecordsUnavailable(str(exc.orig or exc).splitlines()[0]) from exc

    # --- lookups ------------------------------------------------------------------------------

    async def store_for_did(self, did: str) -> StoreInfo | None:
        return await self._in_thread(self._read, views.load_store_for_did, did, self.region)

    async def stores(self) -> list[StoreInfo]:
        """Every store, with its numbers: the SIP worker's directory of DIDs (sip/directory.py)."""
        return await self._in_thread(self._read, views.load_stores)

    async def store(self, store_id: int) -> StoreInfo | None:
        return await self._in_thread(self._read, views.load_store, store_id)

    async def customer_by_phone(self, store_id: int, phone_e164: str) -> CustomerInfo | None:
        return await self._in_thread(
            self._read, views.load_customer_by_phone, store_id, phone_e164, self.region
        )

    async def repair_order(self, store_id: int, number: str) -> RepairOrderInfo | None:
        return await self._in_thread(self._read, views.load_repair_order, store_id, number)

    async def user(self, store_id: int, username: str) -> AdvisorInfo | None:
        return await self._in_thread(self._read, views.load_user, store_id, username)

    async def group(self, store_id: int, name: str) -> list[AdvisorInfo]:
        return await self._in_thread(self._read, views.load_group, store_id, name)

    async def last_contact(self, store_id: int, phone_e164: str) -> LastContact | None:
        return await self._in_thread(self._read, outbound.last_contact, store_id, phone_e164)

    # --- writes -------------------------------------------------------------------------------

    async def add_thread_entry(
        self,
        store_id: int,
        customer_id: int | None,
        kind: str,
        body: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Append to the customer's thread, then announce `thread.updated`."""
        kind = ThreadKind(kind).value  # ValueError on a kind the thread page cannot show

        def write(session: Session) -> int:
            _check_customer(session, store_id, customer_id)
            entry = ThreadEntry(
                store_id=store_id, customer_id=customer_id, kind=kind, body=body, data=data or {}
            )
            session.add(entry)
            session.flush()
            return entry.id

        entry_id = await self._in_thread(self._write, write)
        await self.publish(
            store_id,
            "thread.updated",
            {"customer_id": customer_id, "entry_id": entry_id, "kind": kind},
        )

    async def create_callback(
        self,
        store_id: int,
        customer_id: int | None,
        phone_e164: str,
        owner_id: int | None,
        due_at: datetime,
        reason: str,
    ) -> None:
        """A callback task, then `callback.created`. An unreadable caller ID is kept as given
        (truncated to the column) rather than dropped: a missed call must still get a task."""
        if due_at.tzinfo is None:
            raise ValueError("due_at must be timezone-aware")
        phone = try_e164(phone_e164, self.region) or (phone_e164 or "unknown")[:20]

        def write(session: Session) -> int:
            _check_customer(session, store_id, customer_id)
            task = CallbackTask(
                store_id=store_id,
                customer_id=customer_id,
                phone=phone,
                owner_id=owner_id,
                due_at=due_at,
                reason=reason,
            )
            session.add(task)
            session.flush()
            return task.id

        task_id = await self._in_thread(self._write, write)
        await self.publish(
            store_id,
            "callback.created",
            {
                "callback_id": task_id,
                "customer_id": customer_id,
                "phone": phone,
                "owner_id": owner_id,
                "due_at": due_at.isoformat(),
                "reason": reason,
            },
        )

    async def create_promise(
        self,
        store_id: int,
        repair_order_id: int,
        text: str,
        trigger: str | None = None,
        due_at: datetime | None = None,
    ) -> None:
        """records/followups/ makes it (owner: the RO's advisor), then `follow_up.changed`."""

        def write(session: Session) -> dict[str, Any]:
            ro = session.get(RepairOrder, repair_order_id)
            if ro is None or ro.store_id != store_id:
                raise ValueError(f"repair order {repair_order_id} is not in store {store_id}")
            fu = followups.create_promise(
                session, ro=ro, text=text, created_by_id=None, trigger=trigger, due_at=due_at
            )
            return {
                "follow_up_id": fu.id,
                "kind": fu.kind,
                "customer_id": fu.customer_id,
                "owner_id": fu.owner_id,
                "due_at": fu.due_at.isoformat() if fu.due_at else None,
                "outcome": None,
            }

        payload = await self._in_thread(self._write, write)
        await self.publish(store_id, "follow_up.changed", payload)

    async def publish(self, store_id: int, event_type: str, payload: dict[str, Any]) -> None:
        if isinstance(self.bus, AsyncEventBus):
            await self.bus.publish(store_id, event_type, payload)
        elif self.bus is not None:
            await asyncio.to_thread(self.bus.publish, store_id, event_type, payload)


def _check_customer(session: Session, store_id: int, customer_id: int | None) -> None:
    """Refuse to write onto another store's customer (a bug upstream, never a caller's doing)."""
    if customer_id is None:
        return
    owner = session.scalar(select(Customer.store_id).where(Customer.id == customer_id))
    if owner != store_id:
        raise ValueError(f"customer {customer_id} does not belong to store {store_id}")
