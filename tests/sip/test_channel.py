"""PjsuaChannel's timing logic against a scripted endpoint: no pjsua2, no sockets, fast.

The endpoint fake plays a prompt for `play_seconds` and then reports the end of the file the way
the pjsua2 thread does (`PlaybackDone`), so gather/barge-in/hang-up rules run as on a real call.
"""

from __future__ import annotations

import asyncio
import time
import wave
from pathlib import Path
from typing import Any, cast

import pytest

from ivr.flow.channel import CallerHungUp, Prompt, TransferStatus
from ivr.phone import FICTIONAL, DestinationRule
from ivr.speech import FakeTTS
from sip.channel import PjsuaChannel
from sip.endpoint import EndpointConfig, NoCapacity, SipEndpoint
from sip.events import (
    CallConfirmed,
    CallEnded,
    CallProgress,
    DtmfDigit,
    MediaHold,
    MediaReady,
    PlaybackDone,
    SipEvent,
)

KEY = 7


class ScriptedEndpoint:
    """`answers` scripts the outbound legs, by URI: ("answer", after_s), ("busy", after_s),
    ("ring",) or ("hangup_after", answer_s, talk_s)."""

    def __init__(self, play_seconds: float = 0.05) -> None:
        self.play_seconds = play_seconds
        self.channel: PjsuaChannel | None = None
        self.actions: list[tuple[str, Any]] = []
        self.level = 0
        self._ids = 0
        self.config = EndpointConfig(
            trunk_uri="sip:{number}@trunk.example", dial_rule=DestinationRule(allow=(FICTIONAL,))
        )
        self.answers: dict[str, tuple[Any, ...]] = {}
        self.slots = 3
        self.sinks: dict[int, Any] = {}

    async def dial(self, uri: str, sink: Any, *, headers: Any = None) -> int:
        if self.slots <= 0:
            raise NoCapacity("full")
        self.slots -= 1
        self._ids += 1
        key = 100 + self._ids
        self.sinks[key] = sink
        self.actions.append(("dial", uri))
        loop = asyncio.get_running_loop()

        def later(delay: float, event: SipEvent) -> None:
            loop.call_later(delay, sink, event)

        script = self.answers.get(uri, ("ring",))
        later(0.01, CallProgress(key, 180, "Ringing", 0.0))
        if script[0] in ("answer", "hangup_after"):
            later(script[1], MediaReady(key))
            later(script[1], CallConfirmed(key, 0.0))
            if script[0] == "hangup_after":
                later(script[1] + script[2], CallEnded(key, 200, "BYE"))
        elif script[0] == "busy":
            later(script[1], CallEnded(key, 486, "Busy Here"))
        return key

    async def connect(self, a: int, b: int) -> None:
        self.actions.append(("connect", (a, b)))

    def _deliver_later(self, delay: float, event: Any) -> None:
        assert self.channel is not None
        asyncio.get_running_loop().call_later(delay, self.channel.deliver, event)

    async def play(self, key: int, path: str, *, loop: bool = False) -> int:
        self._ids += 1
        self.actions.append(("ringback" if loop else "play", self._ids))
        if not loop:
            self._deliver_later(self.play_seconds, PlaybackDone(key, self._ids))
        return self._ids

    async def stop_player(self, key: int, player: int) -> None:
        self.actions.append(("stop_player", player))

    async def start_recorder(self, key: int, path: str) -> int:
        with wave.open(path, "wb") as out:  # what pjsua leaves behind: 0.5 s of audio
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(b"\0\0" * 4000)
        self.actions.append(("record", Path(path).name))
        return 99

    async def stop_recorder(self, key: int, recorder: int) -> None:
        self.actions.append(("stop_record", recorder))

    async def rx_level(self, key: int) -> int:
        return self.level

    async def hangup(self, key: int, code: int = 603) -> None:
        if key in self.sinks:
            self.actions.append(("hangup_leg", key))
            self.slots += 1
            asyncio.get_running_loop().call_later(0, self.sinks.pop(key), CallEnded(key, code, "x"))
            return
        self.actions.append(("hangup", code))
        self._deliver_later(0, CallEnded(key, code, "ours"))


@pytest.fixture
def endpoint() -> ScriptedEndpoint:
    return ScriptedEndpoint()


@pytest.fixture
def channel(endpoint: ScriptedEndpoint, tmp_path: Path) -> PjsuaChannel:
    ch = PjsuaChannel(
        cast(SipEndpoint, endpoint),
        KEY,
        tts=FakeTTS(tmp_path / "tts"),
        recordings_dir=tmp_path / "rec",
        name="abc@host",
        media_dir=tmp_path / "tones",
        call_uuid="0000-uuid",
    )
    endpoint.channel = ch
    ch.deliver(MediaReady(KEY))
    return ch


def press(channel: PjsuaChannel, keys: str, after: float = 0.0, gap: float = 0.01) -> None:
    loop = asyncio.get_running_loop()
    for i, key in enumerate(keys):
        loop.call_later(after + i * gap, channel.deliver, DtmfDigit(KEY, key, "rfc2833"))


async def test_gather_stops_at_the_terminator(channel: PjsuaChannel) -> None:
    press(channel, "12#9", after=0.1)
    result = await channel.gather(Prompt("Enter your number"), max_digits=10, timeout=2)
    assert result.digits == "12"


async def test_gather_stops_at_max_digits(channel: PjsuaChannel) -> None:
    press(channel, "345", after=0.1)
    result = await channel.gather(None, max_digits=2, timeout=2)
    assert result.digits == "34"


async def test_inter_digit_timeout_returns_what_was_keyed(channel: PjsuaChannel) -> None:
    press(channel, "4", after=0.02)
    started = time.monotonic()
    result = await channel.gather(None, max_digits=4, timeout=5, inter_digit_timeout=0.1)
    assert result.digits == "4"
    assert time.monotonic() - started < 1


async def test_silence_times_out(channel: PjsuaChannel) -> None:
    result = await channel.gather(Prompt("Press 1"), timeout=0.05)
    assert result.timed_out


async def test_a_key_interrupts_the_prompt(
    channel: PjsuaChannel, endpoint: ScriptedEndpoint
) -> None:
    endpoint.play_seconds = 5
    press(channel, "3", after=0.05)
    started = time.monotonic()
    result = await channel.gather(Prompt("A long menu " * 5), timeout=2)
    assert result.digits == "3"
    assert time.monotonic() - started < 1
    assert ("stop_player", 1) in endpoint.actions


async def test_a_key_during_a_say_feeds_the_next_gather(
    channel: PjsuaChannel, endpoint: ScriptedEndpoint
) -> None:
    """Type-ahead: the caller who knows the menu presses 1 during the greeting."""
    endpoint.play_seconds = 0.3
    press(channel, "1", after=0.05)
    started = time.monotonic()
    finished = await channel.say("Welcome to the store")
    assert not finished.interrupted  # a say is not cut short by the key
    assert time.monotonic() - started >= 0.25
    started = time.monotonic()
    result = await channel.gather(Prompt("Press 1 for sales"), max_digits=1, timeout=2)
    assert result.digits == "1"
    assert time.monotonic() - started < 0.1  # at once, and the menu prompt was not played
    assert [a for a in endpoint.actions if a[0] == "play"] == [("play", 1)]


async def test_partial_type_ahead_is_completed_by_later_keys(
    channel: PjsuaChannel, endpoint: ScriptedEndpoint
) -> None:
    press(channel, "12")
    await asyncio.sleep(0.05)
    press(channel, "3#", after=0.05)
    result = await channel.gather(Prompt("Your number"), max_digits=6, timeout=2)
    assert result.digits == "123"
    assert not [a for a in endpoint.actions if a[0] == "play"]  # the caller was already keying


async def test_type_ahead_gap_counts_from_the_gather_start(channel: PjsuaChannel) -> None:
    channel.deliver(DtmfDigit(KEY, "4", "rfc2833"))
    await asyncio.sleep(0.3)  # older than the inter-digit timeout
    press(channel, "5", after=0.1)
    result = await channel.gather(None, max_digits=4, timeout=5, inter_digit_timeout=0.2)
    assert result.digits == "45"


async def test_type_ahead_keeps_the_last_16_keys(channel: PjsuaChannel) -> None:
    for key in "0123456789" * 2:
        channel.deliver(DtmfDigit(KEY, key, "rfc2833"))
    result = await channel.gather(None, max_digits=32, timeout=0.05, inter_digit_timeout=0.05)
    assert result.digits == "4567890123456789"


async def test_a_gather_consumes_the_type_ahead(channel: PjsuaChannel) -> None:
    press(channel, "12#9")
    await asyncio.sleep(0.1)
    assert (await channel.gather(None, max_digits=10, timeout=2)).digits == "12"
    result = await channel.gather(None, timeout=0.05)  # the 9 past the terminator is gone
    assert result.timed_out


async def test_a_prompt_without_barge_in_drops_the_type_ahead(
    channel: PjsuaChannel, endpoint: ScriptedEndpoint
) -> None:
    channel.deliver(DtmfDigit(KEY, "9", "rfc2833"))
    press(channel, "2", after=0.15)  # after the 0.05 s prompt
    result = await channel.gather(Prompt("Listen first"), barge_in=False, timeout=2)
    assert result.digits == "2"
    assert ("play", 1) in endpoint.actions


async def test_the_pound_ending_a_recording_is_not_type_ahead(channel: PjsuaChannel) -> None:
    press(channel, "#", after=0.2)
    await channel.record(max_seconds=5, silence_timeout=5, beep=False)
    result = await channel.gather(None, timeout=0.05)
    assert result.timed_out


async def test_hold_and_resume_are_tracked(channel: PjsuaChannel) -> None:
    channel.deliver(MediaHold(KEY, True, 0.0))
    assert channel.on_hold
    channel.deliver(MediaHold(KEY, False, 0.0))
    assert not channel.on_hold
    press(channel, "7", after=0.02)  # digits after the resume reach a gather as before
    assert (await channel.gather(None, timeout=2)).digits == "7"


async def test_hang_up_mid_prompt_raises_then_every_call_raises(
    channel: PjsuaChannel, endpoint: ScriptedEndpoint
) -> None:
    endpoint.play_seconds = 5
    asyncio.get_running_loop().call_later(0.05, channel.deliver, CallEnded(KEY, 200, "BYE"))
    with pytest.raises(CallerHungUp):
        await channel.say("A long prompt the caller does not wait for")
    with pytest.raises(CallerHungUp):
        await channel.gather(None)
    with pytest.raises(CallerHungUp):
        await channel.transfer(["sip:alice@store"])
    await channel.hangup()  # a no-op now
    assert ("hangup", 603) not in endpoint.actions


async def test_hang_up_mid_gather_raises(channel: PjsuaChannel) -> None:
    asyncio.get_running_loop().call_later(0.05, channel.deliver, CallEnded(KEY, 200, "BYE"))
    with pytest.raises(CallerHungUp):
        await channel.gather(None, timeout=5)


async def test_record_stops_at_pound(channel: PjsuaChannel, endpoint: ScriptedEndpoint) -> None:
    endpoint.level = 100  # the caller is talking
    press(channel, "#", after=0.3)
    started = time.monotonic()
    recording = await channel.record(max_seconds=5, silence_timeout=5, beep=True)
    assert time.monotonic() - started < 2
    assert recording.duration == pytest.approx(0.5)
    assert not recording.hung_up
    assert recording.path.endswith("0000-uuid-voicemail.wav")
    assert [a for a, _ in endpoint.actions] == ["play", "stop_player", "record", "stop_record"]
    (finished,) = channel.recordings
    assert (finished.role, finished.kind, finished.path) == ("caller", "voicemail", recording.path)
    assert finished.duration_s == pytest.approx(0.5) and len(finished.sha256) == 64


async def test_record_stops_after_silence(channel: PjsuaChannel) -> None:
    started = time.monotonic()
    await channel.record(max_seconds=5, silence_timeout=0.2, beep=False)
    assert 0.15 < time.monotonic() - started < 1.5


async def test_record_keeps_the_message_when_the_caller_hangs_up(channel: PjsuaChannel) -> None:
    asyncio.get_running_loop().call_later(0.1, channel.deliver, CallEnded(KEY, 200, "BYE"))
    recording = await channel.record(max_seconds=5, silence_timeout=5, beep=False)
    assert recording.hung_up and recording.duration > 0
    with pytest.raises(CallerHungUp):
        await channel.say("bye")


ALICE, BOB = "sip:alice@store", "sip:bob@store"


async def test_transfer_bridges_the_first_to_answer_and_returns_when_it_ends(
    channel: PjsuaChannel, endpoint: ScriptedEndpoint
) -> None:
    endpoint.answers = {ALICE: ("ring",), BOB: ("hangup_after", 0.05, 0.1)}
    await channel.start_recording()
    started = time.monotonic()
    result = await channel.transfer([ALICE, BOB], ring_seconds=2)
    assert result.status == TransferStatus.answered and result.contact == BOB
    assert 0.1 < time.monotonic() - started < 1  # at the end of the bridged call, not the answer
    kinds = [a for a, _ in endpoint.actions]
    assert kinds[:4] == ["record", "dial", "dial", "ringback"]
    assert kinds.index("stop_player") < kinds.index("connect")  # ringback stops, then bridge
    assert ("hangup_leg", 101) in endpoint.actions  # alice's leg was cancelled
    assert ("connect", (KEY, 102)) in endpoint.actions
    assert ("hangup", 603) in endpoint.actions  # bob hung up: the caller gets a BYE
    assert channel.hung_up
    recordings = await channel.close()
    assert {r.role for r in recordings} == {"caller", "advisor"}
    assert {Path(r.path).name for r in recordings} == {"0000-uuid-caller.wav",
                                                       "0000-uuid-advisor.wav"}  # fmt: skip


async def test_transfer_no_answer_cancels_after_the_ring_time(
    channel: PjsuaChannel, endpoint: ScriptedEndpoint
) -> None:
    started = time.monotonic()
    result = await channel.transfer([ALICE], ring_seconds=0.2)
    assert result.status == TransferStatus.no_answer
    assert 0.2 <= time.monotonic() - started < 1
    assert ("hangup_leg", 101) in endpoint.actions
    assert not channel.hung_up and endpoint.slots == 3  # the caller stays for the fallback


async def test_transfer_busy_when_every_leg_is_busy(
    channel: PjsuaChannel, endpoint: ScriptedEndpoint
) -> None:
    endpoint.answers = {ALICE: ("busy", 0.05), BOB: ("busy", 0.1)}
    result = await channel.transfer([ALICE, BOB], ring_seconds=2)
    assert result.status == TransferStatus.busy


async def test_transfer_keeps_ringing_the_others_when_one_is_busy(
    channel: PjsuaChannel, endpoint: ScriptedEndpoint
) -> None:
    endpoint.answers = {ALICE: ("busy", 0.02), BOB: ("hangup_after", 0.1, 0.05)}
    result = await channel.transfer([ALICE, BOB], ring_seconds=2)
    assert result.status == TransferStatus.answered and result.contact == BOB


async def test_transfer_fails_without_a_slot(
    channel: PjsuaChannel, endpoint: ScriptedEndpoint
) -> None:
    endpoint.slots = 0
    result = await channel.transfer([ALICE], ring_seconds=2)
    assert result.status == TransferStatus.failed
    assert not channel.hung_up


async def test_numbers_go_through_the_trunk_or_fail(
    channel: PjsuaChannel, endpoint: ScriptedEndpoint
) -> None:
    endpoint.answers = {"sip:+15552010001@trunk.example": ("busy", 0.01)}
    result = await channel.transfer(["+15552010001"], ring_seconds=1)
    assert result.status == TransferStatus.busy
    endpoint.config = EndpointConfig()  # no trunk: numbers cannot be dialled
    result = await channel.transfer(["+15552010001"], ring_seconds=1)
    assert result.status == TransferStatus.failed
    assert [a for a in endpoint.actions if a[0] == "dial"] == [
        ("dial", "sip:+15552010001@trunk.example")
    ]


@pytest.mark.parametrize(
    "contact", ["+19005550199", "+18765550199", "+442079460958", "sip:+19005550199@trunk.example"]
)
async def test_a_transfer_never_rings_a_number_outside_the_dial_rule(
    channel: PjsuaChannel, endpoint: ScriptedEndpoint, contact: str
) -> None:
    """A flow (or an advisor's contact) naming a premium, Caribbean or foreign number: the
    worker refuses it itself, whatever the API checked."""
    endpoint.answers = {"sip:+19005550199@trunk.example": ("answer", 0.01)}
    result = await channel.transfer([contact], ring_seconds=1)
    assert result.status == TransferStatus.failed
    assert [a for a in endpoint.actions if a[0] == "dial"] == []


async def test_caller_hanging_up_while_it_rings_cancels_the_legs(
    channel: PjsuaChannel, endpoint: ScriptedEndpoint
) -> None:
    asyncio.get_running_loop().call_later(0.1, channel.deliver, CallEnded(KEY, 200, "BYE"))
    with pytest.raises(CallerHungUp):
        await channel.transfer([ALICE, BOB], ring_seconds=5)
    assert {("hangup_leg", 101), ("hangup_leg", 102)} <= set(endpoint.actions)
    assert endpoint.slots == 3


async def test_consent_is_said_before_recording_starts(
    channel: PjsuaChannel, endpoint: ScriptedEndpoint
) -> None:
    await channel.start_recording(consent_prompt="This call may be recorded.")
    assert [a for a, _ in endpoint.actions] == ["play", "stop_player", "record"]
    await channel.start_recording(consent_prompt="again")  # once per call
    assert len(endpoint.actions) == 3


async def test_our_hangup_waits_for_the_end(
    channel: PjsuaChannel, endpoint: ScriptedEndpoint
) -> None:
    await channel.hangup()
    assert channel.hung_up
    assert endpoint.actions == [("hangup", 603)]
