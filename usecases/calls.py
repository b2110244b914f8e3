"""An unknown caller's call, put on the right customer's thread."""

from __future__ import annotations

from sqlalchemy.orm import Session

from events.bus import EventBus, publish
from events.calls import THREAD_UPDATED, ThreadUpdated
from records import queries
from records.models import Call, User
from usecases.access import scope_of
from usecases.errors import Invalid, NotFound


def link_call(
    session: Session,
    actor: User,
    bus: EventBus,
    *,
    call_id: int,
    customer_id: int,
    add_phone: bool = False,
) -> Call:
    """Put a call on a customer's thread (its entry, voicemail and callback task move with it).

    Linking an already linked call moves it: that is how a wrong link is fixed. With
    `add_phone` the caller's number joins the customer's, so their next call pops.
    """
    scope = scope_of(actor)
    call = queries.get_call(session, scope=scope, call_id=call_id)
    if call is None:
        raise NotFound("call not found")
    customer = queries.get_customer(session, scope=scope, customer_id=customer_id)
    if customer is None:
        raise NotFound("customer not found")
    if customer.store_id != call.store_id:
        raise Invalid("the customer belongs to another store", ("body", "customer_id"))
    if add_phone and not call.from_number.startswith("+"):
        raise Invalid("the caller's number is not a phone number", ("body", "add_phone"))
    previous = call.customer_id
    entries = queries.link_call(session, call=call, customer=customer, add_phone=add_phone)
    for entry in entries:
        update = ThreadUpdated(
            customer_id=customer.id, entry_id=entry.id, kind=entry.kind, call_uuid=call.call_uuid
        )
        publish(bus, call.store_id, THREAD_UPDATED, update.model_dump(mode="json"))
        if previous is not None and previous != customer.id:  # it left that thread
            gone = update.model_copy(update={"customer_id": previous})
            publish(bus, call.store_id, THREAD_UPDATED, gone.model_dump(mode="json"))
    return call
