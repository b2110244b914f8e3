"""`driveline speech`: the speech-recognition service behind the SIP workers' speech gathers."""

from __future__ import annotations

import logging
import signal

import click

from ivr.config import get_settings, hide_password

log = logging.getLogger(__name__)


@click.command("speech")
@click.option("--batch", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Requests taken from the queue at once.")  # fmt: skip
@click.option("--name", default=None,
              help="This service's name in Redis (default: the host name). Keep it stable "
                   "and unique: a restarted service answers the requests it held.")  # fmt: skip
def speech(batch: int, name: str | None) -> None:
    """Recognize and understand callers' speech for every SIP worker (models loaded once).

    Run one per host (or more for more speech gathers at once): they share one Redis queue.
    Without it, speech gathers hear nothing and callers use the keypad.
    """
    from speech.recognizer import RecognizerService, endpointed_stt, intent_classifier

    settings = get_settings()
    stt = endpointed_stt(settings.stt_model_dir, settings.stt_threads)
    service = RecognizerService(
        settings.redis_url, stt, batch=batch, classifier=intent_classifier(), name=name
    )
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: service.stopping.set())
    click.echo(f"speech service ready (queue on {hide_password(settings.redis_url)})")
    service.run()
    click.echo(f"speech service stopped after {service.served} requests")
