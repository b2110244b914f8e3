"""Everything around the flow for one inbound call: identify, screen-pop, greet, record, report.

    INVITE ─▶ route():   store for the DID (none: 404) → caller lookup → `call.ringing` with the
                         screen-pop → the personalized greeting synthesized while it rings;
                         the record unreachable: the store last seen for the DID
                         (sip/directory.py) and the `records_down` flow, which needs no lookup
    200 OK ─▶ handle():  `call.answered` → recording starts (consent announcement first when the
                         store has it on) → the store's entry flow runs; each line of the flow
                         goes out as `call.step`, each transfer as `call.transferred`
    end    ─▶ finished(): `call.ended` with disposition, flow path and recordings — for every
                         call, answered or not, so a missed call is never lost

The worker only publishes. The call writer (records/call_writer.py) turns these events into
rows, so dozens of worker processes never queue on the database's write lock.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from events.bus import AsyncEventBus
from events.calls import (
    CallAnswered,
    CallEnded,
    CallEvent,
    CallRinging,
    CallStep,
    CallTransferred,
    LegInfo,
    RecordingInfo,
    TransferTarget,
    UnrecordedInfo,
    publish_call_event_async,
)
from events.health import WORKER_STATS
from ivr.domain import (
    AdvisorInfo,
    CustomerInfo,
    DepartmentInfo,
    DepartmentKind,
    StoreInfo,
    disposition_for,
)
from ivr.flow.channel import (
    GatherResult,
    Prompt,
    PromptFinished,
    Recording,
    TransferResult,
)
from ivr.flow.engine import CallResult, FlowEngine, LogLine
from ivr.flow.prompts import opening_prompts
from ivr.flow.records import LastContact, Records, RecordsUnavailable
from ivr.speech import TTS
from records.screen_pop import advisor_ref, department_ref, screen_pop
from sip.channel import PjsuaChannel
from sip.directory import StoreDirectory
from sip.journal import CallJournal, JournalEntry
from sip.media import LegRecording, LegUnrecorded
from sip.worker import CallHandler, InboundCall

log = logging.getLogger(__name__)

CONSENT_PROMPT = "This call may be recorded for quality and training."
# A customer calling back an advisor who called them (records/outbound.py): the flow a
# store's sticky mode runs instead of the entry flow, when the store's flows have it.
STICKY_FLOWS = {"direct": "callback", "offer": "callback_offer"}
# The flow for a call whose caller could not be looked up (database unreachable or too slow):
# greeting, apology, voicemail; the call writer files the message and the callback task once
# the database is back (`lookup_failed` on the events).
RECORDS_DOWN_FLOW = "records_down"
_PRESSES = re.compile(r"^presses (?P<digits>[0-9*#]+)")
_SAYS = re.compile(r'^says "(?P<heard>.*)"')


def _now() -> datetime:
    return datetime.now(UTC)


def _log_failure(task: asyncio.Future[object]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("could not prepare a prompt: %s", task.exception())


@dataclass
class _Call:
    """What the lifecycle remembers of one call between its INVITE and its end."""

    inbound: InboundCall
    store: StoreInfo
    customer: CustomerInfo | None
    started_at: datetime = field(default_factory=_now)
    answered_at: datetime | None = None
    result: CallResult | None = None
    consent_played: bool = False
    flow: str = "main"  # the entry flow: the department's, or a sticky callback's (STICKY_FLOWS)
    department: DepartmentInfo | None = None  # the one the DID rings (None: no rows, service)
    lookup_failed: bool = False  # the record did not answer: RECORDS_DOWN_FLOW, caller unknown
    # Events go out strictly in order: each publish waits for the one before it.
    tail: asyncio.Future[None] | None = None


def recording_infos(
    recordings: Sequence[LegRecording], recordings_dir: Path, *, consent_played: bool = False
) -> list[RecordingInfo]:
    """A call's finished recordings as `call.ended` carries them (paths relative to
    `recordings_dir`); inbound calls and masked outbound calls (sip/outbound.py) alike."""
    root = Path(recordings_dir).resolve()
    return [
        RecordingInfo(
            leg_role="advisor" if r.role == "advisor" else "caller",
            path=Path(r.path).resolve().relative_to(root).as_posix(),
            sha256=r.sha256,
            duration_s=r.duration_s,
            kind="voicemail" if r.kind == "voicemail" else "leg",
            consent_played=consent_played and r.kind != "voicemail",
            started_at=r.started_at,
            cut_short=r.cut_short,
        )
        for r in recordings
    ]


def unrecorded_infos(unrecorded: Sequence[LegUnrecorded]) -> list[UnrecordedInfo]:
    """The legs a call went on without recording (sip/channel.py), as `call.ended` says so."""
    return [
        UnrecordedInfo(
            leg_role="advisor" if u.role == "advisor" else "caller",
            kind="voicemail" if u.kind == "voicemail" else "leg",
            reason="disk_full" if u.reason == "disk_full" else "recorder_failed",
            at=u.at,
        )
        for u in unrecorded
    ]


class CallLifecycle:
    """The router and the end-of-call hook a `SipWorker` runs every call through."""

    def __init__(
        self,
        engine: FlowEngine,
        records: Records,
        bus: AsyncEventBus,
        tts: TTS,
        recordings_dir: Path,
        *,
        flow: str = "main",
        journal: CallJournal | None = None,
        directory: StoreDirectory | None = None,
    ) -> None:
        """`journal` keeps each call on disk until its `call.ended` is out (sip/journal.py);
        `directory` answers which store a DID rings while the record is down."""
        self.engine = engine
        self.directory = directory or StoreDirectory(records)
        self.journal = journal
        self.records = records
        self.bus = bus
        self.tts = tts
        self.recordings_dir = Path(recordings_dir)
        self.flow = flow
        self.calls: dict[str, _Call] = {}

    # --- INVITE: decide, announce, prepare ---------------------------------------------------

    async def route(self, inbound: InboundCall) -> CallHandler | None:
        if inbound.did is None:
            return None
        found = await self.directory.lookup(inbound.did)
        store = found.store
        if store is None:
            return None
        lookup_failed = not found.fresh
        customer = None
        if inbound.caller and not lookup_failed:
            try:
                customer = await self.records.customer_by_phone(store.id, inbound.caller)
            except RecordsUnavailable as exc:
                log.warning("caller lookup failed for %s: %s", inbound.caller, exc)
                lookup_failed = True
            except Exception:  # noqa: BLE001 - a bug: the caller still gets served
                log.exception("caller lookup failed for %s", inbound.caller)
                lookup_failed = True
        department = store.department_for_did(inbound.did)
        call = _Call(inbound, store, customer, flow=self._entry_flow(department))
        call.department = department
        call.lookup_failed = lookup_failed
        last = None
        if lookup_failed:
            call.flow = self._records_down_flow(call.flow)
        elif department is None or department.kind == DepartmentKind.service:
            # Sticky callbacks are the service advisors': a call to sales is sales'.
            last = await self._last_contact(store, inbound.caller)
        if last is not None and STICKY_FLOWS[last.mode] in self.engine.flows:
            call.flow = STICKY_FLOWS[last.mode]
        self.calls[inbound.call_uuid] = call
        self._journal(call)
        pop = screen_pop(customer).model_dump()
        self._emit(
            call,
            CallRinging(
                call_uuid=inbound.call_uuid,
                store_id=store.id,
                at=call.started_at,
                did=inbound.did,
                caller=inbound.caller,
                caller_raw=inbound.caller_raw[:200],
                sip_call_id=inbound.sip_call_id[:300],
                last_contacted=advisor_ref(last.advisor if last else None),
                department=department_ref(department),
                lookup_failed=lookup_failed,
                **pop,
            ),
        )
        await self._prepare_greeting(call)
        return self.handle

    def _entry_flow(self, department: DepartmentInfo | None) -> str:
        """The dialled department's flow; the worker's entry flow when it has none, keeps the
        default (`main`), or names one the flows folder lacks (logged: a typo must not drop
        calls)."""
        if department is None or department.flow in (self.flow, "main"):
            return self.flow
        if department.flow not in self.engine.flows:
            log.warning(
                "department %s: no flow %r, running %r", department.kind, department.flow, self.flow
            )
            return self.flow
        return department.flow

    def _records_down_flow(self, entry: str) -> str:
        """RECORDS_DOWN_FLOW; the entry flow, with the caller unknown, in a flows folder that
        lacks it (logged: answering beats a 503)."""
        if RECORDS_DOWN_FLOW in self.engine.flows:
            return RECORDS_DOWN_FLOW
        log.warning("no %r flow: running %r without the record", RECORDS_DOWN_FLOW, entry)
        return entry

    async def _last_contact(self, store: StoreInfo, caller: str | None) -> LastContact | None:
        """An advisor who called this customer lately (sticky callbacks), if any."""
        if not caller:
            return None
        try:
            return await self.records.last_contact(store.id, caller)
        except Exception:  # noqa: BLE001 - the call still goes to the store's flow
            log.exception("last-contact lookup failed for %s", caller)
            return None

    async def _prepare_greeting(self, call: _Call) -> None:
        """Synthesize the opening prompts now, so audio starts the moment we answer.

        We answer once the first is ready (the store's greeting: cached after the first call);
        the rest (the caller's name) keeps rendering while the first one plays.
        """
        try:
            texts = await opening_prompts(
                self.engine.flows,
                self.records,
                store=call.store,
                customer=call.customer,
                caller=call.inbound.caller,
                flow=call.flow,
                department=call.department,
            )
            if texts:
                await self.tts.render(texts[0])
            for text in texts[1:]:
                task = asyncio.ensure_future(self.tts.render(text))
                task.add_done_callback(_log_failure)
        except Exception:  # noqa: BLE001 - the flow will synthesize it when it gets there
            log.exception("could not prepare the greeting")

    # --- answered: run the flow ----------------------------------------------------------------

    async def handle(self, channel: PjsuaChannel, inbound: InboundCall) -> None:
        call = self.calls[inbound.call_uuid]
        call.answered_at = _now()
        self._emit(
            call,
            CallAnswered(call_uuid=inbound.call_uuid, store_id=call.store.id, at=call.answered_at),
        )
        consent = CONSENT_PROMPT if call.store.recording_consent else None
        await channel.start_recording(consent_prompt=consent)
        call.consent_played = consent is not None
        self._journal(call)
        reporting = _ReportingChannel(channel, self, call)
        call.result = await self.engine.run(
            reporting,
            store=call.store,
            caller=inbound.caller,
            flow=call.flow,
            customer=call.customer,
            on_log=lambda line: self._step(call, line),
            department=call.department,
        )
        channel.log.info("flow ended: %s", call.result.outcome.describe())

    def _step(self, call: _Call, line: LogLine) -> None:
        """What the IVR said or the caller did, live; the engine's own notes stay in the log."""
        if line.who not in ("IVR", "CALLER"):
            return
        pressed, spoke = _PRESSES.match(line.text), _SAYS.match(line.text)
        self._emit(
            call,
            CallStep(
                call_uuid=call.inbound.call_uuid,
                store_id=call.store.id,
                at=_now(),
                flow=line.flow[:100],
                step=line.step[:100],
                said=line.text if line.who == "IVR" else None,
                digits=pressed["digits"][:64] if pressed else None,
                heard=spoke["heard"] if spoke else None,
            ),
        )

    # --- the end, answered or not --------------------------------------------------------------

    async def finished(self, channel: PjsuaChannel, inbound: InboundCall) -> None:
        call = self.calls.pop(inbound.call_uuid, None)
        if call is None:  # refused before routing (404, 503): not a call of any store
            return
        recordings = await channel.close()
        answered = call.answered_at is not None
        if call.result is not None:
            outcome: str | None = call.result.outcome.kind
        elif answered:  # the flow never ran: the caller left during the consent prompt, or a bug
            outcome = "caller_hung_up" if channel.hung_up else "error"
        else:
            outcome = None
        disposition = disposition_for(outcome, answered=answered)
        WORKER_STATS.call_ended(disposition)
        ended = _now()
        self._emit(
            call,
            CallEnded(
                call_uuid=inbound.call_uuid,
                store_id=call.store.id,
                at=ended,
                disposition=disposition,
                did=inbound.did or inbound.did_raw[:200],
                caller=inbound.caller,
                caller_raw=inbound.caller_raw[:200],
                customer_id=call.customer.id if call.customer else None,
                started_at=call.started_at,
                answered_at=call.answered_at,
                flow_path=call.result.path if call.result else [],
                legs=[
                    LegInfo(
                        role="caller",
                        party=(inbound.caller or inbound.caller_raw or "unknown")[:200],
                        started_at=call.started_at,
                        answered_at=call.answered_at,
                        ended_at=ended,
                    )
                ],
                recordings=recording_infos(
                    recordings, self.recordings_dir, consent_played=call.consent_played
                ),
                unrecorded=unrecorded_infos(channel.unrecorded),
                department_id=call.department.id if call.department else None,
                lookup_failed=call.lookup_failed,
            ),
            delivered=self._forget(inbound.call_uuid),
        )
        if call.tail is not None:
            await call.tail  # published (on Redis, or held while it is away)

    def _forget(self, call_uuid: str) -> Callable[[], None] | None:
        """Drop the call from the journal once its `call.ended` is on Redis, not before: a
        worker killed while Redis is away still closes the call when it starts again."""
        journal = self.journal
        return None if journal is None else lambda: journal.remove(call_uuid)

    def _journal(self, call: _Call) -> None:
        if self.journal is None:
            return
        inbound = call.inbound
        try:
            self.journal.write(
                JournalEntry(
                    call_uuid=inbound.call_uuid,
                    store_id=call.store.id,
                    did=inbound.did or inbound.did_raw[:200],
                    caller=inbound.caller,
                    caller_raw=inbound.caller_raw[:200],
                    customer_id=call.customer.id if call.customer else None,
                    started_at=call.started_at,
                    answered_at=call.answered_at,
                    consent_played=call.consent_played,
                    lookup_failed=call.lookup_failed,
                )
            )
        except OSError:  # a full disk must not drop the caller
            log.exception("could not journal call %s", inbound.call_uuid)

    # --- publishing, in order ------------------------------------------------------------------

    def _emit(
        self, call: _Call, payload: CallEvent, *, delivered: Callable[[], None] | None = None
    ) -> None:
        """Publish after the call's previous event; `delivered` runs once it is on Redis."""
        previous = call.tail

        async def publish() -> None:
            if previous is not None:
                await previous
            try:
                event = await publish_call_event_async(self.bus, payload)
            except Exception:  # noqa: BLE001 - a bug in an event must not drop the caller
                log.exception("could not publish %s for %s", payload.event_type, payload.call_uuid)
                return
            if delivered is not None:
                self.bus.when_delivered(event, delivered)

        call.tail = asyncio.ensure_future(publish())


class _ReportingChannel:
    """The real channel, plus a `call.transferred` event for every transfer attempt."""

    def __init__(self, channel: PjsuaChannel, lifecycle: CallLifecycle, call: _Call) -> None:
        self.channel = channel
        self.lifecycle = lifecycle
        self.call = call

    def say(self, text: str) -> Awaitable[PromptFinished]:
        return self.channel.say(text)

    def play(self, path: str) -> Awaitable[PromptFinished]:
        return self.channel.play(path)

    def gather(self, prompt: Prompt | None, **options: object) -> Awaitable[GatherResult]:
        return self.channel.gather(prompt, **options)  # type: ignore[arg-type]

    def record(self, **options: object) -> Awaitable[Recording]:
        return self.channel.record(**options)  # type: ignore[arg-type]

    def hangup(self) -> Awaitable[None]:
        return self.channel.hangup()

    async def transfer(
        self, contacts: Sequence[str], *, ring_seconds: float = 20.0
    ) -> TransferResult:
        started = _now()
        result = await self.channel.transfer(contacts, ring_seconds=ring_seconds)
        contact = result.contact or (contacts[0] if contacts else "")
        advisor = await self._advisor_for(contact)
        self.lifecycle._emit(
            self.call,
            CallTransferred(
                call_uuid=self.call.inbound.call_uuid,
                store_id=self.call.store.id,
                at=_now(),
                started_at=started,
                target=TransferTarget(
                    user_id=advisor.id if advisor else None,
                    name=advisor.name if advisor else "",
                    contact=contact[:200] or "unknown",
                ),
                label=", ".join(contacts)[:200],
                result=result.status.value,  # type: ignore[arg-type]
            ),
        )
        return result

    async def _advisor_for(self, contact: str) -> AdvisorInfo | None:
        try:
            staff = await self.lifecycle.records.group(self.call.store.id, "service")
        except Exception:  # noqa: BLE001 - the event goes out without a user id
            return None
        return next((a for a in staff if a.contact == contact), None)
