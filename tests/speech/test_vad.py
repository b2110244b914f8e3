"""The speech gather's endpointer on real speech (espeak-ng through a phone line) and silence."""

from __future__ import annotations

import numpy as np
import pytest

from bench.speech_eval import read_pcm, render
from sip.vad import FRAME_BYTES, Endpointer, Pause, SpeechStarted, Utterance

SILENCE = b"\x00\x00" * 8000  # 1 s


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """About a second and a half of "Is my car ready?" at 8 kHz, 16-bit."""
    return read_pcm(render("Is my car ready?", "espeak", tmp_path_factory.mktemp("eval")))


def feed(endpointer: Endpointer, pcm: bytes, chunk: int = FRAME_BYTES) -> list[tuple[int, object]]:
    """Feed in pjsua-sized frames; (byte offset, event) for every event."""
    events = []
    for start in range(0, len(pcm), chunk):
        events += [(start, e) for e in endpointer.feed(pcm[start : start + chunk])]
    return events


def test_speech_starts_then_ends_after_the_silence(speech: bytes) -> None:
    endpointer = Endpointer(end_silence=0.55)
    events = feed(endpointer, SILENCE + speech + SILENCE)
    assert [type(e) for _, e in events] == [SpeechStarted, Pause, Utterance]
    (started_at, _), (paused_at, pause), (ended_at, utterance) = events
    assert 0.9 < started_at / 16000 < 1.3  # shortly after the leading second of silence
    speech_end = (len(SILENCE) + len(speech)) / 16000
    assert speech_end + 0.3 < ended_at / 16000 < speech_end + 0.8  # the silence hangover
    assert isinstance(utterance, Utterance) and not utterance.truncated
    # the preroll keeps the first syllable; the trailing silence is mostly cut
    assert len(speech) / 16000 - 0.2 < len(utterance.pcm) / 16000 < len(speech) / 16000 + 0.7
    # the pause came a quarter second earlier with the very audio the utterance ended with
    assert isinstance(pause, Pause) and pause.pcm == utterance.pcm
    assert (ended_at - paused_at) / 16000 == pytest.approx(0.55 - 0.24, abs=0.03)


def test_speech_after_a_pause_makes_a_longer_utterance(speech: bytes) -> None:
    loud = np.nonzero(np.abs(np.frombuffer(speech, dtype="<i2")) > 500)[0]
    words = speech[2 * loud[0] : 2 * loud[-1]]  # without the clip's own silence
    gap = b"\x00\x00" * 2800  # 0.35 s: a pause, not the end
    events = [e for _, e in feed(Endpointer(end_silence=0.5), words + gap + words + SILENCE)]
    pauses = [e for e in events if isinstance(e, Pause)]
    (utterance,) = [e for e in events if isinstance(e, Utterance)]
    assert len(pauses) == 2 and pauses[0].pcm != utterance.pcm == pauses[1].pcm
    assert len(utterance.pcm) > 2 * len(words)


def test_silence_and_odd_chunk_sizes_start_nothing() -> None:
    endpointer = Endpointer()
    assert feed(endpointer, SILENCE * 3, chunk=100) == []
    assert endpointer.flush() is None


def test_a_long_utterance_is_cut_at_max_seconds(speech: bytes) -> None:
    endpointer = Endpointer(max_seconds=1.0)
    events = feed(endpointer, speech * 3)
    utterance = events[-1][1]
    assert isinstance(utterance, Utterance) and utterance.truncated
    assert len(utterance.pcm) / 16000 == pytest.approx(1.0, abs=0.05)
    assert endpointer.feed(speech) == []  # one utterance per gather


def test_flush_gives_the_speech_so_far(speech: bytes) -> None:
    endpointer = Endpointer()
    feed(endpointer, speech[: len(speech) // 2])
    assert endpointer.speaking
    partial = endpointer.flush()
    assert partial is not None and partial.truncated and len(partial.pcm) > 0
