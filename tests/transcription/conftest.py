"""Fixtures for the transcription tests: own job streams on the test Redis, a store with
vocabulary, and silent 8 kHz WAVs that FakeSTT "hears" by file name."""

from __future__ import annotations

import asyncio
import uuid
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from ivr.speech import PHONE_RATE
from tests.records.helpers import make_customer, make_store, make_user, make_vehicle

DID = "+15550300100"
KNOWN = "+15550301001"


def write_wav(path: Path, seconds: float) -> Path:
    """Silence at phone rate: real audio for code that opens the file, nothing for a model."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(PHONE_RATE)
        out.writeframes(b"\0\0" * int(PHONE_RATE * seconds))
    return path


@pytest.fixture
def streams(redis_url: str) -> Iterator[dict[str, str]]:
    """A job stream, group and dead-letter stream of this test only."""
    tag = uuid.uuid4().hex[:10]
    names = {
        "stream": f"test:jobs:{tag}",
        "group": f"test:transcribers:{tag}",
        "dead_letter_stream": f"test:jobs-dead:{tag}",
    }
    yield names
    client = redis.Redis.from_url(redis_url)
    client.delete(names["stream"], names["dead_letter_stream"])
    client.close()


def make_shop(sessions: sessionmaker[Session]) -> dict[str, int]:
    """A store with advisor Alice, manager Mary and customer Ann (a Chevrolet Equinox)."""
    with sessions.begin() as s:
        store = make_store("S1", DID, name="Northside Chevrolet")
        s.add(store)
        s.flush()
        alice = make_user(store, "alice", name="Alice Romero")
        mary = make_user(store, "mary", role="manager", groups=[], name="Mary Manager")
        s.add_all([alice, mary])
        ann = make_customer(store, "Ann", KNOWN, advisor=alice)
        make_vehicle(ann, "Equinox")
        s.add(ann)
        s.flush()
        return {"store": store.id, "ann": ann.id, "alice": alice.id}


@pytest.fixture
def shop(sessions: sessionmaker[Session]) -> dict[str, int]:
    return make_shop(sessions)


# --- real speech -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def say(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """`say(path, (pause_s, text), ...)`: a phone-rate WAV of piper speaking each text after
    its pause; a text of "" is only the pause."""
    from speech.piper_tts import PiperTTS, default_model_path

    tts = PiperTTS(tmp_path_factory.mktemp("piper"), default_model_path())

    def render(path: Path, *parts: tuple[float, str]) -> Path:
        pcm = b""
        for pause, text in parts:
            pcm += b"\0\0" * int(PHONE_RATE * pause)
            if text:
                with wave.open(str(asyncio.run(tts.render(text))), "rb") as wav:
                    pcm += wav.readframes(wav.getnframes())
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(PHONE_RATE)
            out.writeframes(pcm)
        return path

    return render
