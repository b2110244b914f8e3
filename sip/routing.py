"""From a dialled number to a running flow: the router the worker uses for real calls.

    router = flow_router(FlowEngine(load_flows("flows"), records), records)
    worker = SipWorker(config, router, tts=tts, recordings_dir=...)

Unknown DID → None (the worker answers 404). A known one returns a handler that runs the
store's entry flow on the channel; `on_result` gets the engine's `CallResult` (the lead wires
the call record / transcription job there). Greeting pre-synthesis while it rings is the next
step: the router is the place for it, before the handler is returned.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from ivr.flow.engine import CallResult, FlowEngine
from ivr.flow.records import Records
from sip.channel import PjsuaChannel
from sip.worker import CallHandler, CallRouter, InboundCall

log = logging.getLogger(__name__)

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
