"""Working follow-ups: a promise made on a repair order, the outcome of a follow-up call.

The rules (triggers, retries, wording) live in records/followups/; these functions add who
may do it (advisors work their own follow-ups, managers and admins their stores'), the commit
and the events, so the API and the pages cannot differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from events.bus import EventBus
from records import followups, queries
from records.models import FollowUp, RepairOrder, ThreadEntry, User
from usecases.access import own_only, scope_of
from usecases.announce import Announcements
from usecases.errors import Conflict, Invalid, NotFound


def publish_follow_up_changes(
    bus: EventBus,
    store_id: int,
    follow_ups: Sequence[FollowUp],
    entries: Sequence[ThreadEntry],
) -> None:
    """After the commit: each follow-up that changed, and each thread entry written."""
    said = Announcements()
    said.follow_ups(store_id, follow_ups, entries)
    said.send(bus)


def find_follow_up(session: Session, actor: User, follow_up_id: int) -> FollowUp:
    """One the actor may work: in their stores and, for an advisor, their own."""
    fu = followups.get_follow_up(
        session, scope=scope_of(actor), follow_up_id=follow_up_id, owner_id=own_only(actor)
    )
    if fu is None:
        raise NotFound("follow-up not found")
    return fu


def repair_order_by_number(session: Session, actor: User, number: str) -> RepairOrder:
    """The one RO with this number in the actor's stores (a page asks by number)."""
    found = queries.repair_orders_by_number(
        session, scope=scope_of(actor), number=number.strip().replace("\x00", "")
    )
    if not found:
        raise NotFound("no such repair order", ("body", "ro_number"))
    if len(found) > 1:
        raise Invalid("that RO exists in several stores", ("body", "ro_number"))
    return found[0]


def record_promise(
    session: Session,
    actor: User,
    bus: EventBus,
    *,
    repair_order_id: int,
    text: str,
    due_at: datetime | None = None,
    trigger: str | None = None,
    owner_id: int | None = None,
) -> FollowUp:
    """A promise on a repair order: "call by 3 pm" (`due_at`) or "call when the part arrives"
    (`trigger`), exactly one. Its owner (default the actor) must be an active user of the RO's
    store."""
    ro = queries.get_repair_order(session, scope=scope_of(actor), ro_id=repair_order_id)
    if ro is None:
        raise NotFound("repair order not found")
    text = text.strip().replace("\x00", "")
    if not text:
        raise Invalid("say what you promised", ("body", "text"))
    if (due_at is None) == (trigger is None):
        raise Invalid("give either due_at or trigger", ("body", "due_at"))
    owner_id = owner_id or actor.id
    if queries.user_in_store(session, store_id=ro.store_id, user_id=owner_id) is None:
        raise Invalid("the owner must be an active user of the store", ("body", "owner_id"))
    try:
        fu = followups.create_promise(
            session,
            ro=ro,
            text=text,
            created_by_id=actor.id,
            owner_id=owner_id,
            due_at=due_at,
            trigger=trigger,
            department_id=actor.department_id,
        )
    except ValueError as exc:
        session.rollback()
        raise Invalid(str(exc), ("body", "trigger")) from None
    session.commit()
    session.refresh(fu, attribute_names=["owner"])
    publish_follow_up_changes(bus, fu.store_id, [fu], [])
    return fu


def record_outcome(
    session: Session,
    actor: User,
    bus: EventBus,
    *,
    follow_up_id: int,
    outcome: str,
    note: str | None = None,
) -> followups.OutcomeResult:
    """The result of a call, written on the customer's thread: booked, not_interested and done
    close the follow-up; no_answer makes it due again (closed after the store's max attempts).
    A closed follow-up is a Conflict."""
    fu = find_follow_up(session, actor, follow_up_id)
    note = (note or "").strip().replace("\x00", "") or None
    try:
        result = followups.record_outcome(
            session, follow_up=fu, outcome=outcome, user_id=actor.id, note=note
        )
    except followups.AlreadyClosed as exc:
        session.rollback()
        raise Conflict(str(exc), ("path", "follow_up_id")) from None
    except ValueError:
        session.rollback()
        raise Invalid(f"{outcome!r} is not an outcome", ("body", "outcome")) from None
    session.commit()
    session.refresh(result.entry, attribute_names=["author", "mentions"])
    publish_follow_up_changes(bus, fu.store_id, [fu], [result.entry])
    return result
