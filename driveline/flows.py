"""`driveline flows check|run|test` (owned by the flow engine work)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path

import click

from ivr.config import get_settings
from ivr.flow import FlowEngine, FlowSet
from ivr.flow.fakes import FakeChannel
from ivr.flow.records import Records
from ivr.flow.startup import load_or_exit
from ivr.phone import BadPhoneNumber, to_e164
from ivr.speech import STT, Understanding

FLOWS_DIR = click.option(
    "--flows-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of flow YAML files (default: settings flows_dir).",
)


@click.group()
def flows() -> None:
    """Validate, run and test YAML call flows."""


@flows.command("check")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), required=False)
def check(directory: Path | None) -> None:
    """Validate every flow in DIRECTORY; print each problem as file:line: field: message."""
    folder = directory or get_settings().flows_dir
    flow_set = load_or_exit(folder)
    steps = sum(len(f.steps) for f in flow_set)
    click.echo(
        f"OK: {len(flow_set)} flows, {steps} steps in {folder} ({', '.join(flow_set.flows)})"
    )


@flows.command("run")
@click.argument("flow")
@click.option("--caller", required=True, help="Caller ID, any common phone format.")
@click.option(
    "--input",
    "inputs",
    multiple=True,
    help="What the caller does, in order: digits (1, 4711#), words said "
    '("is my car ready", or "say:one" for words that look like keys), wav:FILE (speech from a '
    "WAV file, recognized by the local model), silence, hangup.",
)
@click.option("--did", default=None, help="Number dialed: picks the store and department.")
@click.option("--store-id", type=int, default=1, show_default=True, help="Store, without --did.")
@click.option("--steps", "show_steps", is_flag=True, help="Prefix each line with its step.")
@click.option(
    "--now",
    "at",
    type=click.DateTime(["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="Pretend it is this store-local time (e.g. to try after hours).",
)
@FLOWS_DIR
def run(
    flow: str,
    caller: str,
    inputs: tuple[str, ...],
    did: str | None,
    store_id: int,
    show_steps: bool,
    at: datetime | None,
    flows_dir: Path | None,
) -> None:
    """Run FLOW against the real database with a scripted caller; print the call as a script."""
    from events.bus import EventBus
    from records.db import make_engine
    from records.flow_records import SqlRecords

    settings = get_settings()
    flow_set = load_or_exit(flows_dir or settings.flows_dir)
    for item in inputs:
        if item.strip().lower().startswith("wav:") and not Path(item.strip()[4:]).is_file():
            raise click.BadParameter(f"no such WAV file: {item.strip()[4:]}", param_hint="--input")
    if flow not in flow_set:
        raise click.UsageError(f"no flow named {flow!r} (have: {', '.join(flow_set.flows)})")
    try:
        caller_e164 = to_e164(caller, settings.default_region)
        did_e164 = to_e164(did, settings.default_region) if did else None
    except BadPhoneNumber as exc:
        raise click.BadParameter(str(exc)) from None
    engine = make_engine(settings.database_url)
    bus = EventBus(settings.redis_url)
    try:
        records = SqlRecords(engine, bus)
        asyncio.run(
            _run(
                flow_set,
                records,
                flow,
                caller_e164,
                list(inputs),
                did_e164,
                store_id,
                show_steps,
                at,
            )
        )
    finally:
        bus.close()
        engine.dispose()


async def _run(
    flow_set: FlowSet,
    records: Records,
    flow: str,
    caller: str,
    inputs: list[str],
    did: str | None,
    store_id: int,
    show_steps: bool = False,
    at: datetime | None = None,
) -> None:
    """The body of `flows run`, apart so tests can give it FakeRecords."""
    store = await (records.store_for_did(did) if did else records.store(store_id))
    if store is None:
        raise click.ClickException(f"no store for {'DID ' + did if did else f'id {store_id}'}")
    channel = FakeChannel(
        inputs, recordings_dir=str(get_settings().recordings_dir), stt=_stt_for(inputs)
    )
    fixed = at.replace(tzinfo=store.tz) if at else None
    engine = FlowEngine(flow_set, records, understanding=understanding_for(flow_set))
    result = await engine.run(
        channel,
        store=store,
        caller=caller,
        flow=flow,
        clock=(lambda: fixed) if fixed else None,
        department=store.department_for_did(did),  # --did of a department: its hours
    )
    click.echo(result.script(steps=show_steps))
    if channel.remaining:
        left = ", ".join(str(i) for i in inputs[len(inputs) - len(channel.remaining) :])
        click.echo(f"(inputs not used: {left})")


def _stt_for(inputs: list[str]) -> STT | None:
    """The local recogniser, loaded only when some input is a WAV file (`wav:FILE`)."""
    if not any(str(i).strip().lower().startswith("wav:") for i in inputs):
        return None
    from transcription.whisper import load_stt

    settings = get_settings()
    return load_stt(settings.stt_model_dir, settings.stt_threads)


def understanding_for(flow_set: FlowSet) -> Understanding | None:
    """The language model in this process, loaded (once) only when some gather has intents;
    a SIP worker asks the speech service instead."""
    from ivr.flow.steps.gather import Gather

    steps = (step.spec for flow in flow_set for step in flow.steps.values())
    if not any(isinstance(spec, Gather) and spec.intents for spec in steps):
        return None
    from speech.intents import LocalUnderstanding

    return LocalUnderstanding()


@flows.command("test")
@FLOWS_DIR
@click.option("-k", "pattern", default=None, help="Only cases whose name contains this.")
@click.option("--show", is_flag=True, help="Print each case's call script too.")
def test(flows_dir: Path | None, pattern: str | None, show: bool) -> None:
    """Run the flow tests in FLOWS_DIR/tests/*.yaml; exit 1 if any fails."""
    from ivr.flow.testing import load_cases, run_case

    logging.getLogger("ivr.flow").setLevel(logging.CRITICAL)  # failures are shown per case
    folder = flows_dir or get_settings().flows_dir
    flow_set = load_or_exit(folder)
    cases = [
        (f, c)
        for f, c in load_cases(folder / "tests")
        if not pattern or pattern in str(c.get("name", ""))
    ]
    if not cases:
        raise click.ClickException(f"no test cases in {folder / 'tests'}")
    failed = 0
    stt = _stt_for([str(i) for _, c in cases for i in c.get("inputs") or []])
    understanding = understanding_for(flow_set)
    for file, case in cases:
        result = asyncio.run(run_case(flow_set, file, case, stt=stt, understanding=understanding))
        click.echo(f"{'PASS' if result.passed else 'FAIL'}  {Path(file).name}: {result.name}")
        if not result.passed:
            failed += 1
            for failure in result.failures:
                click.echo("      " + failure.replace("\n", "\n      "))
        if show or not result.passed:
            click.echo("      " + result.script.replace("\n", "\n      "))
    click.echo(f"{len(cases) - failed} passed, {failed} failed")
    if failed:
        raise click.exceptions.Exit(1)
