"""The shipped tiny.en model on synthesized phone audio: known words come out, each leg lands
at its place on the call clock, and a card number read aloud is masked before it is stored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from ivr.redact import MASK
from records.models import Transcript
from tests.transcription.calls import Call, publish, write_call
from transcription.jobs import JobConsumer
from transcription.whisper import WhisperSTT, load_stt
from transcription.worker import Transcriber


@pytest.fixture(scope="session")
def whisper() -> WhisperSTT:
    return load_stt()


def test_whisper_hears_known_words_in_8khz_speech(
    whisper: WhisperSTT, say: Callable[..., Path], tmp_path: Path
) -> None:
    wav = say(tmp_path / "leg.wav", (1.0, "Is my Chevrolet Equinox ready? The brakes squeal."))
    segments = whisper.transcribe(wav, prompt="Repair order. Vehicles: Chevrolet Equinox.")
    text = " ".join(s.text for s in segments).lower()
    for word in ("equinox", "ready", "brakes"):
        assert word in text, text
    assert 0.5 <= segments[0].start <= 1.6  # the pause before the speech is kept out (VAD)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_two_leg_call_is_transcribed_in_call_time_and_masked(
    whisper: WhisperSTT,
    say: Callable[..., Path],
    engine: Engine,
    sessions: sessionmaker[Session],
    redis_url: str,
    shop: dict[str, int],
    streams: dict[str, str],
    tmp_path: Path,
) -> None:
    call = Call(shop["store"], shop["ann"], tmp_path / "recordings")
    # caller recording starts at 2 s (answer), advisor's at 30 s (bridge)
    say(
        call.caller_wav,
        (3.0, "Hi, is my Equinox ready?"),
        (2.0, "My card number is four one one one, one one one one, one one one one, one one "
              "one one."),
    )  # fmt: skip
    say(call.advisor_wav, (1.0, "Yes, your repair order is done. Pick it up at five."))
    events = f"{streams['stream']}:events"
    client = redis.Redis.from_url(redis_url)
    publish(client, events, call.events())
    write_call(engine, redis_url, streams["stream"], events)
    client.delete(events)
    client.close()

    consumer = JobConsumer(
        redis_url, Transcriber(whisper, engine, call.recordings_dir), consumer_name="r", **streams
    )
    while consumer.poll_once(block_ms=20):
        pass
    consumer.close()
    with sessions() as s:
        transcript = s.scalar(select(Transcript))
        assert transcript is not None
        lines = [(x.speaker, x.start_s, x.text) for x in transcript.segments]
    caller = [x for x in lines if x[0] == "Caller"]
    advisor = [x for x in lines if x[0] == "Advisor"]
    assert caller and advisor, lines
    assert 4.0 <= caller[0][1] <= 6.0, lines  # 2 s offset + 3 s pause
    assert "equinox" in caller[0][2].lower(), lines
    assert 30.0 <= advisor[0][1] <= 32.5 and "repair order" in advisor[0][2].lower(), lines
    assert MASK in transcript.text and "4111" not in transcript.text, transcript.text
    assert "one one one" not in transcript.text.lower(), transcript.text
    assert [x[0] for x in lines if x[0] == "IVR"] == ["IVR", "IVR"]
    assert transcript.model == "faster-whisper:" + whisper.model_dir.name
