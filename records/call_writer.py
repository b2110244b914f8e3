"""The one consumer that turns call events into SQL rows (calls, legs, recordings, the call's
thread entry, callback tasks), in stream order and idempotently.

SIP workers never write call rows themselves (DESIGN: SQLite has one writer; dozens of workers
would queue on its lock). They publish `events/calls.py` events; this reads the Redis stream
`driveline:events` through a consumer group:

- An entry is XACKed only after its transaction committed (and its notifications were sent),
  so a crash at any point leaves it pending. On start, and after any error, the consumer first
  re-reads its own pending entries (XREADGROUP id 0); entries another consumer left pending for
  longer than `claim_idle_ms` are taken over with XAUTOCLAIM. Nothing read is ever lost.
- Re-applying an event changes nothing: the call is keyed by `Call.call_uuid` (unique), its
  thread entry by `ThreadEntry.dedupe_key = "call:<uuid>"` (unique), legs by (role, party,
  started_at), recordings by path, the callback task by `CallbackTask.call_id`.
- Events may come out of order (a pending entry re-read after newer ones, a lost `call.ringing`):
  the first event of a call creates its row from what it carries and later ones only fill in.
- An entry that can never be applied (bad payload, unknown store) goes to the dead-letter
  stream and is acked, so one bad event cannot stop every later call from being recorded.
  A database that is down is different: nothing is acked and the loop retries with backoff
  (at most `events.streams.MAX_BACKOFF_S` apart, so the rows follow within seconds of its return).
- A call the worker answered without the record (`lookup_failed`: the database was down) has
  its caller matched by caller ID here, so its call, message and callback task go to the
  customer's thread and advisor.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import redis
from pydantic import ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.orm import Session, selectinload

from events.bus import STREAM, Event, EventBus
from events.calls import (
    CALL_ENDED,
    CALL_EVENTS,
    CALL_STEP,
    CALLBACK_CREATED,
    THREAD_UPDATED,
    CallAnswered,
    CallbackCreated,
    CallEnded,
    CallEvent,
    CallRinging,
    CallStep,
    CallTransferred,
    Disposition,
    ThreadUpdated,
    parse_call_event,
)
from events.streams import Entry, StreamConsumer, run_consumer, stream_entries
from events.transcription import STREAM as JOBS_STREAM
from events.transcription import (
    enqueue,
    forget_prompts,
    job_for,
    remember_prompt,
    remembered_prompts,
)
from ivr.domain import NEEDS_CALLBACK, Role, ThreadKind
from ivr.flow.steps.voicemail import due_time
from ivr.parts import ThreadPart
from ivr.phone import try_e164
from records import views
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

GROUP = "driveline:call-writer"
DEAD_LETTER_STREAM = "driveline:events:dead"
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
        self._fill(
            session,
            call,
            caller=p.caller or p.caller_raw,
            did=p.did,
            started_at=p.at,
            customer_id=self._caller_customer(
                session, call, p.customer.id if p.customer else None, p.caller, p.lookup_failed
            ),
            direction=p.direction,
        )
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
        self._fill(
            session,
            call,
            caller=p.caller or p.caller_raw,
            did=p.did,
            started_at=p.started_at,
            customer_id=self._caller_customer(
                session, call, p.customer_id, p.caller, p.lookup_failed
            ),
            direction=p.direction,
        )
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
        *,
        caller: str | None,
        did: str | None,
        started_at: datetime,
        customer_id: int | None,
        direction: str,
    ) -> None:
        """Fill what an earlier, sparser event could not know; never overwrite what is known."""
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
            body=_summary(call, p, advisor.name if advisor else None),
            data={
                "call_uuid": call.call_uuid,
                "disposition": p.disposition.value,
                "duration": round(p.duration_s, 1),
                "recordings": [r.model_dump(mode="json") for r in p.recordings],
                "caller": call.from_number,
                **_unrecorded(p),
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
            reason=(p.callback.reason if p.callback else "") or _callback_reason(call, p),
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


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


_HEADLINES = {
    Disposition.handled_by_ivr: "Call handled by the IVR",
    Disposition.transferred: "Call transferred",
    Disposition.voicemail: "Call, left a voicemail",
    Disposition.abandoned: "Caller hung up",
    Disposition.missed: "Missed call",
    Disposition.failed: "Call failed",
}


def _unrecorded(p: CallEnded) -> dict[str, Any]:
    """The legs the worker could not record (a full disk), for the thread to say so."""
    return {"unrecorded": [u.model_dump(mode="json") for u in p.unrecorded]} if p.unrecorded else {}


def _summary(call: Call, p: CallEnded, advisor: str | None) -> str:
    if p.direction == "outbound":
        return _outbound_summary(call, p, advisor)
    text = f"{_HEADLINES[p.disposition]} from {call.from_number}, {_duration(p.duration_s)}"
    if p.disposition == Disposition.transferred and advisor:
        text += f", talked to {advisor}"
    return text


_NOT_REACHED = {  # the last `outbound.*` step of a masked call (sip/outbound.py), in words
    "outbound.advisor_no_answer": "the advisor did not answer",
    "outbound.customer_busy": "busy",
    "outbound.customer_no_answer": "no answer",
    "outbound.expired": "no line was free",
}


def _outbound_summary(call: Call, p: CallEnded, advisor: str | None) -> str:
    """The thread line of a masked call: `Outbound call by Ann Lee to +1..., 2m 05s`, or
    `Attempted call by Ann Lee to +1...: busy`; without an advisor, `Automated call`."""
    by = f" by {advisor}" if advisor else ""
    if p.disposition in (Disposition.transferred, Disposition.handled_by_ivr):
        kind = "Outbound call" if advisor else "Automated call"
        return f"{kind}{by} to {call.to_number}, {_duration(p.duration_s)}"
    reason = next((_NOT_REACHED[s] for s in reversed(p.flow_path) if s in _NOT_REACHED), "")
    kind = "Attempted call" if advisor else "Attempted automated call"
    return f"{kind}{by} to {call.to_number}" + (f": {reason}" if reason else "")


def _callback_reason(call: Call, p: CallEnded) -> str:
    return f"{_HEADLINES[p.disposition]} from {call.from_number}"


# --- the consumer -----------------------------------------------------------------------------


def _one_line(exc: Exception) -> str:
    """Pydantic and SQLAlchemy errors span many lines (and echo the SQL): keep the gist."""
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        if not errors:
            return "ValidationError"
        where = ".".join(str(p) for p in errors[0]["loc"])
        return f"ValidationError: {len(errors)} error(s), first {where}: {errors[0]['msg']}"
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


class DatabaseUnavailable(Exception):
    """The database could not be reached: retry the entry later, never skip it."""


class CallWriterConsumer(StreamConsumer):
    """Reads the event stream through a consumer group and feeds `CallWriter`, in order.

    `poll_once` handles one batch and is what tests drive; `run_call_writer` loops over it.
    """

    payload_field = "event"

    def __init__(
        self,
        engine: Engine,
        redis_url: str,
        *,
        consumer_name: str,
        stream: str = STREAM,
        group: str = GROUP,
        dead_letter_stream: str = DEAD_LETTER_STREAM,
        bus: EventBus | None = None,
        batch: int = 100,
        claim_idle_ms: int = 60_000,
        claim_every_s: float = 30.0,
        region: str = "US",
        jobs_stream: str = JOBS_STREAM,
    ) -> None:
        super().__init__(
            redis_url,
            consumer_name=consumer_name,
            stream=stream,
            group=group,
            dead_letter_stream=dead_letter_stream,
        )
        self.writer = CallWriter(engine, region=region)
        self.jobs_stream = jobs_stream  # where transcription jobs go
        self.owns_bus = bus is None
        self.bus = bus or EventBus(redis_url)
        self.batch = batch
        self.claim_idle_ms = claim_idle_ms
        self.claim_every_s = claim_every_s
        self._pending_first = True  # after a start or an error: our own pending entries first
        self._claimed_at = float("-inf")

    def close(self) -> None:
        super().close()
        if self.owns_bus:
            self.bus.close()

    def reset(self) -> None:
        """After an error: re-check the group and re-read pending entries before new ones."""
        super().reset()
        self._pending_first = True

    def poll_once(self, block_ms: int = 1000) -> int:
        """Handle one batch: pending entries first (ours, or claimed from a dead consumer),
        else new ones, waiting up to `block_ms` for them. Returns how many were handled."""
        # From id 0: events published before the writer ever ran (a fresh install whose
        # workers started first) are written too; re-applying old ones changes nothing.
        self.ensure_group()
        if time.monotonic() - self._claimed_at >= self.claim_every_s:
            self._claim()
        if self._pending_first:
            entries = self._read("0", block_ms=None)
            if entries:
                return self._handle(entries, redelivered=True)
            self._pending_first = False
        return self._handle(self._read(">", block_ms=block_ms), redelivered=False)

    def _claim(self) -> None:
        """Take over entries another consumer read but never acked (it crashed)."""
        start: Any = "0-0"
        for _ in range(100):  # bounded: at most 100 × batch entries per round
            reply = self.redis.xautoclaim(
                self.stream,
                self.group,
                self.consumer_name,
                self.claim_idle_ms,
                start_id=start,
                count=self.batch,
                justid=True,
            )
            if reply:
                self._pending_first = True
                log.info("claimed %d pending entries from other consumers", len(reply))
            if not isinstance(reply, list) or len(reply) < self.batch:
                break
            start = reply[-1]  # justid gives ids only; go on after the last one
        self._claimed_at = time.monotonic()

    def _read(self, start: str, block_ms: int | None) -> list[Entry]:
        reply: Any = self.redis.xreadgroup(
            self.group,
            self.consumer_name,
            {self.stream: start},
            count=self.batch,
            block=block_ms,
        )
        return stream_entries(reply)

    def _handle(self, entries: list[Entry], *, redelivered: bool) -> int:
        for entry_id, fields in entries:
            try:
                self._handle_one(entry_id, fields, redelivered)
            except DatabaseUnavailable:
                self._pending_first = True  # this entry and the rest stay pending, in order
                raise
        return len(entries)

    def _handle_one(
        self, entry_id: bytes, fields: dict[bytes, bytes] | None, redelivered: bool
    ) -> None:
        raw = (fields or {}).get(b"event")
        if raw is None:  # trimmed from the stream while pending: nothing left to apply
            log.warning("entry %s has no event (trimmed?); acking", entry_id)
            self.ack(entry_id)
            return
        try:
            event = Event.decode(raw)
        except (ValueError, TypeError) as exc:
            self.dead_letter(entry_id, raw, f"undecodable: {exc}")
            return
        if event.type not in CALL_EVENTS:
            self.ack(entry_id)
            return
        try:
            notices = self._apply(event, redelivered)
        except (ValidationError, ValueError, DataError, IntegrityError) as exc:
            reason = _one_line(exc)
            log.warning("event %s (%s) set aside: %s", event.id, event.type, reason)
            self.dead_letter(entry_id, raw, reason)
            return
        for store_id, event_type, data in notices:
            try:
                self.bus.publish(store_id, event_type, data)
            except redis.RedisError:
                log.exception("could not publish %s for store %s", event_type, store_id)
        self._hand_to_transcription(event)
        self.ack(entry_id)

    def _hand_to_transcription(self, event: Event) -> None:
        """After the commit: keep the IVR's lines of a call, and once it ended with recordings,
        enqueue its one transcription job (events/transcription.py). A Redis error leaves the
        entry pending; both steps are idempotent, so the re-read repeats them harmlessly."""
        if event.type not in (CALL_STEP, CALL_ENDED):
            return
        payload = parse_call_event(event)
        if isinstance(payload, CallStep):
            if payload.said and not payload.said.startswith("[plays "):
                remember_prompt(self.redis, payload.call_uuid, event.id, payload.at, payload.said)
        elif isinstance(payload, CallEnded):
            if payload.recordings:
                prompts = remembered_prompts(self.redis, payload.call_uuid)
                enqueue(self.redis, job_for(payload, prompts), stream=self.jobs_stream)
            else:
                forget_prompts(self.redis, payload.call_uuid)

    def _apply(self, event: Event, redelivered: bool) -> list[Notice]:
        try:
            try:
                return self.writer.apply(event, redelivered=redelivered)
            except IntegrityError:
                # Another writer (a second instance, the API's link) got there first: the
                # retry sees its rows and only fills in. A second failure is a real conflict.
                log.debug("event %s: integrity conflict, retrying once", event.id)
                return self.writer.apply(event, redelivered=True)
        except (IntegrityError, DataError):
            raise
        except DBAPIError as exc:
            raise DatabaseUnavailable(str(exc).splitlines()[0]) from exc


def run_call_writer(
    engine: Engine,
    redis_url: str,
    *,
    consumer_name: str,
    stop_event: threading.Event,
    stream: str = STREAM,
    group: str = GROUP,
    block_ms: int = 1000,
    **options: Any,
) -> None:
    """Write call events until `stop_event` is set (noticed within `block_ms`). Redis or the
    database being down is waited out (events.streams.run_consumer: the writer is back within
    seconds of a restart); the unacked entries are re-read after."""
    consumer = CallWriterConsumer(
        engine, redis_url, consumer_name=consumer_name, stream=stream, group=group, **options
    )
    log.info("call writer %s reading %s as group %s", consumer_name, stream, group)
    run_consumer(
        consumer,
        stop_event,
        what="call writer",
        retry_on=(redis.RedisError, DatabaseUnavailable, DBAPIError),
        block_ms=block_ms,
    )


class CallWriterPart(ThreadPart):
    """The writer as a `driveline serve` part (see driveline/supervisor.py): a thread of its own."""

    def __init__(self, engine: Engine, redis_url: str, consumer_name: str = "call-writer") -> None:
        def run(stopping: threading.Event) -> None:
            run_call_writer(engine, redis_url, consumer_name=consumer_name, stop_event=stopping)

        super().__init__("call-writer", run, join_s=10)
