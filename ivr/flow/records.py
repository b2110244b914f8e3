"""What the flow engine may ask of, and tell, the shared record.

The SQL adapter (`records.flow_records.SqlRecords`) implements this for real calls and
`driveline flows run`; `FakeRecords` (ivr/flow/fakes.py) implements it in memory for flow tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from ivr.domain import AdvisorInfo, CustomerInfo, RepairOrderInfo, StoreInfo


class RecordsUnavailable(Exception):
    """The record could not be reached in time (database down, unreachable or too slow): the
    call goes on without it (the SIP worker's `records_down` flow) instead of waiting."""


@dataclass(frozen=True)
class LastContact:
    """Who called this customer lately, and how the store routes their call back: `direct`
    (straight to that advisor) or `offer` (the caller chooses)."""

    advisor: AdvisorInfo
    mode: Literal["direct", "offer"] = "direct"


class Records(Protocol):
    async def store_for_did(self, did: str) -> StoreInfo | None:
        """The store a dialed number (E.164) belongs to."""

    async def store(self, store_id: int) -> StoreInfo | None: ...

    async def customer_by_phone(self, store_id: int, phone_e164: str) -> CustomerInfo | None:
        """The caller, with vehicles, open repair orders (oldest first) and assigned advisor."""

    async def repair_order(self, store_id: int, number: str) -> RepairOrderInfo | None:
        """A repair order by its number as a caller keys it (digits only)."""

    async def user(self, store_id: int, username: str) -> AdvisorInfo | None: ...

    async def group(self, store_id: int, name: str) -> list[AdvisorInfo]:
        """Members of a ring group ("service" is every advisor of the store outside other
        departments; a department's kind, e.g. "sales", is its users: `department:` targets)."""

    async def last_contact(self, store_id: int, phone_e164: str) -> LastContact | None:
        """The advisor who last called this number (masked outbound call) within the store's
        sticky-callback window: the `last_contacted_advisor` transfer target."""

    async def add_thread_entry(
        self,
        store_id: int,
        customer_id: int | None,
        kind: str,
        body: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Append to the customer's thread and announce `thread.updated`."""

    async def create_callback(
        self,
        store_id: int,
        customer_id: int | None,
        phone_e164: str,
        owner_id: int | None,
        due_at: datetime,
        reason: str,
    ) -> None:
        """A task so that a missed caller always has an owner; announces `callback.created`."""

    async def create_promise(
        self,
        store_id: int,
        repair_order_id: int,
        text: str,
        trigger: str | None = None,
        due_at: datetime | None = None,
    ) -> None:
        """A promise on the RO for its advisor: due at `due_at`, or when the DMS reports
        `trigger` (`part_arrived`, `status:Ready for Pickup`)."""

    async def publish(self, store_id: int, event_type: str, payload: dict[str, Any]) -> None:
        """Announce a domain event (e.g. `ro.pickup_confirmed`) to the store's listeners."""
