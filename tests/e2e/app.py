"""A real SIP worker for the end-to-end tests: scripted handlers picked by the dialled number.

Run as `python -m tests.e2e.app --dir TMP [--rtp-timeout S]`. It binds a free loopback port and
writes one JSON object per line on stdout (other lines, such as pjlib's banner, are not JSON and
the tests skip them): `ready` with the port, then what each call did. On stdin it takes `stats`
(answers with live pjsua2 Call objects and open channels) and `quit`.

Numbers (E.164):
  +15550100001 echo:   gather one key behind a short prompt, say it back, hang up (reports the
               digits, how they came and the caller's holds/resumes)
  +15550100002 long:   a 6 s prompt; reports the caller hanging up in the middle of it
  +15550100003 hold:   a short greeting, then listen until the caller hangs up (20 s at most)
  +15550100004 record: record until '#' (4 s at most), report the file, hang up
  +15550100006 speech: record with a 1 s silence timeout, 3 s at most, report it, hang up
  +15550100007 slow:   the router takes 0.8 s (then `hold`); for callers who give up ringing
  +15550100010 typeahead: a 1.8 s greeting, then gather one key behind a prompt; reports the
               digits, whether the greeting was cut short and how long the gather took
  +15550100005 flow:   the real flow engine running tests/e2e/flows/ (flow_router below)
  +15550100008 recorded hold: consent prompt, record the caller's leg, a 6 s prompt, listen
  +15550100009 recorded hold, no consent prompt
  xfer-P1[.P2...]-RING_MS: record the call, then a bridged transfer to sip:advisor@127.0.0.1:P
               (each port P rung at once) ringing RING_MS; reports the result; when nobody
               answered, the fallback: says FALLBACK and hangs up
  +15550100011 speech: the flow engine running SPEECH_FLOW (a spoken or keyed menu); needs
               `--redis URL`, where a speech service (speech/recognizer.py) must run
  +15550100012 intents: INTENT_FLOW, an open "How can I help you today?" whose answer the
               speech service recognizes and classifies among its intents (same `--redis URL`)
  +15550100013 shipped: the shipped flows (flows/) for a known caller with a Tahoe and a
               Silverado in the shop, on a Wednesday at 10 AM; intents and slots from the
               speech service (same `--redis URL`); reports the thread entries it wrote
  flowxfer-P:  the real flow engine running TRANSFER_FLOW (a transfer step ringing
               sip:advisor@127.0.0.1:P for 1.5 s, `otherwise` a goodbye), recorded
  anything else:       404
When a call is over the worker reports `recordings` (every finished leg recording).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ivr.flow import CallResult, FlowEngine, load_flows
from ivr.flow.channel import CallerHungUp, Prompt, TransferStatus
from ivr.flow.fakes import FakeRecords, local_time, store_from_dict
from ivr.flow.records import Records
from ivr.speech import FakeTTS, Understanding
from sip.channel import PjsuaChannel
from sip.endpoint import EndpointConfig
from sip.events import DtmfDigit, MediaHold
from sip.worker import CallHandler, CallRouter, InboundCall, SipWorker
from speech.recognizer import SpeechClient

FLOWS = Path(__file__).resolve().parent / "flows"
SHIPPED_FLOWS = Path(__file__).resolve().parents[2] / "flows"

# A flow router without the product's call events (sip/lifecycle.py): FakeRecords, no Redis.
ResultSink = Callable[[InboundCall, CallResult], Awaitable[None]]


def flow_router(
    engine: FlowEngine,
    records: Records,
    *,
    flow: str = "main",
    on_result: ResultSink | None = None,
) -> CallRouter:
    async def route(call: InboundCall) -> CallHandler | None:
        if call.did is None:
            return None
        store = await records.store_for_did(call.did)
        if store is None:
            return None

        async def run_flow(channel: PjsuaChannel, inbound: InboundCall) -> None:
            result = await engine.run(channel, store=store, caller=inbound.caller, flow=flow)
            channel.log.info("flow ended: %s", result.outcome.describe())
            if on_result is not None:
                await on_result(inbound, result)

        return run_flow

    return route


FLOW_DID = "+15550100005"
SPEECH_DID = "+15550100011"
INTENT_DID = "+15550100012"
SHIPPED_DID = "+15550100013"
SHIPPED_NOW = "2026-11-25T10:00:00"  # a Wednesday morning, store time: open
SHIPPED_GIVEN: dict[str, Any] = {
    "store": {"name": "Hometown Motors", "dids": [SHIPPED_DID]},
    "users": [
        {"username": "alice", "name": "Alice Smith", "contact": "sip:alice@127.0.0.1:9"},
        {"username": "bob", "name": "Bob Jones", "contact": "sip:bob@127.0.0.1:9"},
    ],
    "customer": {
        "first_name": "Dana",
        "last_name": "Reyes",
        "phone": "+15552010001",  # sipp's caller
        "advisor": "alice",
        "repair_orders": [
            {"number": "4711", "status": "Ready for Pickup", "vehicle": "2019 Chevrolet Tahoe"},
            {"number": "4712", "status": "Tech Working", "vehicle": "2020 Chevrolet Silverado"},
        ],
    },
}
INTENT_FLOW = """
name: main
start: menu
steps:
  menu:
    gather:
      prompt: "How can I help you today?"
      choices:
        status:
          dtmf: "1"
          examples: ["is my car ready", "I'm calling to check on my car", "any update on my car"]
        pickup: {dtmf: "2", examples: ["I want to pick up my car", "when can I come get it"]}
        our_hours: {dtmf: "3", examples: ["what are your hours", "when do you close"]}
      timeout: 8s
      attempts: 1
      otherwise: bye
  status:
    say: "Your car is ready."
    next: bye
  pickup:
    say: "See you soon."
    next: bye
  our_hours:
    say: "Seven to six."
    next: bye
  bye:
    hangup: "Goodbye."
"""
SPEECH_FLOW = """
name: main
start: menu
steps:
  menu:
    gather:
      prompt: "For an update on your vehicle, say status or press 1."
      choices:
        status: {dtmf: "1", phrases: ["status", "is my car ready", "update"]}
        pickup: {dtmf: "2", phrases: ["pick up", "pickup"]}
        advisor: {dtmf: "0", phrases: ["advisor", "representative"]}
      timeout: 8s
      attempts: 1
      otherwise: bye
  status:
    say: "Your car is ready."
    next: bye
  pickup:
    say: "See you soon."
    next: bye
  advisor:
    say: "One moment."
    next: bye
  bye:
    hangup: "Goodbye."
"""
SLOW_DID = "+15550100007"

GREETING = "Hello."
LONG_PROMPT = "x" * 100  # FakeTTS: 60 ms a character → 6 s
CONSENT = "Recorded call."  # FakeTTS: 0.84 s
FALLBACK = "Nobody is free."
TRANSFER = re.compile(r"^xfer-(\d+(?:\.\d+)*)-(\d+)$")
FLOW_TRANSFER = re.compile(r"^flowxfer-(\d+)$")
TRANSFER_FLOW = """
name: main
start: connect
steps:
  connect:
    transfer:
      to: "sip:advisor@127.0.0.1:{port}"
      ring: 1.5s
      prompt: "Connecting."
      otherwise: bye
  bye:
    hangup: "Nobody is free. Goodbye."
"""


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def timings(channel: PjsuaChannel, call: InboundCall) -> dict[str, float | None]:
    def ms(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round((a - b) * 1000, 1)

    return {
        "invite_to_200_ms": ms(channel.answered_at, call.received_at),
        "answer_to_first_audio_ms": ms(channel.first_audio_at, channel.answered_at),
    }


async def echo(channel: PjsuaChannel, call: InboundCall) -> None:
    result = await channel.gather(Prompt("Press a key."), max_digits=1, timeout=6.0)
    methods = [e.method for e in channel.events if isinstance(e, DtmfDigit)]
    holds = [e.held for e in channel.events if isinstance(e, MediaHold)]
    emit("gathered", call=call.sip_call_id, digits=result.digits, methods=methods, holds=holds)
    await channel.say(f"You pressed {result.digits or 'nothing'}.")
    await channel.hangup()


async def typeahead(channel: PjsuaChannel, call: InboundCall) -> None:
    greeting = await channel.say("x" * 30)  # FakeTTS: 1.8 s; keys now are type-ahead
    started = time.monotonic()
    result = await channel.gather(Prompt("Press a key."), max_digits=1, timeout=4.0)
    emit("gathered", call=call.sip_call_id, digits=result.digits,
         greeting_interrupted=greeting.interrupted,
         gather_ms=round((time.monotonic() - started) * 1000))  # fmt: skip
    await channel.hangup()


async def long_prompt(channel: PjsuaChannel, call: InboundCall) -> None:
    started = time.monotonic()
    try:
        await channel.say(LONG_PROMPT)
    except CallerHungUp:
        emit("hung_up", call=call.sip_call_id, after_ms=round((time.monotonic() - started) * 1000))
        raise
    emit("prompt_done", call=call.sip_call_id)


async def hold(channel: PjsuaChannel, call: InboundCall) -> None:
    await channel.say(GREETING)
    emit("greeted", call=call.sip_call_id, **timings(channel, call))
    try:
        await channel.gather(None, max_digits=99, timeout=20.0, inter_digit_timeout=20.0)
    except CallerHungUp:
        emit("hung_up", call=call.sip_call_id, rtp_timeout=channel.rtp_timeout)
        raise


async def record(channel: PjsuaChannel, call: InboundCall) -> None:
    recording = await channel.record(max_seconds=4.0, silence_timeout=10.0, beep=True)
    emit(
        "recorded",
        call=call.sip_call_id,
        path=recording.path,
        duration=recording.duration,
        hung_up=recording.hung_up,
    )
    await channel.hangup()


async def record_speech(channel: PjsuaChannel, call: InboundCall) -> None:
    recording = await channel.record(max_seconds=3.0, silence_timeout=1.0, beep=False)
    emit("recorded", call=call.sip_call_id, path=recording.path, duration=recording.duration)
    await channel.hangup()


async def recorded_hold(channel: PjsuaChannel, call: InboundCall, consent: bool) -> None:
    try:
        await channel.start_recording(consent_prompt=CONSENT if consent else None)
        emit("recording", call=call.sip_call_id, uuid=channel.call_uuid)
        await channel.say(LONG_PROMPT)
        await channel.gather(None, max_digits=99, timeout=20.0, inter_digit_timeout=20.0)
    except CallerHungUp:
        emit("hung_up", call=call.sip_call_id, rtp_timeout=channel.rtp_timeout)
        raise


async def consent_hold(channel: PjsuaChannel, call: InboundCall) -> None:
    await recorded_hold(channel, call, consent=True)


async def plain_recorded_hold(channel: PjsuaChannel, call: InboundCall) -> None:
    await recorded_hold(channel, call, consent=False)


def transfer_handler(ports: list[str], ring_seconds: float) -> CallHandler:
    async def transfer(channel: PjsuaChannel, call: InboundCall) -> None:
        await channel.start_recording()
        contacts = [f"sip:advisor@127.0.0.1:{port}" for port in ports]
        started = time.monotonic()
        try:
            result = await channel.transfer(contacts, ring_seconds=ring_seconds)
        except CallerHungUp:
            emit("transfer", call=call.sip_call_id, status="caller_hung_up",
                 after_ms=round((time.monotonic() - started) * 1000))  # fmt: skip
            raise
        after_ms = round((time.monotonic() - started) * 1000)
        emit("transfer", call=call.sip_call_id, status=result.status.value,
             contact=result.contact, after_ms=after_ms)  # fmt: skip
        if result.status != TransferStatus.answered:
            await channel.say(FALLBACK)
            emit("fallback", call=call.sip_call_id)
            await channel.hangup()

    return transfer


HANDLERS: dict[str, CallHandler] = {
    "+15550100008": consent_hold,
    "+15550100009": plain_recorded_hold,
    "+15550100001": echo,
    "+15550100002": long_prompt,
    "+15550100003": hold,
    "+15550100004": record,
    "+15550100006": record_speech,
    "+15550100010": typeahead,
}


async def flow_done(call: InboundCall, result: CallResult) -> None:
    notes = [line.text for line in result.log if line.who == "SYSTEM"]
    emit("flow_result", call=call.sip_call_id, outcome=result.outcome.kind, said=result.said,
         contact=result.outcome.contact, notes=notes, path=result.path)  # fmt: skip


def flow_transfer_handler(records: FakeRecords, scratch: Path, port: str) -> CallHandler:
    """The flow engine's own transfer step on a real call (flows written for this port)."""
    folder = scratch / f"flows-{port}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.yaml").write_text(TRANSFER_FLOW.format(port=port))
    engine = FlowEngine(load_flows(folder), records)

    async def run(channel: PjsuaChannel, call: InboundCall) -> None:
        await channel.start_recording()
        result = await engine.run(channel, store=records.stores[0], caller=call.caller)
        await flow_done(call, result)

    return run


def speech_flow_handler(
    records: FakeRecords, scratch: Path, flow: str, understanding: Understanding | None
) -> CallHandler:
    """SPEECH_FLOW or INTENT_FLOW on a real call: its menu listens for keys and speech at once;
    intents are scored by the speech service (`understanding` is its client)."""
    folder = scratch / ("flows-intents" if flow is INTENT_FLOW else "flows-speech")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.yaml").write_text(flow)
    engine = FlowEngine(load_flows(folder), records, understanding=understanding)

    async def run(channel: PjsuaChannel, call: InboundCall) -> None:
        result = await engine.run(channel, store=records.stores[0], caller=call.caller)
        await flow_done(call, result)
        emit("speech_timing", call=call.sip_call_id, speech_ended_at=channel.speech_ended_at,
             now=time.monotonic())  # fmt: skip

    return run


def shipped_flow_handler(understanding: Understanding | None) -> CallHandler:
    """The shipped flows on a real call, for SHIPPED_GIVEN's caller at SHIPPED_NOW."""
    records = FakeRecords.from_dict(SHIPPED_GIVEN)
    store = records.stores[0]
    now = local_time(SHIPPED_NOW, store)
    engine = FlowEngine(load_flows(SHIPPED_FLOWS), records, understanding=understanding)

    async def run(channel: PjsuaChannel, call: InboundCall) -> None:
        result = await engine.run(channel, store=store, caller=call.caller, clock=lambda: now)
        await flow_done(call, result)
        emit("thread", call=call.sip_call_id, entries=records.thread_entries)

    return run


def make_router(
    tts: FakeTTS, scratch: Path, understanding: Understanding | None = None
) -> CallRouter:
    records = FakeRecords(stores=[store_from_dict({"name": "Hometown Motors", "dids": [FLOW_DID]})])
    flows = flow_router(FlowEngine(load_flows(FLOWS), records), records, on_result=flow_done)

    async def router(call: InboundCall) -> CallHandler | None:
        if match := FLOW_TRANSFER.match(call.did_raw):
            emit("offered", call=call.sip_call_id, did=call.did_raw, known=True)
            return flow_transfer_handler(records, scratch, match[1])
        if match := TRANSFER.match(call.did_raw):
            emit("offered", call=call.sip_call_id, did=call.did_raw, known=True)
            return transfer_handler(match[1].split("."), int(match[2]) / 1000)
        if call.did in (SPEECH_DID, INTENT_DID):
            emit("offered", call=call.sip_call_id, did=call.did, known=True)
            flow = SPEECH_FLOW if call.did == SPEECH_DID else INTENT_FLOW
            return speech_flow_handler(records, scratch, flow, understanding)
        if call.did == SHIPPED_DID:
            emit("offered", call=call.sip_call_id, did=call.did, known=True)
            return shipped_flow_handler(understanding)
        if call.did == SLOW_DID:
            await asyncio.sleep(0.8)
            emit("routed", call=call.sip_call_id)
            return hold
        handler = HANDLERS.get(call.did or "") or await flows(call)
        emit(
            "offered", call=call.sip_call_id, did=call.did, caller=call.caller, known=bool(handler)
        )
        if handler is not None:
            await tts.render(GREETING)  # what a real router does while it rings
        return handler

    return router


async def call_ended(channel: PjsuaChannel, call: InboundCall) -> None:
    emit(
        "recordings",
        call=call.sip_call_id,
        uuid=channel.call_uuid,
        recordings=[
            {
                "role": r.role,
                "kind": r.kind,
                "path": r.path,
                "sha256": r.sha256,
                "duration_s": r.duration_s,
                "started_at": r.started_at.isoformat(),
            }
            for r in channel.recordings
        ],
    )


async def main(
    directory: Path, rtp_timeout: float | None, outbound_reserve: int, redis_url: str | None
) -> None:
    tts = FakeTTS(directory / "tts")
    recognizer = SpeechClient(redis_url, timeout=20.0) if redis_url else None
    config = EndpointConfig(
        host="127.0.0.1",
        port=0,
        rtp_timeout=rtp_timeout,
        log_level=0,
        outbound_reserve=outbound_reserve,
    )
    worker = SipWorker(
        config,
        make_router(tts, directory, recognizer),
        tts=tts,
        recordings_dir=directory / "recordings",
        media_dir=directory / "tones",
        on_call_end=call_ended,
        recognizer=recognizer,
    )
    await worker.start()
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str] = asyncio.Queue()
    loop.add_signal_handler(signal.SIGTERM, commands.put_nowait, "quit")

    def read_stdin() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(commands.put_nowait, line.strip())
        loop.call_soon_threadsafe(commands.put_nowait, "quit")

    threading.Thread(target=read_stdin, daemon=True).start()
    emit("ready", port=worker.address[1])
    try:
        while (command := await commands.get()) != "quit":
            if command == "stats":
                live = await worker.endpoint.live_calls()
                free = await worker.endpoint.free_slots()
                emit("stats", live_calls=live, channels=len(worker.channels), free_slots=free)
    finally:
        await worker.stop()
        emit("stopped")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--rtp-timeout", type=float, default=None)
    parser.add_argument("--outbound-reserve", type=int, default=0)
    parser.add_argument("--redis", default=None, help="Redis URL of a speech service.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    asyncio.run(main(args.dir, args.rtp_timeout, args.outbound_reserve, args.redis))
