"""Follow-up queues: the calls somebody owes a customer beyond a missed call's callback.

The one place that creates and works `FollowUp` rows:

    line item declined (import, API, DMS webhook) ─▶ declined_service follow-up, due after the
        store's delay, owned by the RO's advisor; idempotent ("declined:<item id>"); the item
        approved or done later closes it as booked
    promise (API, flow) ─▶ due at a time, or waiting on a DMS event (`part_arrived`,
        `status:Ready for Pickup`) until `fire_trigger` makes it due at the event's time
    silent defectors ─▶ customers whose last visit is older than the store's window and who
        have no open RO; `create_defector_follow_ups` turns the list into work
    working one ─▶ `record_outcome`: booked / not_interested / done close it, no_answer retries
        it (closed as no_answer after `max_attempts`); every outcome is a `follow_up` entry on
        the customer's thread

Overdue is `due_at < now` while open, for owners and managers alike. Kept / late / broken
(`promise_state`) is read off `done_at` against `due_at` plus the store's grace.

Functions here flush and never commit: the importer applies each row in a savepoint, the API
commits and then publishes `thread.updated` for the entries returned (see `OutcomeResult`).
"""

from records.followups.common import CLOSING, STATUS_TRIGGER, TRIGGER_NAME, policy_for
from records.followups.defectors import (
    Defector,
    create_defector_follow_ups,
    months_before,
    silent_defectors,
)
from records.followups.line_items import (
    Changes,
    add_line_item,
    line_item_by_dms_id,
    line_items,
    set_line_item_status,
    sync_line_item,
)
from records.followups.outcomes import AlreadyClosed, OutcomeResult, record_outcome
from records.followups.promises import check_trigger, create_promise, fire_trigger, status_trigger
from records.followups.reading import (
    WorkItem,
    details,
    get_follow_up,
    is_open,
    is_overdue,
    list_follow_ups,
    overdue_clause,
    work_list,
)

__all__ = [
    "CLOSING",
    "STATUS_TRIGGER",
    "TRIGGER_NAME",
    "AlreadyClosed",
    "Changes",
    "Defector",
    "OutcomeResult",
    "WorkItem",
    "add_line_item",
    "check_trigger",
    "create_defector_follow_ups",
    "create_promise",
    "details",
    "fire_trigger",
    "get_follow_up",
    "is_open",
    "is_overdue",
    "line_item_by_dms_id",
    "line_items",
    "list_follow_ups",
    "months_before",
    "overdue_clause",
    "policy_for",
    "record_outcome",
    "set_line_item_status",
    "silent_defectors",
    "status_trigger",
    "sync_line_item",
    "work_list",
]
