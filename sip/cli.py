"""`driveline sip`: one SIP worker process answering the stores' numbers.

One process carries at most 4 calls (the pjsua2 wheel's cap), so a store group runs several of
these behind Kamailio (`driveline edge`); `driveline sip --workers N` supervises N of them on
consecutive ports (driveline/pool.py). SIGTERM drains: new calls get 503 (Kamailio tries another
worker), active ones finish (up to `sip_drain_s`), then the worker exits. A worker first closes
the calls a killed previous run of it left open (sip/journal.py). While the database is
unreachable calls are still answered, as the store last seen for the number (sip/directory.py),
by the `records_down` flow.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import signal
import socket
import sys
from typing import TYPE_CHECKING

import click

from ivr.config import Settings

if TYPE_CHECKING:
    from sip.endpoint import EndpointConfig

log = logging.getLogger(__name__)

READY = "sip worker ready on"  # the line a supervisor waits for on stdout


async def run_worker(
    settings: Settings, host: str, port: int, *, fake_tts: bool, reserve: int = 0
) -> None:
    """Load flows, warm the voice, prerender static prompts, then answer until SIGTERM."""
    from events.bus import AsyncEventBus
    from events.health import Heartbeat
    from ivr.flow import FlowEngine
    from ivr.flow.prompts import static_prompts
    from ivr.flow.startup import load_or_exit
    from ivr.speech import TTS, FakeTTS
    from records.db import make_engine
    from records.flow_records import SqlRecords
    from sip.journal import CallJournal, journal_dir, recover
    from sip.lifecycle import CONSENT_PROMPT, CallLifecycle
    from sip.outbound import OutboundRunner, close_lost_call
    from sip.worker import SipWorker
    from speech.piper_tts import default_tts
    from speech.prerender import prerender
    from speech.recognizer import SpeechClient

    flows = load_or_exit(settings.flows_dir, refusing="driveline sip")
    # A lookup that outlasts the timeout gives up (the caller gets the records_down flow); its
    # connection attempt ends at the engine's connect timeout, so no thread hangs on for minutes.
    timeout = settings.sip_records_timeout_s
    engine = make_engine(settings.database_url, connect_timeout=math.ceil(timeout))
    bus = AsyncEventBus(settings.redis_url)
    records = SqlRecords(engine, bus, region=settings.default_region, timeout=timeout)
    tts: TTS
    if fake_tts:
        tts = FakeTTS(settings.prompts_dir / "fake")
    else:
        piper = default_tts(settings)
        await piper.warm()
        tts = piper
    prompts = await prerender(tts, [CONSENT_PROMPT, *static_prompts(flows)])
    journal = CallJournal(journal_dir(settings.recordings_dir, worker_id(settings, port)))
    recovered = await recover(
        journal, settings.recordings_dir, bus, after=lambda e: close_lost_call(bus.redis, bus, e)
    )
    if recovered:
        click.echo(f"closed {len(recovered)} call(s) left open by a previous run of this worker")
    # `driveline speech` serves both: recognition, and intents' scores (no model in a worker)
    recognizer = SpeechClient(settings.redis_url)
    lifecycle = CallLifecycle(
        FlowEngine(flows, records, understanding=recognizer),
        records,
        bus,
        tts,
        settings.recordings_dir,
        journal=journal,
    )
    await lifecycle.directory.load(records.stores)  # the numbers, also for a later outage
    worker = SipWorker(
        endpoint_config(settings, host, port, reserve=reserve),
        lifecycle.route,
        on_call_end=lifecycle.finished,
        tts=tts,
        recordings_dir=settings.recordings_dir,
        min_free_bytes=settings.recordings_min_free_bytes,
        region=settings.default_region,
        recognizer=recognizer,
    )
    await worker.start()
    runner = None  # masked outbound calls from the queue (events/outbound.py)
    if settings.outbound_calls:
        runner = OutboundRunner(
            worker.endpoint,
            bus,
            settings.redis_url,
            tts=tts,
            recordings_dir=settings.recordings_dir,
            min_free_bytes=settings.recordings_min_free_bytes,
            records=records,
            engine=lifecycle.engine,
            journal=journal,
        )
        await runner.start()
    stop, hurry = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    # SIGTERM (again and again: systemd and the pool may both send it) drains; a second Ctrl-C
    # hangs up at once.
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, lambda: (hurry if stop.is_set() else stop).set())
    bound_host, bound_port = worker.address
    heartbeat = Heartbeat(bus.redis, f"{socket.gethostname()}:{bound_port}")  # for /metrics
    heartbeat.start()
    click.echo(f"{READY} {bound_host}:{bound_port} ({len(prompts)} prompts ready)")
    sys.stdout.flush()
    try:
        await stop.wait()
        if runner is not None:
            await runner.stop_taking()  # no new outbound calls; the ones up go on
        drain = asyncio.ensure_future(worker.drain(settings.sip_drain_s))
        hurried = asyncio.ensure_future(hurry.wait())
        await asyncio.wait({drain, hurried}, return_when=asyncio.FIRST_COMPLETED)
        hurried.cancel()
    finally:
        if runner is not None:
            await runner.stop()
        await worker.stop()
        await heartbeat.stop()
        await bus.close()
        await recognizer.close()
        records.close()
        engine.dispose()


def endpoint_config(
    settings: Settings, host: str, port: int, *, reserve: int = 0
) -> EndpointConfig:
    """A worker's endpoint from the settings: who may call it (the trunks and the edge), what
    it may dial, where its media goes, and the trunk's credentials for the trunk's realm."""
    from sip.endpoint import EndpointConfig, TrunkAuth

    auth = None
    if settings.trunk_username and settings.trunk_password:
        realm = settings.trunk_realm or trunk_host(settings.trunk_uri or "")
        auth = TrunkAuth(settings.trunk_username, settings.trunk_password.get_secret_value(), realm)
    edge_host = (settings.edge_bind or settings.sip_bind).rpartition(":")[0].strip("[]")
    edge = (edge_host,) if _is_address(edge_host) else ()
    return EndpointConfig(
        host=host,
        port=port,
        outbound_reserve=reserve,
        trunk_uri=settings.trunk_uri,
        trunk_auth=auth,
        trusted=(*settings.sip_trusted, *edge),
        media_address=settings.sip_media_address,
        dial_rule=settings.dial_rule,
        region=settings.default_region,
    )


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def trunk_host(trunk_uri: str) -> str:
    """`sip:{number}@trunk.example:5060;transport=udp` → `trunk.example`: the default realm."""
    rest = (
        trunk_uri.split(":", 1)[1] if trunk_uri.lower().startswith(("sip:", "sips:")) else trunk_uri
    )
    host = rest.split("@")[-1].split(";")[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host.strip("[]")


def worker_id(settings: Settings, port: int) -> str:
    """The journal name of the worker on `port`: the same across its restarts."""
    return f"{settings.sip_worker_id or socket.gethostname()}-{port}"
