"""The transcription worker: one job = every recording of a call → one transcript on its thread.

The model is loaded once per worker process (`load_stt`) and kept; each leg (caller, advisor,
voicemail) is transcribed on its own with the VAD filter on, with the store's vocabulary as the
initial prompt, then merged with the IVR's lines from the flow log (transcription/merge.py).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from sqlalchemy import Engine

from events.bus import EventBus
from events.transcription import TranscribeJob
from ivr.parts import ThreadPart
from ivr.speech import STT
from records.db import session_factory, transaction
from records.transcripts import store_vocabulary
from transcription.attach import attach
from transcription.jobs import JobConsumer, PermanentJobError, default_consumer_name, run_jobs
from transcription.merge import SPEAKERS, Line, PromptLine, merge, prompt_lines, shift

log = logging.getLogger(__name__)

VOCABULARY_TTL_S = 300.0


class Transcriber:
    """Runs one job: transcribe, merge, attach. Blocking; one job at a time per instance."""

    def __init__(
        self,
        stt: STT,
        engine: Engine,
        recordings_dir: Path,
        bus: EventBus | None = None,
        *,
        model_name: str | None = None,
    ) -> None:
        self.stt = stt
        self.sessions = session_factory(engine)
        self.recordings_dir = Path(recordings_dir)
        self.bus = bus
        self.model_name = model_name or _model_name(stt)
        self._vocabulary: dict[int, tuple[float, str]] = {}

    def __call__(self, job: TranscribeJob) -> None:
        started = time.monotonic()
        log.info("transcribing call %s (%.0fs of audio)", job.call_uuid, job.audio_s)
        lines = self.transcribe(job)
        saved = attach(
            self.sessions, self.bus, call_uuid=job.call_uuid, lines=lines, model=self.model_name
        )
        log.info(
            "call %s: transcript %d attached (%d lines) in %.1fs",
            job.call_uuid,
            saved.transcript_id,
            len(lines),
            time.monotonic() - started,
        )

    def transcribe(self, job: TranscribeJob) -> list[Line]:
        """The call's merged lines (masked): each recording on its own, then the IVR's."""
        prompt = self.vocabulary(job.store_id)
        tracks: list[list[Line]] = []
        for rec in job.recordings:
            path = (self.recordings_dir / rec.path).resolve()
            if not path.is_relative_to(self.recordings_dir.resolve()):
                raise PermanentJobError(f"recording path {rec.path!r} leaves the recordings dir")
            if not path.is_file():
                raise FileNotFoundError(f"recording {path} is missing")  # retried
            segments = self.stt.transcribe(path, prompt=prompt)
            tracks.append(shift(SPEAKERS[rec.role], rec.offset_s, segments))
        ivr = prompt_lines([PromptLine(p.offset_s, p.text) for p in job.prompts])
        return merge(ivr, *tracks)

    def vocabulary(self, store_id: int) -> str:
        """The store's initial prompt, cached a few minutes (it changes with imports only)."""
        cached = self._vocabulary.get(store_id)
        if cached is not None and time.monotonic() - cached[0] < VOCABULARY_TTL_S:
            return cached[1]
        with transaction(self.sessions) as session:
            words = store_vocabulary(session, store_id)
        self._vocabulary[store_id] = (time.monotonic(), words)
        return words


def _model_name(stt: STT) -> str:
    directory = getattr(stt, "model_dir", None)
    return f"{stt.name}:{Path(directory).name}" if directory else stt.name


def make_consumer(
    stt: STT,
    engine: Engine,
    redis_url: str,
    recordings_dir: Path,
    *,
    consumer_name: str | None = None,
    bus: EventBus | None = None,
    **options: object,
) -> JobConsumer:
    transcriber = Transcriber(stt, engine, recordings_dir, bus or EventBus(redis_url))
    return JobConsumer(
        redis_url,
        transcriber,
        consumer_name=consumer_name or default_consumer_name(),
        **options,  # type: ignore[arg-type]
    )


class TranscriberPart(ThreadPart):
    """A worker as a `driveline serve` part: a thread of its own (CTranslate2 releases the GIL).
    The model is loaded in that thread, so the API answers while it loads."""

    def __init__(
        self, engine: Engine, redis_url: str, recordings_dir: Path, model_dir: Path | None,
        threads: int,
    ) -> None:  # fmt: skip
        super().__init__("transcriber", self._run)
        self.engine, self.redis_url, self.recordings_dir = engine, redis_url, recordings_dir
        self.model_dir, self.threads = model_dir, threads

    def _run(self, stopping: threading.Event) -> None:
        from transcription.whisper import load_stt

        stt = load_stt(self.model_dir, self.threads)
        consumer = make_consumer(stt, self.engine, self.redis_url, self.recordings_dir)
        run_jobs(consumer, stopping)
