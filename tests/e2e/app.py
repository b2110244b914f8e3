"""A real SIP worker for the end-to-end tests: scripted handlers picked by the dialled number.

Run as `python -m tests.e2e.app --dir TMP [--rtp-timeout S]`. It binds a free loopback port and
writes one JSON object per line on stdout (other lines, such as pjlib's banner, are not JSON and
the tests skip them): `ready` with the port, then what each call did. On stdin it takes `stats`
(answers with live pjsua2 Call objects and open channels) and `quit`.

Numbers (E.164):
  +15550100001 echo:   gather one key behind a short prompt, say it back, hang up
  +15550100002 long:   a 6 s prompt; reports the caller hanging up in the middle of it
  +15550100003 hold:   a short greeting, then listen until the caller hangs up (20 s at most)
  +15550100004 record: record until '#' (4 s at most), report the file, hang up
  +15550100006 speech: record with a 1 s silence timeout, 3 s at most, report it, hang up
  +15550100007 slow:   the router takes 0.8 s (then `hold`); for callers who give up ringing
  +15550100005 flow:   the real flow engine running tests/e2e/flows/ (sip/routing.py)
  anything else:       404
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ivr.flow import CallResult, FlowEngine, load_flows
from ivr.flow.channel import CallerHungUp, Prompt
from ivr.flow.fakes import FakeRecords, store_from_dict
from ivr.speech import FakeTTS
from sip.channel import PjsuaChannel
from sip.endpoint import EndpointConfig
from sip.events import DtmfDigit
from sip.routing import flow_router
from sip.worker import CallHandler, CallRouter, InboundCall, SipWorker

FLOWS = Path(__file__).resolve().parent / "flows"
FLOW_DID = "+15550100005"
SLOW_DID = "+15550100007"

GREETING = "Hello."
LONG_PROMPT = "x" * 100  # FakeTTS: 60 ms a character → 6 s


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
    emit("gathered", call=call.sip_call_id, digits=result.digits, methods=methods)
    await channel.say(f"You pressed {result.digits or 'nothing'}.")
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


HANDLERS: dict[str, CallHandler] = {
    "+15550100001": echo,
    "+15550100002": long_prompt,
    "+15550100003": hold,
    "+15550100004": record,
    "+15550100006": record_speech,
}


async def flow_done(call: InboundCall, result: CallResult) -> None:
    emit("flow_result", call=call.sip_call_id, outcome=result.outcome.kind, said=result.said)


def make_router(tts: FakeTTS) -> CallRouter:
    records = FakeRecords(stores=[store_from_dict({"name": "Hometown Motors", "dids": [FLOW_DID]})])
    flows = flow_router(FlowEngine(load_flows(FLOWS), records), records, on_result=flow_done)

    async def router(call: InboundCall) -> CallHandler | None:
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


async def main(directory: Path, rtp_timeout: float | None) -> None:
    tts = FakeTTS(directory / "tts")
    config = EndpointConfig(host="127.0.0.1", port=0, rtp_timeout=rtp_timeout, log_level=0)
    worker = SipWorker(config, make_router(tts), tts=tts, recordings_dir=directory / "recordings")
    await worker.start()
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str] = asyncio.Queue()

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
                emit("stats", live_calls=live, channels=len(worker.channels))
    finally:
        await worker.stop()
        emit("stopped")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--rtp-timeout", type=float, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    asyncio.run(main(args.dir, args.rtp_timeout))
