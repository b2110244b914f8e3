"""Masked outbound calls on a SIP worker: click-to-call and the proactive pickup call.

    queue (events/outbound.py) ─▶ OutboundRunner takes a job only with free call slots
    click_to_call:  ring the advisor ─▶ (answered) whisper who is being called ─▶ ring the
                    customer with the store's DID as From and P-Asserted-Identity, ringback to
                    the advisor ─▶ bridge (PjsuaChannel.transfer) ─▶ either side hangs up: both
                    legs end ─▶ `call.ended` with both leg recordings
                    advisor no answer: nothing is dialled to the customer
                    customer busy / no answer: the advisor hears so, the call ends
    pickup:         ring the customer ─▶ (answered) "your car is ready" ─▶ the pickup_confirm
                    flow; no answer: retried once after the store's `pickup_retry_s`

The customer leg is its own SIP call from this endpoint: nothing of the advisor's leg (their
number, SIP URI, SDP) is copied into it, and its From, P-Asserted-Identity and Contact name
only the store's number and this worker. Roles follow inbound calls so transcripts read the
same: the customer is the `caller` leg, the advisor the `advisor` leg.

Progress goes out as `call.outbound` events (and into the state `GET /calls/{id}` reads);
the record comes from `call.answered` and `call.ended`, written by the call writer. Like
inbound calls, each call is in the worker's journal (sip/journal.py) from its first leg until
its `call.ended` is out: a worker killed mid-call closes it as `failed` with its repaired
recordings when it starts again, and `close_lost_call` fails its job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import redis.asyncio as aioredis

from events import outbound as queue
from events.bus import AsyncEventBus, Event
from events.calls import (
    CallAnswered,
    CallEnded,
    CallEvent,
    Disposition,
    LegInfo,
    publish_call_event_async,
)
from events.outbound import OutboundJob
from ivr.domain import READY_FOR_PICKUP, CustomerInfo
from ivr.flow.channel import CallerHungUp, TransferStatus
from ivr.flow.engine import FlowEngine
from ivr.flow.records import Records
from ivr.speech import TTS
from sip.channel import PjsuaChannel
from sip.endpoint import EndpointError, NoCapacity, SipEndpoint
from sip.events import CallConfirmed
from sip.journal import CallJournal, JournalEntry
from sip.lifecycle import recording_infos, unrecorded_infos
from sip.media import MIN_RECORDING_FREE_BYTES, LegRecording, LegUnrecorded

log = logging.getLogger(__name__)

BUSY_PROMPT = "The customer's line is busy. Please try again later."
NO_ANSWER_PROMPT = "The customer did not answer."
FAILED_PROMPT = "The call could not be completed."
POLL_S = 0.02  # how often a ringing leg or the bridge is looked at
RETRY_MAX_S = 2.0  # the queue's Redis away: back within seconds of its restart

Outcome = Literal["connected", "advisor_no_answer", "busy", "no_answer", "failed", "expired"]


def _now() -> datetime:
    return datetime.now(UTC)


def _wall(mono: float | None) -> datetime | None:
    """A `time.monotonic()` stamp from an event as a wall-clock time."""
    if mono is None:
        return None
    return _now() - timedelta(seconds=max(0.0, time.monotonic() - mono))


@dataclass
class _Placed:
    """What one job did, for its `call.ended`."""

    job: OutboundJob
    started_at: datetime = field(default_factory=_now)
    advisor_answered_at: datetime | None = None
    customer_started_at: datetime | None = None
    customer_answered_at: datetime | None = None
    path: list[str] = field(default_factory=list)
    recordings: list[LegRecording] = field(default_factory=list)
    unrecorded: list[LegUnrecorded] = field(default_factory=list)
    reserved: int = 0  # call slots held for legs not dialled yet (see `pending_slots`)
    queue_entry: str | None = None  # the job's entry on the queue (journalled for recovery)
    ended: Event | None = None  # its `call.ended` as published


class OutboundRunner:
    """Takes outbound jobs from the Redis queue while this worker has the call slots for them.

    Runs beside a `SipWorker` on the same endpoint and loop. `records` and `engine` are needed
    for automated (pickup) calls only.
    """

    def __init__(
        self,
        endpoint: SipEndpoint,
        bus: AsyncEventBus,
        redis_url: str,
        *,
        tts: TTS,
        recordings_dir: Path,
        media_dir: Path | None = None,
        records: Records | None = None,
        engine: FlowEngine | None = None,
        consumer: str | None = None,
        poll_ms: int = 500,
        journal: CallJournal | None = None,
        min_free_bytes: int = MIN_RECORDING_FREE_BYTES,
    ) -> None:
        self.endpoint = endpoint
        self.bus = bus
        self.redis = aioredis.Redis.from_url(redis_url, socket_connect_timeout=2)
        self.tts = tts
        self.recordings_dir = Path(recordings_dir)
        self.min_free_bytes = min_free_bytes  # a leg is recorded only with this much room
        self.media_dir = media_dir
        self.records = records
        self.engine = engine
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.poll_ms = poll_ms
        self.journal = journal
        self.pending_slots = 0  # slots taken jobs will still need (the customer leg to come)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    # --- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await queue.ensure_group(self.redis)
        self._loop_task = asyncio.get_running_loop().create_task(self._run())

    async def stop_taking(self) -> None:
        """Take no more jobs (a draining worker); calls already up go on."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None

    async def stop(self) -> None:
        """Stop taking jobs and end the calls still up (their records are still published)."""
        await self.stop_taking()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)
        await self.redis.aclose()

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                await queue.release_due(self.redis)
                free = await self.endpoint.free_slots() - self.pending_slots
                if free < 1:
                    await asyncio.sleep(self.poll_ms / 1000)
                    continue
                taken = await queue.take_job(self.redis, self.consumer, self.poll_ms)
                if taken is None:
                    continue
                entry, job = taken
                if job.slots > free:  # a click-to-call needs 2: leave it to a freer worker
                    await queue.requeue(self.redis, job)
                    await queue.done_job(self.redis, entry)
                    await asyncio.sleep(self.poll_ms / 1000)
                    continue
                self._spawn(entry, job)
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis trouble: wait it out, never crash calls
                log.exception("outbound queue: retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RETRY_MAX_S)
                with contextlib.suppress(Exception):  # a Redis restarted empty lost the group
                    await queue.ensure_group(self.redis)

    def _spawn(self, entry: str, job: OutboundJob) -> None:
        self.pending_slots += job.slots

        async def run() -> None:
            try:
                await self.place(job, queue_entry=entry)
            finally:
                await queue.done_job(self.redis, entry)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- one job ------------------------------------------------------------------------------

    async def place(self, job: OutboundJob, queue_entry: str | None = None) -> Outcome:
        """Place one call to its end and publish its record. `pending_slots` holds the job's
        slots on entry; each is released as its leg is dialled (or the job ends)."""
        placed = _Placed(job, reserved=job.slots, queue_entry=queue_entry)
        try:
            if job.expires_at < _now():
                await self._state(job, "failed", "expired before a line was free")
                outcome: Outcome = "expired"
                placed.path.append("outbound.expired")
            elif not self.endpoint.config.may_dial(f"tel:{job.destination}"):
                # The API checked the store's policy; whatever put this job on the queue, the
                # worker dials only what its own rule allows, and rings no advisor first.
                log.warning("outbound call %s refused: %s is not an allowed destination",
                            job.call_uuid, job.destination)  # fmt: skip
                await self._state(job, "failed", f"{job.destination} is not an allowed destination")
                outcome = "failed"
                placed.path.append("outbound.destination_refused")
            elif job.kind == "click_to_call":
                outcome = await self._click_to_call(placed)
            else:
                outcome = await self._automated(placed)
                if outcome == "no_answer" and job.attempt <= job.retries:
                    retry = job.model_copy(update={"attempt": job.attempt + 1})
                    await queue.requeue(self.redis, retry, delay_s=job.retry_after_s)
                    await self._state(job, "retry_scheduled", f"in {job.retry_after_s:g}s")
                    return outcome  # the call's record waits for the last attempt
            await self._ended(placed, outcome)
            return outcome
        except Exception:
            log.exception("outbound call %s failed", job.call_uuid)
            await self._state(job, "failed", "worker error")
            with contextlib.suppress(Exception):
                await self._ended(placed, "failed")
            return "failed"
        finally:
            self.pending_slots -= placed.reserved
            self._forget(placed)

    def _forget(self, placed: _Placed) -> None:
        """Ended (or retried later): out of the journal, once its `call.ended` is on Redis (a
        worker killed while Redis is away closes the call when it starts again)."""
        journal, call_uuid = self.journal, placed.job.call_uuid
        if journal is None:
            return
        if placed.ended is None:  # no record yet (a retry later), or it could not be published
            journal.remove(call_uuid)
        else:
            self.bus.when_delivered(placed.ended, lambda: journal.remove(call_uuid))

    def _dialling(self, placed: _Placed) -> None:
        """A leg is being dialled: its slot is the endpoint's to count from now on, and the
        call is in the journal until it ends."""
        if placed.reserved > 0:
            placed.reserved -= 1
            self.pending_slots -= 1
        self._journal(placed)

    def _journal(self, placed: _Placed) -> None:
        if self.journal is None:
            return
        job = placed.job
        advisor = job.advisor_contact if job.kind == "click_to_call" else None
        try:
            self.journal.write(
                JournalEntry(
                    call_uuid=job.call_uuid,
                    store_id=job.store_id,
                    did=job.caller_id,
                    caller=job.destination,
                    customer_id=job.customer_id,
                    started_at=placed.started_at,
                    answered_at=placed.customer_answered_at,
                    flow_path=placed.path,
                    direction="outbound",
                    call_id=job.call_id,
                    advisor_id=job.advisor_id if advisor else None,
                    advisor_party=advisor,
                    queue_entry=placed.queue_entry,
                )
            )
        except OSError:
            log.exception("could not journal outbound call %s", job.call_uuid)

    def _channel(self, job: OutboundJob, roles: tuple[str, str]) -> PjsuaChannel:
        return PjsuaChannel(
            self.endpoint,
            0,  # set once dialled; its events reach the channel through the dial's sink
            tts=self.tts,
            recordings_dir=self.recordings_dir,
            min_free_bytes=self.min_free_bytes,
            media_dir=self.media_dir,
            call_uuid=job.call_uuid,
            name=f"out-{job.call_uuid[:8]}",
            roles=roles,
        )

    def _caller_id_uri(self, job: OutboundJob) -> str:
        host = self.endpoint.address[0] or "localhost"
        return f"sip:{job.caller_id}@{host}"

    def _masked(self, job: OutboundJob) -> dict[str, Any]:
        """`dial` options that show the store's DID: From and P-Asserted-Identity."""
        uri = self._caller_id_uri(job)
        return {"from_uri": uri, "headers": {"P-Asserted-Identity": f"<{uri}>"}}

    async def _ring(self, channel: PjsuaChannel, uri: str, ring_s: float, **dial: Any) -> bool:
        """Dial `uri` as the channel's own leg; True once answered with audio."""
        channel.key = await self.endpoint.dial(uri, channel.deliver, **dial)
        deadline = time.monotonic() + ring_s
        while not channel.hung_up:
            if channel.confirmed_at is not None and channel.media_ready.is_set():
                return True
            await asyncio.sleep(POLL_S)
            if time.monotonic() > deadline:
                with contextlib.suppress(EndpointError):
                    await self.endpoint.hangup(channel.key, 487)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(channel.ended.wait(), 3.0)
                return False
        return False

    async def _click_to_call(self, placed: _Placed) -> Outcome:
        job = placed.job
        advisor_uri = self.endpoint.config.dial_uri(job.advisor_contact or "")
        if advisor_uri is None:
            await self._state(job, "failed", "the advisor's contact cannot be dialled")
            placed.path.append("outbound.advisor_undiallable")
            return "failed"
        channel = self._channel(job, ("advisor", "caller"))
        try:
            await self._state(job, "calling_advisor")
            placed.path.append("outbound.advisor")
            self._dialling(placed)
            try:  # the advisor's phone shows the store calling (and a trunk wants a real DID)
                answered = await self._ring(
                    channel, advisor_uri, job.advisor_ring_s, **self._masked(job)
                )
            except NoCapacity:
                await self._state(job, "failed", "no free line")
                return "failed"
            if not answered:
                await self._state(job, "advisor_no_answer")
                placed.path.append("outbound.advisor_no_answer")
                return "advisor_no_answer"
            placed.advisor_answered_at = _wall(channel.confirmed_at)
            await channel.start_recording()
            if job.whisper:
                await self._state(job, "whispering")
                await channel.say(job.whisper)
            await self._state(job, "calling_customer")
            placed.path.append("outbound.customer")
            placed.customer_started_at = _now()
            watcher = asyncio.ensure_future(self._watch_bridge(channel, placed))
            self._dialling(placed)
            try:
                result = await channel.transfer(
                    [job.destination],
                    ring_seconds=job.customer_ring_s,
                    caller_id=self._caller_id_uri(job),
                )
            finally:
                watcher.cancel()
            if result.status == TransferStatus.answered:
                placed.customer_answered_at = placed.customer_answered_at or self._answered_leg(
                    channel
                )
                placed.path.append("outbound.connected")
                await self._state(job, "ended", "connected")
                return "connected"
            prompt, outcome, state = {
                TransferStatus.busy: (BUSY_PROMPT, "busy", "customer_busy"),
                TransferStatus.no_answer: (NO_ANSWER_PROMPT, "no_answer", "customer_no_answer"),
            }.get(result.status, (FAILED_PROMPT, "failed", "failed"))
            placed.path.append(f"outbound.customer_{outcome}")
            await self._state(job, state)
            with contextlib.suppress(CallerHungUp):
                await channel.say(prompt)
            return outcome  # type: ignore[return-value]
        except CallerHungUp:
            placed.path.append("outbound.advisor_hung_up")
            await self._state(job, "ended", "the advisor hung up")
            return "failed" if placed.customer_answered_at is None else "connected"
        finally:
            placed.recordings = await channel.close()
            placed.unrecorded = channel.unrecorded

    async def _watch_bridge(self, channel: PjsuaChannel, placed: _Placed) -> None:
        """`connected` and `call.answered` the moment the customer's leg is bridged."""
        while channel.bridged_to is None:
            await asyncio.sleep(POLL_S)  # cancelled when the transfer returns
        placed.customer_answered_at = self._answered_leg(channel) or _now()
        self._journal(placed)
        await self._state(placed.job, "connected")
        await self._publish(
            CallAnswered(
                call_uuid=placed.job.call_uuid,
                store_id=placed.job.store_id,
                at=placed.customer_answered_at,
            )
        )

    def _answered_leg(self, channel: PjsuaChannel) -> datetime | None:
        """When the bridged (customer) leg answered, from its `CallConfirmed`."""
        confirmed = [
            e for e in channel.events if isinstance(e, CallConfirmed) and e.key != channel.key
        ]
        return _wall(confirmed[-1].at) if confirmed else None

    async def _automated(self, placed: _Placed) -> Outcome:
        """The proactive pickup call: ring the customer, then run the job's flow."""
        job = placed.job
        if self.records is None or self.engine is None:
            await self._state(job, "failed", "this worker runs no flows")
            return "failed"
        store = await self.records.store(job.store_id)
        uri = self.endpoint.config.dial_uri(job.destination)
        if store is None or uri is None:
            await self._state(job, "failed", "no store, or no trunk to dial the customer")
            return "failed"
        if not store.is_open(_now()):
            await self._state(job, "failed", "the store is closed")
            placed.path.append("outbound.store_closed")
            return "failed"
        customer = await self.records.customer_by_phone(store.id, job.destination)
        ros = customer.open_repair_orders if customer else ()
        if not any(r.id == job.repair_order_id and r.status == READY_FOR_PICKUP for r in ros):
            # a call held for the opening: the car may have been picked up since
            await self._state(job, "failed", "the repair order is no longer ready for pickup")
            placed.path.append("outbound.ro_moved_on")
            return "failed"
        channel = self._channel(job, ("caller", "advisor"))
        try:
            await self._state(job, "calling_customer", f"attempt {job.attempt}")
            placed.path.append(f"outbound.customer_attempt_{job.attempt}")
            placed.customer_started_at = _now()
            self._dialling(placed)
            try:
                answered = await self._ring(channel, uri, job.customer_ring_s, **self._masked(job))
            except NoCapacity:
                await self._state(job, "failed", "no free line")
                return "failed"
            if not answered:
                busy = channel.end_code in (486, 600, 603)
                placed.path.append(
                    "outbound.customer_busy" if busy else "outbound.customer_no_answer"
                )
                await self._state(job, "customer_busy" if busy else "customer_no_answer")
                return "busy" if busy else "no_answer"
            placed.customer_answered_at = _wall(channel.confirmed_at)
            self._journal(placed)
            await self._state(job, "connected")
            await self._publish(
                CallAnswered(
                    call_uuid=job.call_uuid,
                    store_id=job.store_id,
                    at=placed.customer_answered_at or _now(),
                )
            )
            consent = "This call may be recorded." if store.recording_consent else None
            await channel.start_recording(consent_prompt=consent)
            await channel.say(_ready_line(store.name, customer, job.repair_order_id))
            result = await self.engine.run(
                channel,
                store=store,
                caller=job.destination,
                flow=job.flow or queue.PICKUP_FLOW,
                customer=customer,
            )
            placed.path += result.path
            await self._state(job, "ended", result.outcome.kind)
            return "connected"
        except CallerHungUp:
            await self._state(job, "ended", "the customer hung up")
            return "connected" if placed.customer_answered_at else "failed"
        finally:
            placed.recordings = await channel.close()
            placed.unrecorded = channel.unrecorded

    # --- events -------------------------------------------------------------------------------

    async def _state(self, job: OutboundJob, state: str, detail: str = "") -> None:
        log.info("outbound %s: %s %s", job.call_uuid, state, detail)
        try:
            await queue.set_state(self.redis, job.call_uuid, state, detail)
            await self.bus.publish(
                job.store_id,
                queue.CALL_OUTBOUND,
                {"call_uuid": job.call_uuid, "call_id": job.call_id, "state": state,
                 "detail": detail, "kind": job.kind},
            )  # fmt: skip
        except Exception:  # noqa: BLE001 - progress is a nicety; the call goes on
            log.exception("could not publish outbound state for %s", job.call_uuid)

    async def _publish(self, payload: CallEvent) -> Event | None:
        try:
            return await publish_call_event_async(self.bus, payload)
        except Exception:  # noqa: BLE001 - a bug in an event must not drop the call
            log.exception("could not publish %s", payload.event_type)
            return None

    async def _ended(self, placed: _Placed, outcome: Outcome) -> None:
        job = placed.job
        ended = _now()
        connected = outcome == "connected"
        legs = [
            LegInfo(
                role="caller",
                party=job.destination,
                started_at=placed.customer_started_at or placed.started_at,
                answered_at=placed.customer_answered_at,
                ended_at=ended,
            )
        ]
        if job.kind == "click_to_call" and job.advisor_contact:
            legs.append(
                LegInfo(
                    role="advisor",
                    party=job.advisor_contact[:200],
                    user_id=job.advisor_id,
                    started_at=placed.started_at,
                    answered_at=placed.advisor_answered_at,
                    ended_at=ended,
                )
            )
        placed.ended = await self._publish(
            CallEnded(
                call_uuid=job.call_uuid,
                store_id=job.store_id,
                at=ended,
                disposition=_disposition(job, outcome),
                direction="outbound",
                did=job.caller_id,
                caller=job.destination,
                customer_id=job.customer_id,
                started_at=placed.started_at,
                answered_at=placed.customer_answered_at if connected else None,
                flow_path=placed.path,
                legs=legs,
                recordings=recording_infos(placed.recordings, self.recordings_dir),
                unrecorded=unrecorded_infos(placed.unrecorded),
            )
        )


async def close_lost_call(redis: aioredis.Redis, bus: AsyncEventBus, entry: JournalEntry) -> None:
    """A masked call this worker's previous run dropped (its `call.ended` is already out):
    its state says so, and its job leaves the queue's pending list."""
    if entry.direction != "outbound":
        return
    detail = "the worker stopped during the call"
    await queue.set_state(redis, entry.call_uuid, "failed", detail)
    await bus.publish(
        entry.store_id,
        queue.CALL_OUTBOUND,
        {"call_uuid": entry.call_uuid, "call_id": entry.call_id, "state": "failed",
         "detail": detail},
    )  # fmt: skip
    if entry.queue_entry:
        await queue.done_job(redis, entry.queue_entry)


def _ready_line(store: str, customer: CustomerInfo | None, ro_id: int | None) -> str:
    """The automated call's opening: who is calling and why, before the pickup flow asks."""
    hello = f"Hi {customer.first_name}, this" if customer and customer.first_name else "This"
    ro = next((r for r in customer.open_repair_orders if r.id == ro_id), None) if customer else None
    vehicle = ro.vehicle.description if ro and ro.vehicle else "vehicle"
    return f"{hello} is {store} service. Your {vehicle} is ready for pickup."


def _disposition(job: OutboundJob, outcome: Outcome) -> Disposition:
    """Connected click-to-call: `transferred` (a person talked); an automated call the flow
    finished: `handled_by_ivr`; not reached: `missed` (the writer makes no callback task for
    outbound calls); our own trouble: `failed`."""
    if outcome == "connected":
        return (
            Disposition.transferred if job.kind == "click_to_call" else Disposition.handled_by_ivr
        )
    if outcome in ("failed", "expired"):
        return Disposition.failed
    return Disposition.missed
