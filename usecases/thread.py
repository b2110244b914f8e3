"""A customer's thread: notes with @mentions."""

from __future__ import annotations

from sqlalchemy.orm import Session

from events.bus import EventBus, publish
from ivr.mentions import parse_mentions
from records import queries
from records.models import ThreadEntry, User
from usecases.access import scope_of
from usecases.errors import Invalid, NotFound

MAX_NOTE = 10_000


def add_note(
    session: Session, actor: User, bus: EventBus, *, customer_id: int, body: str
) -> ThreadEntry:
    """Post a note; every `@username` must be an active user of the customer's store.

    An unknown mention is refused, naming it, rather than kept as plain text: whoever wrote it
    expects that person to be told, and a silently dropped mention would fail them unnoticed.
    """
    customer = queries.get_customer(session, scope=scope_of(actor), customer_id=customer_id)
    if customer is None:
        raise NotFound("customer not found")
    body = body.strip().replace("\x00", "")
    if not body:
        raise Invalid("write a note first", ("body", "body"))
    if len(body) > MAX_NOTE:
        raise Invalid(f"a note has at most {MAX_NOTE} characters", ("body", "body"))
    names = parse_mentions(body)
    mentioned = queries.users_in_store(session, store_id=customer.store_id, usernames=names)
    known = {u.username.lower() for u in mentioned}
    unknown = [n for n in names if n.lower() not in known]
    if unknown:
        raise Invalid(
            "no such user in this store: " + ", ".join(f"@{n}" for n in unknown), ("body", "body")
        )
    entry = queries.add_note(
        session, customer=customer, author=actor, body=body, mentioned=mentioned
    )
    publish(
        bus,
        customer.store_id,
        "thread.updated",
        {
            "customer_id": customer.id,
            "entry_id": entry.id,
            "kind": entry.kind,
            "mentions": [u.id for u in mentioned],
        },
    )
    return entry
