"""The speech-recognition service the SIP workers' speech gathers use, and their client.

Why a service: a faster-whisper model costs ~100 MB and ~0.6 s to load, and a SIP worker must
stay under 80 MB (DESIGN.md). So one process loads the model once and serves every worker.

Why Redis request/reply (not a loopback HTTP service): every worker already talks to Redis, so
there is no port, address or discovery to configure; several services (on several hosts) can
pop the same list, which load-balances them with no extra code; a request a dead service never
took simply times out on the worker's side. The protocol:

    worker:   RPUSH driveline:stt:requests  <json header>\\n<16-bit PCM>
              header = {id, rate, prompt, deadline (unix time)}
    service:  BLMOVE the list to its own driveline:stt:taken:<name> (then LMOVE up to `batch`
              more that are already waiting), transcribe each with the one loaded model, skip
              those past their deadline, RPUSH driveline:stt:reply:<id> <json {text,
              confidence, seconds}>, EXPIRE 30 s, then LREM it from its taken list
    worker:   BLPOP driveline:stt:reply:<id> for `timeout` seconds

A service killed with requests in hand (SIGKILL, OOM) leaves them on its taken list; started
again under the same name (the host's, by default) it first puts them back at the head of the
queue, so an utterance still within its deadline is answered by the new life (the model
loads in under a second) instead of timing out.

The same queue classifies text for intent gathers (speech/intents.py): header = {id, kind:
"classify", text, intents: {name: [examples]}, deadline}, no PCM; the reply is {scores}. One
queue, so the service that holds the warm recognizer also holds the one warm language model
and a worker never loads either.

The service also refreshes `driveline:stt:alive` (TTL 5 s) while it runs, so a worker whose
service is down does not wait for its timeout: the client returns None at once ("no match",
logged) and the caller can still use the keypad.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import redis
import redis.asyncio as aioredis

from ivr.parts import ThreadPart
from ivr.speech import PHONE_RATE, STT, Audio, SpeechSegment

if TYPE_CHECKING:  # the SIP worker imports this module for the client: no models there
    from speech.intents import IntentClassifier
    from transcription.whisper import WhisperSTT

log = logging.getLogger(__name__)

REQUESTS = "driveline:stt:requests"
TAKEN = "driveline:stt:taken:{name}"  # the requests a service holds, until answered
ALIVE = "driveline:stt:alive"
REPLY_TTL = 30  # seconds a reply waits for a worker that gave up
ALIVE_TTL = 5
DEFAULT_TIMEOUT = 3.0  # seconds a worker waits for its transcript
MAX_SECONDS = 15.0  # longest utterance accepted (the channel's VAD cuts at 8 s)
MIN_WINDOW = 4  # seconds: Whisper's input window for an utterance is never shorter


def reply_key(request_id: str) -> str:
    return f"driveline:stt:reply:{request_id}"


def encode_request(
    request_id: str, pcm: bytes, rate: int, prompt: str | None, timeout: float
) -> bytes:
    header = {"id": request_id, "rate": rate, "prompt": prompt, "deadline": time.time() + timeout}
    return json.dumps(header).encode() + b"\n" + pcm


def encode_classify(
    request_id: str, text: str, intents: Mapping[str, Sequence[str]], timeout: float
) -> bytes:
    header = {"id": request_id, "kind": "classify", "text": text,
              "intents": {k: list(v) for k, v in intents.items()},
              "deadline": time.time() + timeout}  # fmt: skip
    return json.dumps(header).encode() + b"\n"


@dataclass(frozen=True)
class Request:
    id: str
    rate: int
    prompt: str | None
    deadline: float
    pcm: bytes
    text: str = ""  # a classify request's words
    intents: dict[str, list[str]] | None = None  # set: classify `text`, no audio

    @classmethod
    def decode(cls, raw: bytes) -> Request:
        head, _, pcm = raw.partition(b"\n")
        data = json.loads(head)
        if data.get("kind") == "classify":
            return cls(str(data["id"]), 0, None, float(data["deadline"]), b"",
                       str(data["text"]), dict(data["intents"]))  # fmt: skip
        return cls(
            str(data["id"]), int(data["rate"]), data.get("prompt"), float(data["deadline"]), pcm
        )


# --- the service -------------------------------------------------------------------------------


class RecognizerService:
    """Pops requests, transcribes them with one loaded model, replies. `run` blocks until
    `stop` is set; Redis trouble is logged and retried with backoff (the service never dies
    because Redis restarted)."""

    def __init__(
        self,
        redis_url: str,
        stt: STT,
        *,
        batch: int = 8,
        classifier: IntentClassifier | None = None,
        name: str | None = None,
    ) -> None:
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
        self.taken = TAKEN.format(name=name or socket.gethostname())
        self.stt = stt
        self.classifier = classifier  # None: classify requests get no scores (keys still work)
        self.batch = batch
        self.stopping = threading.Event()
        self.served = 0

    def run(self) -> None:
        backoff = 0.5
        requeued = False
        while not self.stopping.is_set():
            try:
                if not requeued:
                    self._requeue_taken()
                    requeued = True
                self.redis.set(ALIVE, "1", ex=ALIVE_TTL)
                raws = self._take()
                for raw in raws:
                    try:
                        request = Request.decode(raw)
                    except (ValueError, KeyError, TypeError) as exc:  # never again, on restart
                        log.warning("speech service: dropped a malformed request (%s)", exc)
                    else:
                        self._serve(request)
                    self.redis.lrem(self.taken, 1, raw)
                backoff = 0.5
            except redis.RedisError as exc:
                requeued = False  # what we held when Redis went away: back to the queue
                log.warning("speech service: %s; retrying in %.1fs", exc, backoff)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 10.0)
        try:
            self.redis.delete(ALIVE)
        except redis.RedisError:
            pass
        self.redis.close()

    def _take(self) -> list[bytes]:
        """Up to `batch` requests, moved onto our taken list (waiting up to 1 s for the first)."""
        first: bytes | None = self.redis.blmove(REQUESTS, self.taken, 1, "LEFT", "RIGHT")
        raws = [] if first is None else [first]
        while raws and len(raws) < self.batch:
            more: bytes | None = self.redis.lmove(REQUESTS, self.taken, "LEFT", "RIGHT")
            if more is None:
                break
            raws.append(more)
        return raws

    def _requeue_taken(self) -> None:
        """What a previous life of this service held when it died goes back to the queue's
        head, oldest first; the ones past their deadline are then skipped as usual."""
        count = 0
        while self.redis.lmove(self.taken, REQUESTS, "RIGHT", "LEFT") is not None:
            count += 1
        if count:
            log.warning("put back %d speech request(s) a previous run left unanswered", count)

    def _serve(self, request: Request) -> None:
        if time.time() > request.deadline:
            log.info("speech request %s expired before it was served", request.id)
            return
        if request.intents is not None:
            self._reply(request.id, {"scores": self._classify(request)})
            return
        seconds = len(request.pcm) / (2 * request.rate)
        started = time.monotonic()
        try:
            pcm = request.pcm[: int(MAX_SECONDS * request.rate) * 2]
            segments = self.stt.transcribe(pcm, sample_rate=request.rate, prompt=request.prompt)
            text = " ".join(s.text for s in segments).strip()
            confidence = min((s.confidence for s in segments), default=0.0)
        except Exception:  # noqa: BLE001 - one bad request must not stop the service
            log.exception("speech request %s failed", request.id)
            text, confidence = "", 0.0
        took = time.monotonic() - started
        self._reply(request.id, {"text": text, "confidence": confidence, "seconds": seconds})
        log.info("heard %r in %.2fs of audio (%.0f ms)", text, seconds, took * 1000)

    def _classify(self, request: Request) -> dict[str, float] | None:
        """Scores are not logged: the text may be a sensitive gather's (the worker decides)."""
        if self.classifier is None:
            log.warning("classify request %s: this service has no language model", request.id)
            return None
        started = time.monotonic()
        try:
            scores = self.classifier.scores(request.text, request.intents or {})
        except Exception:  # noqa: BLE001 - one bad request must not stop the service
            log.exception("classify request %s failed", request.id)
            return None
        log.info("classified among %d intents (%.0f ms)", len(scores),
                 (time.monotonic() - started) * 1000)  # fmt: skip
        return scores

    def _reply(self, request_id: str, body: dict[str, object]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.rpush(reply_key(request_id), json.dumps(body))
        pipe.expire(reply_key(request_id), REPLY_TTL)
        self.served += 1  # before the reply is out: whoever gets the reply sees it counted
        pipe.execute()


class UtteranceSTT:
    """The loaded faster-whisper model tuned for one short, already endpointed utterance.

    Whisper pads every input to a 30 s window, and the encoder's cost follows the window, not
    the speech: for a 2 s answer that is most of the time. The utterance is at most 8 s (the
    channel's VAD cuts it), so the window is cut to the utterance plus a second
    (`chunk_length`), timestamps are skipped, and the VAD filter is off (the channel's VAD
    already cut the utterance). Measured here: 4.0 s → 1.2 s for "is my car ready" on a
    loaded machine, same text. The model and its lock are shared with a transcription worker
    in the same process (`load_stt`).
    """

    name = "faster-whisper-utterance"

    def __init__(self, whisper: WhisperSTT) -> None:
        self.whisper = whisper

    def transcribe(
        self, audio: Audio, *, sample_rate: int = PHONE_RATE, prompt: str | None = None
    ) -> list[SpeechSegment]:
        from transcription.whisper import WHISPER_RATE, pcm_to_whisper

        if not isinstance(audio, bytes):
            return self.whisper.transcribe(audio, sample_rate=sample_rate, prompt=prompt)
        samples = pcm_to_whisper(audio, sample_rate)
        window = min(30, max(MIN_WINDOW, math.ceil(len(samples) / WHISPER_RATE) + 1))
        return self.whisper.segments(
            samples,
            prompt=prompt,
            vad_filter=False,
            without_timestamps=True,
            chunk_length=window,
        )


def endpointed_stt(model_dir: Path | None, threads: int) -> UtteranceSTT:
    """The process's one model (see `load_stt`), set up for speech gathers."""
    from transcription.whisper import load_stt

    return UtteranceSTT(load_stt(model_dir, threads))


def intent_classifier() -> IntentClassifier:
    """The process's one language model (speech/embedder.py), for intent gathers."""
    from speech.embedder import load_embedder
    from speech.intents import IntentClassifier

    return IntentClassifier(load_embedder())


class SpeechPart(ThreadPart):
    """The service as a `driveline serve` part (driveline/supervisor.py): a thread of ours. The
    models load in `start`, so a server whose models are missing fails to start."""

    def __init__(self, redis_url: str, model_dir: Path | None, threads: int) -> None:
        super().__init__("speech", self._run, join_s=10)
        self.redis_url, self.model_dir, self.threads = redis_url, model_dir, threads
        self.service: RecognizerService | None = None

    def start(self) -> None:
        self.service = RecognizerService(
            self.redis_url,
            endpointed_stt(self.model_dir, self.threads),
            classifier=intent_classifier(),
        )
        self.service.stopping = self.stopping  # the part's stop is the service's
        super().start()

    def _run(self, stopping: threading.Event) -> None:
        assert self.service is not None
        self.service.run()


# --- the worker's side -------------------------------------------------------------------------


class SpeechClient:
    """What a SIP worker's channel calls with an utterance. Never raises: no service, no
    Redis or no reply in time all give None (the gather treats it as "no match")."""

    def __init__(self, redis_url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.redis = aioredis.Redis.from_url(redis_url, socket_connect_timeout=1)
        self.timeout = timeout

    async def recognize(
        self, pcm: bytes, *, sample_rate: int = PHONE_RATE, prompt: str | None = None
    ) -> SpeechSegment | None:
        request_id = uuid.uuid4().hex
        seconds = len(pcm) / (2 * sample_rate)
        try:
            if not await self.redis.exists(ALIVE):
                log.warning("no speech service running: %.1fs of speech not recognized", seconds)
                return None
            raw = encode_request(request_id, pcm, sample_rate, prompt, self.timeout)
            await self.redis.rpush(REQUESTS, raw)
            popped = await self.redis.blpop([reply_key(request_id)], timeout=self.timeout)
        except (redis.RedisError, OSError) as exc:
            log.warning("speech service unreachable (%s): speech not recognized", exc)
            return None
        if popped is None:
            log.warning("speech service gave no answer in %.1fs", self.timeout)
            return None
        reply = json.loads(popped[1])
        return SpeechSegment(0.0, seconds, reply["text"], float(reply["confidence"]))

    async def classify(
        self, text: str, intents: Mapping[str, Sequence[str]]
    ) -> dict[str, float] | None:
        """`ivr.speech.Understanding` for the worker's flow engine: the service scores `text`."""
        request_id = uuid.uuid4().hex
        try:
            if not await self.redis.exists(ALIVE):
                log.warning("no speech service running: request not classified")
                return None
            await self.redis.rpush(REQUESTS, encode_classify(request_id, text, intents,
                                                             self.timeout))  # fmt: skip
            popped = await self.redis.blpop([reply_key(request_id)], timeout=self.timeout)
        except (redis.RedisError, OSError) as exc:
            log.warning("speech service unreachable (%s): request not classified", exc)
            return None
        if popped is None:
            log.warning("speech service gave no scores in %.1fs", self.timeout)
            return None
        scores = json.loads(popped[1]).get("scores")
        return {str(k): float(v) for k, v in scores.items()} if scores is not None else None

    async def close(self) -> None:
        await self.redis.aclose()
