"""`driveline transcribe`: one transcription worker process. Start more (here or on other
hosts, same Redis and database) for more throughput: they share the consumer group."""

from __future__ import annotations

import click

from events.transcription import GROUP, STREAM
from ivr.config import get_settings, hide_password


@click.command("transcribe")
@click.option(
    "--consumer",
    default=None,
    help="Consumer name in the Redis group (default: transcriber-<host>-<pid>). A stable name "
    "lets a restarted worker resume its own pending job after --backoff, not --claim-idle.",
)
@click.option(
    "--claim-idle",
    type=click.FloatRange(0.5),
    default=60.0,
    show_default=True,
    help="Seconds a job may sit unacked on a silent worker before another takes it over.",
)
@click.option("--max-attempts", type=click.IntRange(1), default=5, show_default=True)
@click.option("--backoff", type=click.FloatRange(0.1), default=5.0, show_default=True,
              help="Seconds before the first retry; doubles each attempt.")  # fmt: skip
@click.option("--stream", default=STREAM, hidden=True, help="Job stream (tests, benchmarks).")
@click.option("--group", default=GROUP, hidden=True, help="Consumer group (tests, benchmarks).")
def transcribe(
    consumer: str | None,
    claim_idle: float,
    max_attempts: int,
    backoff: float,
    stream: str,
    group: str,
) -> None:
    """Transcribe recorded calls onto their threads (faster-whisper, model loaded once).

    Stops on Ctrl-C / SIGTERM; a job cut short stays pending and runs again.
    """
    import signal
    import threading

    from records.db import make_engine, upgrade
    from transcription.jobs import run_jobs
    from transcription.whisper import load_stt
    from transcription.worker import make_consumer

    settings = get_settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stt = load_stt(settings.stt_model_dir, settings.stt_threads)
    worker = make_consumer(
        stt,
        engine,
        settings.redis_url,
        settings.recordings_dir,
        consumer_name=consumer,
        claim_idle_ms=int(claim_idle * 1000),
        max_attempts=max_attempts,
        backoff_s=backoff,
        max_backoff_s=max(backoff, claim_idle),
        stream=stream,
        group=group,
    )
    click.echo(
        f"transcriber {worker.consumer_name}: model {stt.model_dir}, "
        f"{hide_password(settings.redis_url)} → {hide_password(settings.database_url)}",
        err=True,
    )
    try:
        run_jobs(worker, stop)
    finally:
        engine.dispose()
