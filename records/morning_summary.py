"""The morning summary webhook: each store's yesterday (records/morning.py) as JSON, POSTed to
the managers' webhook (`morning_webhook_url`) once per store per day, from `morning_hour`
local time on.

Once per day across restarts and processes: before posting, the sender claims
`driveline:morning:sent:<store>:<day>` in Redis with SET NX (kept for a few days); a failed
post releases the claim so the next tick retries. `driveline serve` runs `MorningSummaryPart`
(a light thread that ticks once a minute); `driveline morning-summary --send` does the same
once, e.g. from cron.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import click
import httpx
import redis
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ivr.config import Settings, get_settings
from ivr.parts import ThreadPart, every
from records.models import Store, utcnow
from records.morning import morning_report, yesterday

log = logging.getLogger(__name__)

SENT_KEY = "driveline:morning:sent:{store_id}:{day}"
SENT_TTL_S = 4 * 24 * 3600  # longer than any store's day, short enough to clean up itself
TICK_S = 60.0
TIMEOUT_S = 10.0


def summary(session: Session, *, store: Store, day: date, now: datetime) -> dict[str, Any]:
    """The JSON body: the morning report of one local day, marked with what it is."""
    body = morning_report(session, store=store, first=day, last=day, now=now).to_json()
    return {"type": "driveline.morning_summary", **body}


def post(url: str, body: dict[str, Any], *, timeout: float = TIMEOUT_S) -> int:
    """POST the summary; returns the status code, raises on a network error or a non-2xx."""
    response = httpx.post(url, json=body, timeout=timeout)
    response.raise_for_status()
    return response.status_code


@dataclass(frozen=True)
class Sent:
    store_id: int
    day: date
    status: str  # "sent", "already sent", "failed: <reason>"


def send_due(
    engine: Engine,
    client: redis.Redis,
    *,
    url: str,
    hour: int,
    now: datetime,
    store_ids: set[int] | None = None,
    day: date | None = None,
    force: bool = False,
) -> list[Sent]:
    """Send every store's summary that is due (its local time is past `hour`) and not yet sent
    for its yesterday (or `day`); `force` ignores both rules."""
    results = []
    with Session(engine) as session:
        stores = session.scalars(select(Store).order_by(Store.id)).all()
        for store in stores:
            if store_ids is not None and store.id not in store_ids:
                continue
            if not force and now.astimezone(ZoneInfo(store.timezone)).hour < hour:
                continue
            which = day or yesterday(store, now)
            key = SENT_KEY.format(store_id=store.id, day=which.isoformat())
            if not force and not client.set(key, now.isoformat(), nx=True, ex=SENT_TTL_S):
                results.append(Sent(store.id, which, "already sent"))
                continue
            try:
                post(url, summary(session, store=store, day=which, now=now))
            except (httpx.HTTPError, OSError) as exc:
                client.delete(key)  # retried on the next tick
                log.warning("morning summary for store %s not sent: %s", store.id, exc)
                results.append(Sent(store.id, which, f"failed: {exc}"))
                continue
            client.set(key, now.isoformat(), ex=SENT_TTL_S)
            log.info("morning summary for store %s (%s) sent", store.id, which)
            results.append(Sent(store.id, which, "sent"))
    return results


class MorningSummaryPart(ThreadPart):
    """The sender as a `driveline serve` part (driveline/supervisor.py): a thread ticking once a
    minute. A failed tick is logged and retried; it never stops the server."""

    def __init__(self, engine: Engine, settings: Settings, tick_s: float = TICK_S) -> None:
        assert settings.morning_webhook_url, "only started with a webhook URL"
        super().__init__("morning-summary", self._run, join_s=TIMEOUT_S + 5)
        self.engine, self.settings, self.tick_s = engine, settings, tick_s

    def _run(self, stopping: threading.Event) -> None:
        client = redis.Redis.from_url(self.settings.redis_url)

        def tick() -> None:
            send_due(
                self.engine,
                client,
                url=str(self.settings.morning_webhook_url),
                hour=self.settings.morning_hour,
                now=utcnow(),
            )

        try:
            every(self.tick_s, tick, "morning summary tick")(stopping)
        finally:
            client.close()


@click.command("morning-summary")
@click.option("--send", is_flag=True, help="POST it to morning_webhook_url (once per day).")
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Local day to report (default: each store's yesterday).",
)
@click.option("--store", "store_ids", type=int, multiple=True, help="Only this store (repeat).")
@click.option("--force", is_flag=True, help="With --send: send again, even if already sent.")
def morning_summary_command(
    send: bool, day: datetime | None, store_ids: tuple[int, ...], force: bool
) -> None:
    """Print each store's morning summary (JSON); --send posts it to the managers' webhook.

    With --send it keeps the once-per-store-per-day rule of `driveline serve` (so cron and
    serve never double-send) and ignores morning_hour; run it from cron after that hour.
    """
    from records.db import make_engine

    settings = get_settings()
    engine = make_engine(settings.database_url)
    now = utcnow()
    wanted = set(store_ids) or None
    local_day = day.date() if day else None
    try:
        if not send:
            with Session(engine) as session:
                stores = session.scalars(select(Store).order_by(Store.id)).all()
                bodies = [
                    summary(session, store=s, day=local_day or yesterday(s, now), now=now)
                    for s in stores
                    if wanted is None or s.id in wanted
                ]
            click.echo(json.dumps(bodies, indent=2))
            return
        if not settings.morning_webhook_url:
            raise click.ClickException("set morning_webhook_url (DRIVELINE_MORNING_WEBHOOK_URL)")
        client = redis.Redis.from_url(settings.redis_url)
        try:
            results = send_due(
                engine,
                client,
                url=settings.morning_webhook_url,
                hour=0,
                now=now,
                store_ids=wanted,
                day=local_day,
                force=force,
            )
        finally:
            client.close()
    finally:
        engine.dispose()
    for result in results:
        click.echo(f"store {result.store_id} {result.day}: {result.status}")
    if any(r.status.startswith("failed") for r in results):
        raise SystemExit(1)
