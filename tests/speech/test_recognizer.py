"""The speech service and its client over real Redis, with a scripted recogniser (FakeSTT);
the real model is exercised by tests/speech/test_speech_eval.py and the e2e speech test."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from ivr.speech import FakeSTT
from speech.recognizer import (
    ALIVE,
    REQUESTS,
    TAKEN,
    RecognizerService,
    SpeechClient,
    encode_request,
    reply_key,
)

PCM = b"\x01\x00" * 8000  # 1 s at 8 kHz


@pytest.fixture
def stt() -> FakeSTT:
    return FakeSTT(pcm_text="Is my car ready?")


@pytest.fixture
def service(redis_url: str, stt: FakeSTT) -> Iterator[RecognizerService]:
    redis.Redis.from_url(redis_url).delete(ALIVE, REQUESTS)
    running = RecognizerService(redis_url, stt)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not redis.Redis.from_url(redis_url).exists(ALIVE):
        assert time.monotonic() < deadline, "the service never said it was alive"
        time.sleep(0.02)
    try:
        yield running
    finally:
        running.stopping.set()
        thread.join(timeout=5)
        assert not thread.is_alive()


def test_an_utterance_is_recognized_with_the_prompt(
    redis_url: str, service: RecognizerService, stt: FakeSTT
) -> None:
    async def go() -> None:
        client = SpeechClient(redis_url, timeout=5)
        try:
            heard = await client.recognize(PCM, prompt="status, pick up.")
        finally:
            await client.close()
        assert heard is not None and heard.text == "Is my car ready?"
        assert heard.end == pytest.approx(1.0)

    asyncio.run(go())
    ((audio, prompt),) = stt.calls
    assert audio == PCM and prompt == "status, pick up."
    assert service.served == 1


def test_no_service_means_no_match_at_once(redis_url: str) -> None:
    redis.Redis.from_url(redis_url).delete(ALIVE, REQUESTS)

    async def go() -> None:
        client = SpeechClient(redis_url, timeout=5)
        started = time.monotonic()
        try:
            assert await client.recognize(PCM) is None
        finally:
            await client.close()
        assert time.monotonic() - started < 1.0  # no 5 s wait for a service that is not there

    asyncio.run(go())
    assert redis.Redis.from_url(redis_url).llen(REQUESTS) == 0  # nothing left queued


def test_unreachable_redis_means_no_match() -> None:
    async def go() -> None:
        client = SpeechClient("redis://127.0.0.1:1/0", timeout=1)
        try:
            assert await client.recognize(PCM) is None
        finally:
            await client.close()

    asyncio.run(go())


def test_a_silent_service_times_out(redis_url: str) -> None:
    """Alive key set, but nobody pops the queue (a hung service): the client gives up."""
    client_redis = redis.Redis.from_url(redis_url)
    client_redis.delete(REQUESTS)
    client_redis.set(ALIVE, "1", ex=5)

    async def go() -> None:
        client = SpeechClient(redis_url, timeout=0.5)
        try:
            assert await client.recognize(PCM) is None
        finally:
            await client.close()

    asyncio.run(go())
    client_redis.delete(ALIVE, REQUESTS)


def test_expired_requests_are_skipped(
    redis_url: str, service: RecognizerService, stt: FakeSTT
) -> None:
    client = redis.Redis.from_url(redis_url)
    client.rpush(REQUESTS, encode_request("old", PCM, 8000, None, timeout=-1))
    client.rpush(REQUESTS, encode_request("new", PCM, 8000, None, timeout=5))
    popped = client.blpop([reply_key("new")], timeout=5)
    assert popped is not None
    assert client.exists(reply_key("old")) == 0
    assert len(stt.calls) == 1


def test_a_restarted_service_answers_what_its_killed_life_held(
    redis_url: str, stt: FakeSTT
) -> None:
    client = redis.Redis.from_url(redis_url)
    taken = TAKEN.format(name="box")
    client.delete(ALIVE, REQUESTS, taken)
    # as a SIGKILLed service leaves it: moved off the queue onto its taken list, unanswered
    client.rpush(taken, encode_request("held", PCM, 8000, None, timeout=5))
    client.rpush(REQUESTS, encode_request("queued", PCM, 8000, None, timeout=5))
    running = RecognizerService(redis_url, stt, name="box")
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    try:
        assert client.blpop([reply_key("held")], timeout=5) is not None
        assert client.blpop([reply_key("queued")], timeout=5) is not None
        assert len(stt.calls) == 2
        deadline = time.monotonic() + 2
        while client.llen(taken):  # each answered request leaves the taken list
            assert time.monotonic() < deadline, "answered requests left on the taken list"
            time.sleep(0.02)
    finally:
        running.stopping.set()
        thread.join(timeout=5)
        client.delete(ALIVE, REQUESTS, taken)
