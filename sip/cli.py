"""`driveline sip`: one SIP worker process answering the stores' numbers.

One process carries at most 4 calls (the pjsua2 wheel's cap), so a store group runs several of
these behind Kamailio; `driveline serve` starts one for the single-box setup.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import click

from ivr.config import Settings, get_settings

log = logging.getLogger(__name__)

READY = "sip worker ready on"  # the line a supervisor waits for on stdout


async def run_worker(
    settings: Settings, host: str, port: int, *, fake_tts: bool, reserve: int = 0
) -> None:
    """Load flows, warm the voice, prerender static prompts, then answer until SIGTERM."""
    from events.bus import AsyncEventBus
    from ivr.cli_flows import load_or_exit
    from ivr.flow import FlowEngine
    from ivr.flow.prompts import static_prompts
    from ivr.speech import TTS, FakeTTS
    from records.db import make_engine
    from records.flow_records import SqlRecords
    from sip.endpoint import EndpointConfig
    from sip.lifecycle import CONSENT_PROMPT, CallLifecycle
    from sip.worker import SipWorker
    from speech.piper_tts import default_tts
    from speech.prerender import prerender

    flows = load_or_exit(settings.flows_dir, refusing="driveline sip")
    engine = make_engine(settings.database_url)
    bus = AsyncEventBus(settings.redis_url)
    records = SqlRecords(engine, bus, region=settings.default_region)
    tts: TTS
    if fake_tts:
        tts = FakeTTS(settings.prompts_dir / "fake")
    else:
        piper = default_tts(settings)
        await piper.warm()
        tts = piper
    prompts = await prerender(tts, [CONSENT_PROMPT, *static_prompts(flows)])
    lifecycle = CallLifecycle(
        FlowEngine(flows, records), records, bus, tts, settings.recordings_dir
    )
    worker = SipWorker(
        EndpointConfig(host=host, port=port, outbound_reserve=reserve),
        lifecycle.route,
        on_call_end=lifecycle.finished,
        tts=tts,
        recordings_dir=settings.recordings_dir,
        region=settings.default_region,
    )
    await worker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    bound_host, bound_port = worker.address
    click.echo(f"{READY} {bound_host}:{bound_port} ({len(prompts)} prompts ready)")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await worker.stop()
        await bus.close()
        engine.dispose()


@click.command("sip")
@click.option("--bind", default=None, help="HOST:PORT for SIP (UDP and TCP); default sip_bind.")
@click.option("--fake-tts", is_flag=True, help="Tones instead of piper speech (tests).")
@click.option(
    "--reserve",
    type=click.IntRange(0, 3),
    default=0,
    show_default=True,
    help="Call slots kept free for transfer legs: with 1, a worker takes 3 callers and can "
    "always bridge one of them to an advisor.",
)
def sip(bind: str | None, fake_tts: bool, reserve: int) -> None:
    """Run one SIP worker: answers calls to the stores' numbers and runs their flows."""
    from sip.worker import parse_bind

    settings = get_settings()
    try:
        host, port = parse_bind(bind or settings.sip_bind)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--bind") from None
    asyncio.run(run_worker(settings, host, port, fake_tts=fake_tts, reserve=reserve))
