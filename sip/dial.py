"""`driveline dial SIP_URI`: place one real SIP call, press keys, listen, print what happened.

For trying a store's flows without a softphone:

    driveline dial sip:+15550100001@127.0.0.1:5080 --press 1 --save heard.wav

It runs its own pjsua2 endpoint on a free UDP port (nothing else may be listening for it), calls
the URI, and after the answer works through its actions in order: `--say FILE.wav` first (played
into the call once), then each `--press` (its digits sent as RFC 2833 telephone-events).

When to act ("when prompted"): an action goes out once the far end has spoken and then been
quiet for `--quiet` seconds (the end of a prompt: a menu waiting for its key), or, when nothing
has been heard since the previous action, after `--gap` seconds. After the last action it stays
on the line for `--wait` seconds (the far end usually answers and hangs up first), then hangs up.
`--save` records everything heard from the far end into a WAV (8 kHz mono).

The timeline (INVITE, 180, 200 OK, first audio, each action, BYE, durations) is printed as it
happens. The exit status is 0 when the call was answered, 1 when it was not.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click

SOUND_LEVEL = 4  # pjsua signal level (0..255) above which the far end counts as speaking
POLL = 0.05


@dataclass
class Timeline:
    """What happened on the call, in seconds since the INVITE, echoed as it happens."""

    started: float = field(default_factory=time.monotonic)
    marks: dict[str, float] = field(default_factory=dict)
    lines: list[tuple[float, str]] = field(default_factory=list)
    echo: bool = True

    def add(self, text: str, mark: str | None = None) -> float:
        at = time.monotonic() - self.started
        if mark is not None and mark not in self.marks:
            self.marks[mark] = at
        self.lines.append((at, text))
        if self.echo:
            click.echo(f"{at:8.3f}s  {text}")
        return at


@contextlib.contextmanager
def _banner_hidden() -> Iterator[None]:
    """pjlib prints its start-up lines to stdout before any log setting applies; the dialler's
    stdout is the timeline, so hide file descriptor 1 while the library starts."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


@dataclass
class DialPlan:
    uri: str
    caller: str = "driveline-dial"
    presses: tuple[str, ...] = ()
    say: Path | None = None
    save: Path | None = None
    wait: float = 10.0
    quiet: float = 1.0
    gap: float = 3.0
    bind: str = "127.0.0.1"
    ring: float = 30.0


async def place_call(plan: DialPlan, timeline: Timeline | None = None) -> Timeline:
    """Run one call to its end; the timeline's marks say how far it got (`answered`, ...)."""
    from sip.endpoint import EndpointConfig, EndpointError, SipEndpoint
    from sip.events import (
        CallConfirmed,
        CallEnded,
        CallOffered,
        CallProgress,
        MediaReady,
        PlaybackDone,
        SipEvent,
    )
    from sip.media import finish_wav, wav_seconds

    timeline = timeline or Timeline()
    events: asyncio.Queue[SipEvent] = asyncio.Queue()
    endpoint: SipEndpoint

    def on_event(event: SipEvent) -> None:
        if isinstance(event, CallOffered):  # nobody calls a dialler: refuse
            asyncio.get_running_loop().create_task(endpoint.hangup(event.key, 486))

    config = EndpointConfig(
        host=plan.bind,
        port=0,
        tcp=False,
        max_calls=1,
        rtp_timeout=None,
        log_level=1,
        user=plan.caller,
        user_agent="Driveline dial",
        dial_rule=None,  # the operator's own test call: whatever they ask for
        trusted=None,  # nobody calls a dialler; every INVITE gets 486 below
    )
    endpoint = SipEndpoint(config, on_event)
    with _banner_hidden():
        await endpoint.start()
    state = {"media": False, "confirmed": False, "ended": False, "ours": False}
    players_done: set[int] = set()
    end: CallEnded | None = None

    def note(event: SipEvent) -> None:
        nonlocal end
        if isinstance(event, CallProgress):
            timeline.add(f"{event.code} {event.reason}", mark=f"{event.code}")
        elif isinstance(event, MediaReady):
            state["media"] = True
        elif isinstance(event, CallConfirmed):
            state["confirmed"] = True
            timeline.add("200 OK: answered", mark="answered")
        elif isinstance(event, PlaybackDone):
            players_done.add(event.player)
        elif isinstance(event, CallEnded):
            state["ended"] = True
            end = event

    async def pump(until: float) -> None:
        """Take events until `until` (monotonic) or the call ends."""
        while not state["ended"]:
            remaining = until - time.monotonic()
            if remaining <= 0:
                return
            try:
                note(await asyncio.wait_for(events.get(), min(remaining, POLL)))
            except TimeoutError:
                return

    recorder: int | None = None
    try:
        try:
            key = await endpoint.dial(plan.uri, events.put_nowait)
        except EndpointError as exc:
            timeline.add(f"cannot call {plan.uri}: {exc}")
            return timeline
        host, port = endpoint.address
        timeline.add(f"INVITE sent to {plan.uri} (from sip:{plan.caller}@{host}:{port})", "invite")
        deadline = time.monotonic() + plan.ring
        while not (state["confirmed"] and state["media"]) and not state["ended"]:
            if time.monotonic() > deadline:
                timeline.add(f"no answer in {plan.ring:g}s; cancelling (CANCEL)")
                state["ours"] = True
                await endpoint.hangup(key, 487)
                deadline = time.monotonic() + 5
                while not state["ended"] and time.monotonic() < deadline:
                    await pump(time.monotonic() + POLL)
                break
            await pump(time.monotonic() + POLL)
        if state["ended"]:
            return timeline
        if plan.save is not None:
            plan.save.parent.mkdir(parents=True, exist_ok=True)
            recorder = await endpoint.start_recorder(key, str(plan.save))

        actions: list[tuple[str, str]] = []
        if plan.say is not None:
            actions.append(("say", str(plan.say)))
        actions += [("press", digits) for digits in plan.presses]
        heard = False  # far-end sound since the last action
        quiet_since: float | None = None
        last_action = time.monotonic()

        async def listen() -> None:
            nonlocal heard, quiet_since
            try:
                level = await endpoint.rx_level(key)
            except EndpointError:
                return
            now = time.monotonic()
            if level > SOUND_LEVEL:
                if "first_audio" not in timeline.marks:
                    timeline.add("first audio from the far end", "first_audio")
                heard, quiet_since = True, None
            elif quiet_since is None:
                quiet_since = now

        for action, value in actions:
            while not state["ended"]:
                await listen()
                now = time.monotonic()
                prompted = heard and quiet_since is not None and now - quiet_since >= plan.quiet
                if prompted or (not heard and now - last_action >= plan.gap):
                    break
                await pump(now + POLL)
            if state["ended"]:
                break
            if action == "press":
                await endpoint.send_dtmf(key, value)
                timeline.add(f"pressed {value} (RFC 2833)", f"press:{value}")
            else:
                player = await endpoint.play(key, value)
                timeline.add(f"saying {value} ({wav_seconds(value):.1f}s)", "say")
                until = time.monotonic() + wav_seconds(value) + 1.0
                while player not in players_done and not state["ended"]:
                    if time.monotonic() > until:
                        break
                    await listen()
                    await pump(time.monotonic() + POLL)
                with contextlib.suppress(EndpointError):
                    await endpoint.stop_player(key, player)
            heard, quiet_since, last_action = False, None, time.monotonic()

        until = time.monotonic() + plan.wait
        while not state["ended"] and time.monotonic() < until:
            await listen()
            await pump(time.monotonic() + POLL)
        if not state["ended"]:
            timeline.add(f"hanging up after waiting {plan.wait:g}s")
            state["ours"] = True
            await endpoint.hangup(key, 200)
            deadline = time.monotonic() + 5
            while not state["ended"] and time.monotonic() < deadline:
                await pump(time.monotonic() + POLL)
        return timeline
    finally:
        if end is not None:
            answered = "answered" in timeline.marks
            if not answered:
                timeline.add(f"call failed: {end.code} {end.reason}", "end")
            elif state["ours"]:
                timeline.add("BYE sent (we hung up)", "end")
            else:
                timeline.add("BYE received (the far end hung up)", "end")
        if recorder is not None:
            with contextlib.suppress(EndpointError):
                await endpoint.stop_recorder(key, recorder)
        await endpoint.stop()
        if plan.save is not None and recorder is not None:
            finished = await finish_wav(plan.save)
            if finished is not None:
                timeline.add(f"saved what was heard: {plan.save} ({finished[0]:.1f}s)")


def summary(timeline: Timeline) -> list[str]:
    marks = timeline.marks
    out = []
    if "answered" in marks:
        out.append(f"INVITE → 200 OK: {marks['answered'] * 1000:.0f} ms")
        if "first_audio" in marks:
            first = (marks["first_audio"] - marks["answered"]) * 1000
            out.append(f"200 OK → first audio: {first:.0f} ms")
        if "end" in marks:
            out.append(f"talk time: {marks['end'] - marks['answered']:.1f} s")
    if "end" in marks:
        out.append(f"total: {marks['end']:.1f} s")
    return out


@click.command("dial")
@click.argument("uri")
@click.option(
    "--from",
    "caller",
    default="driveline-dial",
    show_default=True,
    help="The caller ID (user part of From), e.g. +15552010001.",
)
@click.option(
    "--press",
    "presses",
    multiple=True,
    metavar="DIGITS",
    help="Digits to press when prompted; repeat for each prompt (--press 1 --press 2).",
)
@click.option(
    "--say",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A WAV (8 kHz mono best) to play into the call once, before the presses.",
)
@click.option(
    "--save",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save what the far end played to this WAV.",
)
@click.option(
    "--wait",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds to stay on the line after the last action.",
)
@click.option(
    "--quiet",
    type=float,
    default=1.0,
    show_default=True,
    help="Far-end silence after speech (seconds) that counts as a prompt's end.",
)
@click.option(
    "--gap",
    type=float,
    default=3.0,
    show_default=True,
    help="Act after this many seconds when nothing was heard.",
)
@click.option(
    "--ring",
    type=float,
    default=30.0,
    show_default=True,
    help="Give up (CANCEL) when not answered within this many seconds.",
)
@click.option(
    "--bind",
    default="127.0.0.1",
    show_default=True,
    help="Local address for the dialler's SIP and RTP ports.",
)
def dial(
    uri: str,
    caller: str,
    presses: tuple[str, ...],
    say: Path | None,
    save: Path | None,
    wait: float,
    quiet: float,
    gap: float,
    ring: float,
    bind: str,
) -> None:
    """Call SIP_URI (e.g. sip:+15550100001@127.0.0.1:5080), press keys, print the timeline."""
    if not uri.lower().startswith(("sip:", "sips:")):
        raise click.BadParameter("expected a SIP URI such as sip:+15550100001@127.0.0.1:5080")
    for digits in presses:
        if not digits or any(d not in "0123456789*#ABCD" for d in digits.upper()):
            raise click.BadParameter(f"not DTMF digits: {digits!r}", param_hint="--press")
    plan = DialPlan(uri, caller, presses, say, save, wait, quiet, gap, bind, ring)
    timeline = asyncio.run(place_call(plan))
    for line in summary(timeline):
        click.echo(line)
    if "answered" not in timeline.marks:
        raise SystemExit(1)


if __name__ == "__main__":
    dial()
