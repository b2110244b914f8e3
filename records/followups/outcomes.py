"""Working a follow-up: `record_outcome` (booked / not_interested / done close it, no_answer
retries it until `max_attempts`), each a `follow_up` entry on the customer's thread."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from ivr.domain import (
    FollowUpOutcome,
)
from records.followups.common import CLOSING, follow_up_entry, follow_up_title, policy_for
from records.models import (
    FollowUp,
    Store,
    ThreadEntry,
    utcnow,
)

# --- working a follow-up ------------------------------------------------------------------------


@dataclass(frozen=True)
class OutcomeResult:
    follow_up: FollowUp
    entry: ThreadEntry
    closed: bool


class AlreadyClosed(Exception):
    """An outcome for a follow-up that is already closed (the API answers 409)."""


def record_outcome(
    session: Session,
    *,
    follow_up: FollowUp,
    outcome: FollowUpOutcome | str,
    user_id: int | None,
    note: str | None = None,
    now: datetime | None = None,
) -> OutcomeResult:
    """One attempt at the call: booked, not_interested or done close it; no_answer makes it
    due again after the store's retry delay, and closes it as no_answer at `max_attempts`."""
    now = now or utcnow()
    outcome = FollowUpOutcome(outcome)
    if follow_up.done_at is not None:
        raise AlreadyClosed(f"this follow-up was closed ({follow_up.outcome})")
    store = session.get(Store, follow_up.store_id)
    assert store is not None
    policy = policy_for(store)
    follow_up.attempts = (follow_up.attempts or 0) + 1
    closed = outcome in CLOSING or follow_up.attempts >= policy.max_attempts
    label = outcome.value.replace("_", " ")
    if closed:
        follow_up.outcome = outcome.value
        follow_up.done_at = now
        follow_up.done_by_id = user_id
        body = f"{follow_up_title(follow_up)}: {label}"
        if outcome == FollowUpOutcome.no_answer:
            body += f" (attempt {follow_up.attempts} of {policy.max_attempts}; closed)"
    else:
        follow_up.due_at = now + timedelta(days=policy.no_answer_retry_days)
        body = (
            f"{follow_up_title(follow_up)}: {label} (attempt {follow_up.attempts} of "
            f"{policy.max_attempts}); due again {follow_up.due_at:%Y-%m-%d}"
        )
    if note:
        body += f". {note}"
    entry = follow_up_entry(
        session, follow_up, author_id=user_id, body=body, at=now, extra={"note": note}
    )
    entry.data = {**entry.data, "outcome": outcome.value, "closed": closed}
    session.flush()
    return OutcomeResult(follow_up, entry, closed)
