"""Call events to SQL rows: the call, its legs and recordings, the call's thread entry (its
wording), callback tasks. `CallWriter.apply` is one event in one transaction, idempotent and
order-tolerant; records/call_writer.py is the consumer that feeds it from the stream.

- Re-applying an event changes nothing: the call is keyed by `Call.call_uuid` (unique), its
  thread entry by `ThreadEntry.dedupe_key = "call:<uuid>"` (unique), legs by (role, party,
  started_at), recordings by path, the callback task by `CallbackTask.call_id`.
- Events may come out of order (a pending entry re-read after newer ones, a lost `call.ringing`):
  the first event of a call creates its row from what it carries and later ones only fill in.
- A call the worker answered without the record (`lookup_failed`: the database was down) has
  its caller matched by caller ID here, so its call, message and callback task go to the
  customer's thread and advisor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload

from events.bus import Event
from events.calls import (
    CALLBACK_CREATED,
    THREAD_UPDATED,
    CallAnswered,
    CallbackCreated,
    CallEnded,
    CallEvent,
    CallRinging,
    CallStep,
    CallTransferred,
    ThreadUpdated,
    parse_call_event,
)
from ivr.domain import NEEDS_CALLBACK, Role, ThreadKind
from ivr.flow.steps.voicemail import due_time
from ivr.phone import try_e164
from records import views
from records.call_wording import call_summary, callback_reason, unrecorded_data
from records.db import session_factory, transaction
from records.models import (
    Call,
    CallbackTask,
    CallLeg,
    Customer,
    Department,
    Recording,
    ThreadEntry,
    User,
    user_stores,
)

log = logging.getLogger(__name__)

CALLBACK_DUE_S = 7200.0  # same default as the voicemail step: within two business hours
# How far apart a flow's own voicemail entry / callback task and the call's times may be and
# still be recognised as belonging to that call (clocks of worker and database may differ).
MATCH_SLACK = timedelta(minutes=2)
UNKNOWN = "unknown"

Notice = tuple[int, str, dict[str, Any]]  # (store_id, event type, data), sent after the commit


class CallWriter:
    """Applies one call event per transaction. No Redis here: the consumer below feeds it."""

    def __init__(self, engine: Engine, *, region: str = "US") -> None:
        self._sessions = session_factory(engine)
        self.region = region
        self._handlers: dict[type[CallEvent], Callable[[Session, Any, bool], list[Notice]]] = {
            CallRinging: self._ringing,
            CallAnswered: self._answered,
            CallStep: self._step,
            CallTransferred: self._transferred,
            CallEnded: self._ended,
        }

    def apply(self, event: Event, *, redelivered: bool = False) -> list[Notice]:
        """Write one event; returns the notifications to publish once it is committed.

        `redelivered` (a pending entry read again) re-sends `thread.updated` even when the rows
        already existed, because the crash may have come between the commit and the publish.
        Raises pydantic.ValidationError for a malformed call event.
        """
        payload = parse_call_event(event)
        if payload is None:
            return []
        with transaction(self._sessions) as session:
            return self._handlers[type(payload)](session, payload, redelivered)

    # --- per event ----------------------------------------------------------------------------

    def _ringing(self, session: Session, p: CallRinging, _redelivered: bool) -> list[Notice]:
        call = self._call(session, p)
        known = p.customer.id if p.customer else None
        self._fill(session, call, p, started_at=p.at, customer_id=known)
        self._department(session, call, p.department.id if p.department else None)
        return []

    def _answered(self, session: Session, p: CallAnswered, _redelivered: bool) -> list[Notice]:
        call = self._call(session, p)
        call.answered_at = min(call.answered_at or p.at, p.at)
        caller_leg = self._caller_leg(call)
        caller_leg.answered_at = caller_leg.answered_at or p.at
        return []

    def _step(self, session: Session, p: CallStep, _redelivered: bool) -> list[Notice]:
        # The path is written from `call.ended`; a step only makes sure the call has a row.
        self._call(session, p)
        return []

    def _transferred(
        self, session: Session, p: CallTransferred, _redelivered: bool
    ) -> list[Notice]:
        call = self._call(session, p)
        user_id = self._user_in_store(session, call.store_id, p.target.user_id)
        leg = self._leg(call, "advisor", p.target.contact, p.started_at, user_id)
        if p.result == "answered":
            leg.answered_at = leg.answered_at or p.at
            call.advisor_id = call.advisor_id or user_id
        elif leg.ended_at is None:
            leg.ended_at = p.at  # rang out: that leg is over
        return []

    def _ended(self, session: Session, p: CallEnded, redelivered: bool) -> list[Notice]:
        call = self._call(session, p)
        self._fill(session, call, p, started_at=p.started_at, customer_id=p.customer_id)
        self._department(session, call, p.department_id)
        call.ended_at = p.ended_at
        call.disposition = p.disposition.value
        if p.flow_path:
            call.flow_path = list(p.flow_path)
        if p.answered_at is not None:
            call.answered_at = min(call.answered_at or p.answered_at, p.answered_at)
        for info in p.legs:
            user_id = self._user_in_store(session, call.store_id, info.user_id)
            if info.role == "caller":
                leg = self._caller_leg(call)
            else:
                leg = self._leg(call, "advisor", info.party, info.started_at, user_id)
            leg.answered_at = leg.answered_at or info.answered_at
            leg.ended_at = info.ended_at or leg.ended_at
            if info.role == "advisor" and info.answered_at is not None:
                call.advisor_id = call.advisor_id or user_id
        for leg in call.legs:
            if leg.ended_at is None:
                leg.ended_at = p.ended_at
        session.flush()
        self._recordings(session, call, p)
        self._link_flow_voicemail(session, call)

        notices: list[Notice] = []
        entry, created = self._call_entry(session, call, p)
        if created or redelivered:
            update = ThreadUpdated(
                customer_id=entry.customer_id,
                entry_id=entry.id,
                kind=entry.kind,
                call_uuid=p.call_uuid,
            )
            notices.append((call.store_id, THREAD_UPDATED, update.model_dump(mode="json")))
        if p.disposition in NEEDS_CALLBACK and p.direction == "inbound":  # we called them
            task = self._ensure_callback(session, call, p)
            if task is not None:
                made = CallbackCreated(
                    callback_id=task.id,
                    customer_id=task.customer_id,
                    owner_id=task.owner_id,
                    phone=task.phone,
                    due_at=task.due_at,
                    reason=task.reason,
                    call_uuid=p.call_uuid,
                )
                notices.append((call.store_id, CALLBACK_CREATED, made.model_dump(mode="json")))
        return notices

    # --- rows ---------------------------------------------------------------------------------

    def _call(self, session: Session, p: CallEvent) -> Call:
        """The call's row; the first event seen for a call creates it with what it knows."""
        call = session.scalar(
            select(Call).where(Call.call_uuid == p.call_uuid).options(selectinload(Call.legs))
        )
        if call is not None:
            if call.store_id != p.store_id:
                log.warning(
                    "call %s: event for store %s, row is store %s; keeping the row's",
                    p.call_uuid,
                    p.store_id,
                    call.store_id,
                )
            return call
        call = Call(
            call_uuid=p.call_uuid,
            store_id=p.store_id,
            direction="inbound",
            from_number=UNKNOWN,
            to_number=UNKNOWN,
            started_at=p.at,
            flow_path=[],
        )
        call.legs.append(CallLeg(role="caller", party=UNKNOWN, started_at=p.at))
        session.add(call)
        session.flush()  # an unknown store fails here, as an IntegrityError
        return call

    def _fill(
        self,
        session: Session,
        call: Call,
        p: CallRinging | CallEnded,
        *,
        started_at: datetime,
        customer_id: int | None,
    ) -> None:
        """Fill what an earlier, sparser event could not know; never overwrite what is known.
        `customer_id` is the one the worker looked up (None when it could not)."""
        caller, did, direction = p.caller or p.caller_raw, p.did, p.direction
        customer_id = self._caller_customer(session, call, customer_id, p.caller, p.lookup_failed)
        caller_leg = self._caller_leg(call)
        if call.from_number == UNKNOWN and caller:
            call.from_number = caller[:40]
            caller_leg.party = caller[:200]
        if call.to_number == UNKNOWN and did:
            call.to_number = did[:40]
        if started_at < call.started_at:
            call.started_at = started_at
            caller_leg.started_at = min(caller_leg.started_at, started_at)
        if call.customer_id is None and customer_id is not None:
            call.customer_id = self._customer_in_store(session, call.store_id, customer_id)
        call.direction = direction

    def _caller_leg(self, call: Call) -> CallLeg:
        for leg in call.legs:
            if leg.role == "caller":
                return leg
        leg = CallLeg(role="caller", party=call.from_number, started_at=call.started_at)
        call.legs.append(leg)
        return leg

    def _leg(
        self, call: Call, role: str, party: str, started_at: datetime, user_id: int | None
    ) -> CallLeg:
        for leg in call.legs:
            if leg.role == role and leg.party == party[:200] and leg.started_at == started_at:
                leg.user_id = leg.user_id or user_id
                return leg
        leg = CallLeg(role=role, party=party[:200], user_id=user_id, started_at=started_at)
        call.legs.append(leg)
        return leg

    def _recordings(self, session: Session, call: Call, p: CallEnded) -> None:
        if not p.recordings:
            return
        known = set(session.scalars(select(Recording.path).where(Recording.call_id == call.id)))
        for info in p.recordings:
            if info.path in known:
                continue
            session.add(
                Recording(
                    call_id=call.id,
                    leg_id=self._leg_for_role(call, info.leg_role),
                    kind=info.kind,
                    path=info.path,
                    sha256=info.sha256,
                    duration_s=info.duration_s,
                    consent_played=info.consent_played,
                )
            )
            known.add(info.path)

    def _leg_for_role(self, call: Call, role: str) -> int | None:
        legs = [leg for leg in call.legs if leg.role == role]
        answered = [leg for leg in legs if leg.answered_at is not None]
        chosen = (answered or legs)[-1:] if legs else []
        return chosen[0].id if chosen else None

    def _call_entry(self, session: Session, call: Call, p: CallEnded) -> tuple[ThreadEntry, bool]:
        key = f"call:{call.call_uuid}"
        entry = session.scalar(select(ThreadEntry).where(ThreadEntry.dedupe_key == key))
        if entry is not None:
            return entry, False
        advisor = session.get(User, call.advisor_id) if call.advisor_id else None
        entry = ThreadEntry(
            store_id=call.store_id,
            customer_id=call.customer_id,  # None: the unmatched calls list
            kind=ThreadKind.call.value,
            at=call.started_at,
            body=call_summary(call, p, advisor.name if advisor else None),
            data={
                "call_uuid": call.call_uuid,
                "disposition": p.disposition.value,
                "duration": round(p.duration_s, 1),
                "recordings": [r.model_dump(mode="json") for r in p.recordings],
                "caller": call.from_number,
                **unrecorded_data(p),
            },
            call_id=call.id,
            dedupe_key=key,
        )
        session.add(entry)
        session.flush()
        return entry, True

    def _link_flow_voicemail(self, session: Session, call: Call) -> None:
        """The voicemail step writes its entry without knowing the call's id; adopt it, so
        linking the call to a customer later moves the voicemail along with it."""
        candidates = session.scalars(
            select(ThreadEntry).where(
                ThreadEntry.store_id == call.store_id,
                ThreadEntry.kind == ThreadKind.voicemail.value,
                ThreadEntry.call_id.is_(None),
                ThreadEntry.at >= call.started_at - MATCH_SLACK,
                ThreadEntry.at <= (call.ended_at or call.started_at) + MATCH_SLACK,
            )
        )
        for entry in candidates:
            same_caller = (entry.data or {}).get("caller") == call.from_number
            if same_caller and entry.customer_id == call.customer_id:
                entry.call_id = call.id

    def _ensure_callback(self, session: Session, call: Call, p: CallEnded) -> CallbackTask | None:
        """Make sure somebody owes this caller a call back; returns the task only if made now.

        The flow's voicemail step may have made one already: it is found by the id `call.ended`
        carries, else as the open task for this number created during the call, and adopted
        (its `call_id` set) so a redelivery finds it by the call from then on.
        """
        task = session.scalar(select(CallbackTask).where(CallbackTask.call_id == call.id).limit(1))
        if task is None and p.callback is not None and p.callback.callback_id is not None:
            found = session.get(CallbackTask, p.callback.callback_id)
            if found is not None and found.store_id == call.store_id and found.call_id is None:
                task = found
        if task is None:
            task = session.scalar(
                select(CallbackTask)
                .where(
                    CallbackTask.store_id == call.store_id,
                    CallbackTask.call_id.is_(None),
                    CallbackTask.phone == call.from_number[:20],
                    CallbackTask.created_at >= call.started_at - MATCH_SLACK,
                    CallbackTask.created_at <= (call.ended_at or call.started_at) + MATCH_SLACK,
                )
                .order_by(CallbackTask.id)
                .limit(1)
            )
        if task is not None:
            task.call_id = call.id
            if task.owner_id is None:  # a missed call always has an owner
                task.owner_id = self._default_owner(session, call)
            return None

        wanted = p.callback.owner_id if p.callback else None
        owner_id = self._user_in_store(session, call.store_id, wanted, active_only=True)
        due = p.callback.due_at if p.callback and p.callback.due_at else None
        if due is None:
            store = views.load_store(session, call.store_id)
            due = (
                due_time(store, p.ended_at, CALLBACK_DUE_S, business_hours=True)
                if store is not None
                else p.ended_at + timedelta(seconds=CALLBACK_DUE_S)
            )
        task = CallbackTask(
            store_id=call.store_id,
            customer_id=call.customer_id,
            phone=(try_e164(call.from_number, self.region) or call.from_number)[:20],
            owner_id=owner_id or self._default_owner(session, call),
            reason=(p.callback.reason if p.callback else "") or callback_reason(call, p),
            due_at=due,
            call_id=call.id,
        )
        session.add(task)
        session.flush()
        if task.owner_id is None:
            log.warning(
                "call %s: store %s has no active user to own the callback",
                call.call_uuid,
                call.store_id,
            )
        return task

    # --- lookups ------------------------------------------------------------------------------

    def _default_owner(self, session: Session, call: Call) -> int | None:
        """The customer's assigned advisor, else the store's first active advisor, else its
        first active user (a manager): somebody must own a missed call."""
        if call.customer_id is not None:
            customer = views.load_customer(session, call.customer_id, call.store_id)
            if customer is not None and customer.advisor is not None:
                owner = self._user_in_store(
                    session, call.store_id, customer.advisor.id, active_only=True
                )
                if owner is not None:
                    return owner
        advisors = views.load_group(session, call.store_id, "service")
        if advisors:
            return advisors[0].id
        anyone = session.scalar(
            select(User.id)
            .join(user_stores, user_stores.c.user_id == User.id)
            .where(user_stores.c.store_id == call.store_id, User.active.is_(True))
            .order_by(User.role != Role.manager.value, User.id)
            .limit(1)
        )
        return anyone

    def _user_in_store(
        self, session: Session, store_id: int, user_id: int | None, *, active_only: bool = False
    ) -> int | None:
        """`user_id` if it is a user of this store (a bad id in an event must not become a
        foreign-key error or another store's user); else None."""
        if user_id is None:
            return None
        query = (
            select(User.id)
            .join(user_stores, user_stores.c.user_id == User.id)
            .where(User.id == user_id, user_stores.c.store_id == store_id)
        )
        if active_only:
            query = query.where(User.active.is_(True))
        return session.scalar(query)

    def _department(self, session: Session, call: Call, department_id: int | None) -> None:
        """The dialled department, if it is this store's (never overwritten once known)."""
        if call.department_id is not None or department_id is None:
            return
        owner = session.scalar(select(Department.store_id).where(Department.id == department_id))
        if owner == call.store_id:
            call.department_id = department_id

    def _caller_customer(
        self,
        session: Session,
        call: Call,
        customer_id: int | None,
        caller: str | None,
        lookup_failed: bool,
    ) -> int | None:
        """The customer an event names; for a caller the worker could not look up, the one
        their caller ID belongs to (found now that the database answers)."""
        if customer_id is not None or not lookup_failed or call.customer_id is not None:
            return customer_id
        e164 = try_e164(caller or "", self.region)
        return views.find_customer_id_by_phone(session, call.store_id, e164) if e164 else None

    def _customer_in_store(
        self, session: Session, store_id: int, customer_id: int | None
    ) -> int | None:
        if customer_id is None:
            return None
        owner = session.scalar(select(Customer.store_id).where(Customer.id == customer_id))
        if owner != store_id:
            log.warning(
                "customer %s is not in store %s; call left unmatched", customer_id, store_id
            )
            return None
        return customer_id
