"""The SIP worker: one pjsua2 endpoint, and for each call a router decision and a handler task.

    INVITE ─▶ (pj thread) 180 Ringing, CallOffered ─▶ router(call) on asyncio
       router returns None            ─▶ 404 Not Found
       router raises / takes too long ─▶ 503 Service Unavailable
       router returns a handler       ─▶ 200 OK, wait for media, [record_calls: consent
                                          prompt, caller-leg recording], handler(channel, call)
    handler returns or raises         ─▶ BYE (if the caller has not hung up), channel closed:
                                          recordings finished, on_call_end(channel, call)

The router is where the async work before answering goes (store for the DID, customer lookup,
screen-pop event, greeting synthesis), so audio can start as soon as the call is answered.
A surplus INVITE never reaches the router: pjsua answers it 486 Busy Here (see endpoint.py).

`driveline sip` (sip/cli.py) runs a worker with the store flows behind `sip/lifecycle.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from events.health import WORKER_STATS
from ivr.flow.channel import CallerHungUp
from ivr.logs import call_id_var
from ivr.phone import try_e164, uri_user
from ivr.speech import TTS
from sip.channel import PjsuaChannel, Recognizer
from sip.endpoint import EndpointConfig, EndpointError, SipEndpoint
from sip.events import CallOffered, SipEvent
from sip.media import MIN_RECORDING_FREE_BYTES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InboundCall:
    """What the router and the handler know about a call before it is answered."""

    key: int
    sip_call_id: str
    did: str | None  # E.164 of the number dialled (Request-URI user, else To user)
    caller: str | None  # E.164 of the caller ID (From user); None when withheld or not a number
    did_raw: str
    caller_raw: str
    source: str
    received_at: float  # time.monotonic() when the INVITE was handed to us
    # Our id for the call: in every event, the call record and its recordings' file names.
    call_uuid: str = field(default_factory=lambda: str(uuid.uuid4()))


CallHandler = Callable[[PjsuaChannel, InboundCall], Awaitable[None]]
CallRouter = Callable[[InboundCall], Awaitable[CallHandler | None]]
# Runs once the call is over and `channel.recordings` are final (also when the worker stops).
CallEndHook = Callable[[PjsuaChannel, InboundCall], Awaitable[None]]


def inbound_from(offer: CallOffered, region: str = "US") -> InboundCall:
    did_raw = uri_user(offer.request_uri) or uri_user(offer.to_uri)
    caller_raw = uri_user(offer.from_uri)
    did = try_e164(did_raw, region)
    if did is None and did_raw != uri_user(offer.to_uri):
        did = try_e164(uri_user(offer.to_uri), region)  # a proxy may rewrite the Request-URI
    return InboundCall(
        key=offer.key,
        sip_call_id=offer.sip_call_id,
        did=did,
        caller=try_e164(caller_raw, region),
        did_raw=did_raw,
        caller_raw=caller_raw,
        source=offer.source,
        received_at=offer.received_at,
    )


class SipWorker:
    """Owns the endpoint and every call's task; start() / stop() are the whole life cycle."""

    def __init__(
        self,
        config: EndpointConfig,
        router: CallRouter,
        *,
        tts: TTS,
        recordings_dir: Path,
        region: str = "US",
        route_timeout: float = 5.0,
        media_timeout: float = 5.0,
        media_dir: Path | None = None,
        record_calls: bool = False,
        consent_prompt: str | None = None,
        on_call_end: CallEndHook | None = None,
        recognizer: Recognizer | None = None,
        min_free_bytes: int = MIN_RECORDING_FREE_BYTES,
    ) -> None:
        """`record_calls` records every answered call from the start (after `consent_prompt`);
        a worker serving stores with different consent settings leaves it off and has the
        handler call `channel.start_recording(consent_prompt=...)` itself. `media_dir` caches
        generated tones (ringback, beep). A leg is recorded only while `recordings_dir` has
        `min_free_bytes` free (the call goes on unrecorded otherwise: sip/channel.py)."""
        self.endpoint = SipEndpoint(config, self._on_event)
        self.recognizer = recognizer  # speech gathers' recogniser (speech/recognizer.py client)
        self.router = router
        self.tts = tts
        self.recordings_dir = Path(recordings_dir)
        self.min_free_bytes = min_free_bytes
        self.media_dir = media_dir
        self.record_calls = record_calls
        self.consent_prompt = consent_prompt
        self.on_call_end = on_call_end
        self.region = region
        self.route_timeout = route_timeout
        self.media_timeout = media_timeout
        self.channels: dict[int, PjsuaChannel] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.draining = False  # set by drain(): new INVITEs get 503, so a proxy tries another

    @property
    def address(self) -> tuple[str, int]:
        return self.endpoint.address

    async def start(self) -> None:
        await self.endpoint.start()

    async def drain(self, timeout: float) -> None:
        """Refuse new calls with 503 and wait up to `timeout` s for the active ones to end
        (a rolling restart loses no caller); `stop()` then hangs up whatever is left."""
        self.draining = True
        if self._tasks:
            log.info("draining: waiting for %d call(s), %.0f s at most", len(self._tasks), timeout)
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)
        await self.endpoint.stop()

    def _on_event(self, event: SipEvent) -> None:
        if isinstance(event, CallOffered):
            inbound = inbound_from(event, self.region)
            channel = PjsuaChannel(
                self.endpoint,
                event.key,
                tts=self.tts,
                recordings_dir=self.recordings_dir,
                min_free_bytes=self.min_free_bytes,
                call_uuid=inbound.call_uuid,
                name=event.sip_call_id,
                media_dir=self.media_dir,
                recognizer=self.recognizer,
            )
            self.channels[event.key] = channel
            task = asyncio.get_running_loop().create_task(self._serve(channel, inbound))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        known = self.channels.get(event.key)
        if known is not None:  # events after a call's task finished are dropped
            known.deliver(event)

    async def _serve(self, channel: PjsuaChannel, call: InboundCall) -> None:
        call_id_var.set(call.call_uuid)  # this task's context: every log line of the call
        WORKER_STATS.call_started()
        clog = channel.log
        clog.info("INVITE did=%s caller=%s from %s", call.did_raw, call.caller_raw, call.source)
        try:
            handler = await self._route(channel, call)
            if handler is None or channel.hung_up:
                return
            await self.endpoint.answer(call.key, 200)
            channel.answered_at = time.monotonic()
            WORKER_STATS.answer_latency.observe(channel.answered_at - call.received_at)
            clog.info(
                "answered %.1f ms after the INVITE", (channel.answered_at - call.received_at) * 1e3
            )
            try:
                await asyncio.wait_for(channel.media_ready.wait(), self.media_timeout)
            except TimeoutError:
                clog.warning("no audio %.1fs after answering; hanging up", self.media_timeout)
                return
            try:
                if self.record_calls:
                    await channel.start_recording(consent_prompt=self.consent_prompt)
                await handler(channel, call)
            except CallerHungUp:
                clog.info("caller hung up")
            except Exception:  # noqa: BLE001 - one call's bug must not take the worker down
                clog.exception("call handler failed")
        except EndpointError as exc:
            clog.info("call ended early: %s", exc)
        finally:
            with contextlib.suppress(EndpointError):
                await channel.close()  # hangs up, finishes the recordings
            self.channels.pop(call.key, None)
            clog.info("call done (%s %s)", channel.end_code, channel.end_reason)
            if self.on_call_end is not None:
                try:
                    await self.on_call_end(channel, call)
                except Exception:  # noqa: BLE001 - a failing hook must not take the worker down
                    clog.exception("on_call_end failed")
            if channel.first_audio_at is not None and channel.answered_at is not None:
                WORKER_STATS.prompt_latency.observe(channel.first_audio_at - channel.answered_at)
            WORKER_STATS.call_finished()

    async def _route(self, channel: PjsuaChannel, call: InboundCall) -> CallHandler | None:
        if self.draining:
            channel.log.info("draining; 503")
            await self.endpoint.hangup(call.key, 503)
            return None
        try:
            handler = await asyncio.wait_for(self.router(call), self.route_timeout)
        except Exception:  # includes the timeout
            channel.log.exception("routing failed; 503")
            await self.endpoint.hangup(call.key, 503)
            return None
        if handler is None:
            channel.log.info("no store for DID %s; 404", call.did_raw)
            await self.endpoint.hangup(call.key, 404)
        return handler


def parse_bind(value: str) -> tuple[str, int]:
    """`127.0.0.1:5060` → (`127.0.0.1`, 5060); ValueError for anything else."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)
