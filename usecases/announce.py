"""What a workflow tells the other processes once its rows are committed: events on the bus and
jobs on the outbound queue.

A use case collects them while it writes (ids are known after a flush) and sends them after the
commit, so a listener never hears of a row that was rolled back; the importer, which commits a
whole file at once, sends every row's announcements after its one commit. Redis being down never
undoes or fails a write: each send is logged and dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from events import outbound
from events.bus import EventBus, publish
from records.models import FollowUp, ThreadEntry

log = logging.getLogger(__name__)

FOLLOW_UP_CHANGED = "follow_up.changed"
THREAD_UPDATED = "thread.updated"


@dataclass
class Announcements:
    """Events (store id, type, data) and outbound jobs, in the order they are to be sent."""

    events: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    jobs: list[outbound.OutboundJob] = field(default_factory=list)

    def event(self, store_id: int, type: str, data: dict[str, Any]) -> None:
        self.events.append((store_id, type, data))

    def thread_entry(self, entry: ThreadEntry) -> None:
        self.event(
            entry.store_id,
            THREAD_UPDATED,
            {"customer_id": entry.customer_id, "entry_id": entry.id, "kind": entry.kind},
        )

    def follow_ups(
        self, store_id: int, follow_ups: Sequence[FollowUp], entries: Sequence[ThreadEntry]
    ) -> None:
        """Each follow-up that changed, and each thread entry written."""
        for fu in follow_ups:
            self.event(
                store_id,
                FOLLOW_UP_CHANGED,
                {
                    "follow_up_id": fu.id,
                    "kind": fu.kind,
                    "customer_id": fu.customer_id,
                    "owner_id": fu.owner_id,
                    "due_at": fu.due_at.isoformat() if fu.due_at else None,
                    "outcome": fu.outcome,
                },
            )
        for entry in entries:
            self.thread_entry(entry)

    def extend(self, other: Announcements) -> None:
        self.events += other.events
        self.jobs += other.jobs

    def send(self, bus: EventBus) -> None:
        """After the commit: publish every event and queue every job (each failure logged)."""
        for store_id, type, data in self.events:
            publish(bus, store_id, type, data)
        for job in self.jobs:
            try:
                outbound.enqueue(bus.redis, job)
            except Exception:  # noqa: BLE001 - the call row is saved; the call is a bonus
                log.exception("could not queue outbound call %s", job.call_uuid)
