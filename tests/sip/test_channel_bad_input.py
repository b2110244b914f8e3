"""A speech gather on the channel hearing bad input: barge-in, a cough, a noise with no words,
endless hum. The channel (sip/channel.py) runs as on a call against the scripted endpoint of
tests/sip/test_channel.py; the listener is the real one (sip/listen.py, its endpointer
sip/vad.py) fed synthesized audio ten times faster than real time instead of from a pjsua2
media port, and the recogniser is the real tiny.en.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, cast

import numpy as np
import pytest

from ivr.flow.channel import Prompt
from ivr.speech import FakeTTS, SpeechSegment
from sip import channel as channel_module
from sip.channel import PjsuaChannel
from sip.endpoint import SipEndpoint
from sip.events import MediaReady
from sip.listen import Listener
from tests.sip.test_channel import KEY, ScriptedEndpoint
from tests.speech.signals import cough, hum, pcm, silence, spoken

SPEED = 10  # audio seconds fed per real second
CHUNK = 1600  # 100 ms of audio, fed every 10 ms


class FedListener(Listener):
    """The real listener, its audio fed from `audio` instead of a pjsua2 port."""

    audio: ClassVar[bytes] = b""

    async def attach(self) -> None:
        self._feeder = asyncio.ensure_future(self._feed_all())

    async def _feed_all(self) -> None:
        for start in range(0, len(self.audio), CHUNK):
            self._feed(self.audio[start : start + CHUNK])
            await asyncio.sleep(CHUNK / 16000 / SPEED)

    async def detach(self) -> None:
        self._feeder.cancel()


class TinyEn:
    """The channel's `Recognizer`, answered by the real model in a thread."""

    def __init__(self) -> None:
        from speech.recognizer import endpointed_stt

        self.stt = endpointed_stt(None, 2)
        self.heard: list[str] = []

    async def recognize(
        self, pcm: bytes, *, sample_rate: int = 8000, prompt: str | None = None
    ) -> SpeechSegment | None:
        segments = await asyncio.to_thread(self.stt.transcribe, pcm, sample_rate=sample_rate)
        text = " ".join(s.text for s in segments).strip()
        self.heard.append(text)
        return SpeechSegment(0.0, len(pcm) / 16000, text, 0.9)


@pytest.fixture(scope="module")
def tiny_en() -> TinyEn:
    return TinyEn()


@pytest.fixture
def endpoint() -> ScriptedEndpoint:
    return ScriptedEndpoint()


@pytest.fixture
def channel(
    endpoint: ScriptedEndpoint, tmp_path: Path, tiny_en: TinyEn, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PjsuaChannel]:
    monkeypatch.setattr(channel_module, "Listener", FedListener)
    tiny_en.heard.clear()
    ch = PjsuaChannel(
        cast(SipEndpoint, endpoint),
        KEY,
        tts=FakeTTS(tmp_path / "tts"),
        recordings_dir=tmp_path / "rec",
        media_dir=tmp_path / "tones",
        recognizer=tiny_en,
    )
    endpoint.channel = ch
    ch.deliver(MediaReady(KEY))
    yield ch


def caller_says(*parts: np.ndarray) -> None:
    FedListener.audio = pcm(np.concatenate(parts))


async def test_speech_during_the_prompt_stops_it_and_is_heard(
    channel: PjsuaChannel, endpoint: ScriptedEndpoint
) -> None:
    endpoint.play_seconds = 6.0  # a long menu: 60 s of the caller's audio time
    caller_says(silence(0.5), spoken("Is my car ready?"), silence(1))
    started = time.monotonic()
    result = await channel.gather(Prompt("A long menu"), speech=True, timeout=2)
    assert result.heard and "car ready" in result.heard.lower()
    assert time.monotonic() - started < 4  # the prompt did not play out
    assert ("stop_player", 1) in endpoint.actions


async def test_a_cough_during_the_prompt_does_not_stop_it(
    channel: PjsuaChannel, endpoint: ScriptedEndpoint, tiny_en: TinyEn
) -> None:
    endpoint.play_seconds = 0.6  # 6 s of audio time; the cough is at 0.3 s
    caller_says(silence(0.3), cough(60, 12000), silence(8))
    started = time.monotonic()
    result = await channel.gather(Prompt("Say status"), speech=True, timeout=0.2)
    assert time.monotonic() - started >= 0.6  # the prompt played to its end
    assert result.timed_out and tiny_en.heard == []  # and the cough went to no recogniser


async def test_a_sound_with_no_words_is_not_the_answer(
    channel: PjsuaChannel, tiny_en: TinyEn
) -> None:
    """A 200 ms cough is long enough for the VAD, but tiny.en hears no words in it: the gather
    listens on and hears the answer that follows."""
    caller_says(silence(0.2), cough(200, 12000), silence(1.5), spoken("Is my car ready?"),
                silence(1))  # fmt: skip
    result = await channel.gather(None, speech=True, timeout=4)  # room for a busy machine
    assert tiny_en.heard[0] == ""  # the cough
    assert result.heard and "car ready" in result.heard.lower()


async def test_endless_hum_ends_the_gather_at_the_cap(
    channel: PjsuaChannel, tiny_en: TinyEn
) -> None:
    caller_says(hum(60, 60, 10000))
    started = time.monotonic()
    result = await channel.gather(None, speech=True, timeout=0.5)
    # cut at the endpointer's 8 s (0.8 s here) and recognised: no words, no answer
    assert 0.7 < time.monotonic() - started < 5
    assert result.timed_out  # no answer: tiny.en wrote "you" at most (ivr.speech.no_words)
    assert len(tiny_en.heard) == 1
