"""Retention per store on real SQLite and PostgreSQL with real files: the dry run deletes
nothing, applying deletes only what is past the store's period (files and rows; the calls stay
counted), a file already gone is fine, each run is audited and shows on the morning view, and
both `driveline retention` and the serve part run it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from driveline.cli import main
from driveline.retention import RetentionPart, run_due
from ivr.config import Settings, get_settings
from records import audit_log, morning
from records.models import (
    AuditLog,
    Call,
    Recording,
    Store,
    ThreadEntry,
    Transcript,
    TranscriptSegment,
)
from records.queries import Scope
from records.transcripts import search_transcripts
from tests.api.conftest import NOW, World
from tests.usecases.media import add_call, wav_bytes
from usecases import retention

DAYS = 30


@dataclass
class Media:
    recordings_dir: Path
    old: int  # store A, 40 days ago: past the period
    young: int  # store A, 5 days ago
    lost: int  # store A, 40 days ago and never ended (a lost record, not a live call)
    b_old: int  # store B keeps everything
    untracked: Path  # a file with no row yet (a call being recorded): never touched

    def file(self, session: Session, call_id: int) -> Path:
        rec = session.scalars(select(Recording).where(Recording.call_id == call_id)).one()
        return self.recordings_dir / rec.path


@pytest.fixture
def media(world: World, sessions: sessionmaker[Session], tmp_path: Path) -> Media:
    root = tmp_path / "recordings"
    with sessions.begin() as session:
        store = session.get(Store, world.stores["A"])
        assert store is not None
        store.retention_days = DAYS
        a, b = world.stores["A"], world.stores["B"]
        old = add_call(session, root, store_id=a, started_at=NOW - timedelta(days=40),
                       customer_id=world.customers["A"], said="old brakes")  # fmt: skip
        young = add_call(session, root, store_id=a, started_at=NOW - timedelta(days=5))
        lost = add_call(session, root, store_id=a, started_at=NOW - timedelta(days=40),
                        ended=False)  # fmt: skip
        b_old = add_call(session, root, store_id=b, started_at=NOW - timedelta(days=400))
    untracked = root / "live" / "being-recorded.wav"
    untracked.parent.mkdir(parents=True)
    untracked.write_bytes(b"RIFF live")
    return Media(root, old.id, young.id, lost.id, b_old.id, untracked)


def _counts(session: Session) -> dict[str, int]:
    return {
        name: session.scalar(select(func.count()).select_from(model)) or 0
        for name, model in (
            ("calls", Call),
            ("recordings", Recording),
            ("transcripts", Transcript),
            ("segments", TranscriptSegment),
            ("audit", AuditLog),
        )
    }


def test_the_dry_run_lists_what_is_past_the_period_and_deletes_nothing(
    world: World, sessions: sessionmaker[Session], media: Media
) -> None:
    with sessions() as session:
        before = _counts(session)
        (plan,) = retention.plan_retention(session, now=NOW)  # store B keeps everything
        assert plan.store_id == world.stores["A"] and plan.retention_days == DAYS
        assert {r.call_id for r in plan.recordings} == {media.old, media.lost}
        assert {t.call_id for t in plan.transcripts} == {media.old, media.lost}
        assert plan.cutoff < NOW - timedelta(days=DAYS) and plan.skipped_live == 0
        assert _counts(session) == before
        assert media.file(session, media.old).is_file()


def test_applying_deletes_only_old_media_and_keeps_the_calls(
    world: World, sessions: sessionmaker[Session], media: Media
) -> None:
    first = NOW.date() - timedelta(days=60)
    with sessions() as session:
        report = morning.morning_report(
            session, store=_store(session, world), first=first, last=NOW.date(), now=NOW
        )
        calls_in = report.total.ids["calls_in"]
        old_file, young_file = media.file(session, media.old), media.file(session, media.young)
        b_file = media.file(session, media.b_old)
        before = _counts(session)
        assert len(_found(session, "old brakes")) == 1
        size = old_file.stat().st_size
        (run,) = retention.apply_retention(session, recordings_dir=media.recordings_dir, now=NOW)
    assert (run.files_removed, run.files_missing, run.files_outside) == (2, 0, 0)
    assert run.bytes_freed == 2 * size == 2 * len(wav_bytes("x" * 8))
    assert not old_file.exists() and young_file.is_file() and b_file.is_file()
    assert media.untracked.is_file()
    with sessions() as session:
        after = _counts(session)
        assert after["calls"] == before["calls"]  # the calls stay for the reports
        assert after["recordings"] == before["recordings"] - 2
        assert after["transcripts"] == before["transcripts"] - 2
        assert after["segments"] == before["segments"] - 2
        left = set(session.scalars(select(Recording.call_id)))
        assert left == {media.young, media.b_old}
        entry = session.scalars(select(ThreadEntry).where(ThreadEntry.call_id == media.old)).one()
        assert "recordings" not in entry.data and "transcript_excerpt" not in entry.data
        assert entry.data["media_deleted"].startswith("retention ")
        assert entry.data["disposition"] == "handled_by_ivr"  # what reports read stays
        assert _found(session, "old brakes") == []  # gone from the search index too
        report = morning.morning_report(
            session, store=_store(session, world), first=first, last=NOW.date(), now=NOW
        )
        assert report.total.ids["calls_in"] == calls_in and media.old in calls_in
        note = report.to_json()["retention"]
        assert note["recordings"] == 2 and note["transcripts"] == 2 and note["calls"] == 2
        assert note["by"] == audit_log.JOB and note["retention_days"] == DAYS
        row = session.get(AuditLog, run.audit_id)
        assert row is not None and row.action == "retention" and row.actor_id is None


def test_a_file_already_gone_is_fine_and_a_second_run_finds_nothing(
    sessions: sessionmaker[Session], media: Media
) -> None:
    with sessions() as session:
        media.file(session, media.old).unlink()
        (run,) = retention.apply_retention(session, recordings_dir=media.recordings_dir, now=NOW)
        assert (run.files_removed, run.files_missing) == (1, 1)
        assert set(session.scalars(select(Recording.call_id))) == {media.young, media.b_old}
        (again,) = retention.apply_retention(session, recordings_dir=media.recordings_dir, now=NOW)
        assert again.plan.recordings == [] and again.plan.transcripts == []
        assert again.files_removed == 0
        assert session.scalar(select(func.count()).select_from(AuditLog)) == 2  # both audited


def test_a_row_pointing_outside_the_recordings_dir_never_deletes_that_file(
    sessions: sessionmaker[Session], media: Media, tmp_path: Path
) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("not a recording")
    with sessions() as session:
        rec = session.scalars(select(Recording).where(Recording.call_id == media.old)).one()
        rec.path = "../precious.txt"
        session.commit()
        (run,) = retention.apply_retention(session, recordings_dir=media.recordings_dir, now=NOW)
    assert run.files_outside == 1 and precious.read_text() == "not a recording"


def test_the_daily_run_is_due_once_per_local_day_from_its_hour(
    world: World, engine: Engine, sessions: sessionmaker[Session], media: Media
) -> None:
    a = world.stores["A"]
    with sessions() as session:
        assert retention.due_store_ids(session, now=NOW, hour=0) == {a}
        local_hour = NOW.astimezone(_zone(session, world)).hour
        if local_hour < 23:
            assert retention.due_store_ids(session, now=NOW, hour=local_hour + 1) == set()
    assert run_due(engine, media.recordings_dir, hour=0, now=NOW) == 1
    assert run_due(engine, media.recordings_dir, hour=0, now=NOW) == 0  # done today
    with sessions() as session:
        assert retention.due_store_ids(session, now=NOW + timedelta(days=1), hour=0) == {a}


def _found(session: Session, text: str) -> list[object]:
    return list(search_transcripts(session, Scope(None), text.split(), limit=10, offset=0))


def _store(session: Session, world: World) -> Store:
    store = session.get(Store, world.stores["A"])
    assert store is not None
    return store


def _zone(session: Session, world: World) -> object:
    from zoneinfo import ZoneInfo

    return ZoneInfo(_store(session, world).timezone)


@pytest.mark.usefixtures("fresh_settings")
def test_the_command_prints_a_dry_run_and_deletes_with_apply(
    db_url: str, sessions: sessionmaker[Session], media: Media, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIVELINE_DATABASE_URL", db_url)
    monkeypatch.setenv("DRIVELINE_RECORDINGS_DIR", str(media.recordings_dir))
    get_settings.cache_clear()  # the world's tokens read the settings already
    with sessions() as session:
        old_file = media.file(session, media.old)
        relative = str(old_file.relative_to(media.recordings_dir))
    dry = CliRunner().invoke(main, ["retention"])
    assert dry.exit_code == 0, dry.output
    assert "would delete 2 recordings and 2 transcripts of 2 calls" in dry.output
    assert relative in dry.output and "dry run: nothing deleted" in dry.output
    assert old_file.is_file()
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(AuditLog)) == 0
    done = CliRunner().invoke(main, ["retention", "--apply"])
    assert done.exit_code == 0, done.output
    assert "deleted 2 recordings (2 files" in done.output
    assert not old_file.exists() and media.untracked.is_file()


def test_serve_runs_the_daily_job(
    db_url: str, engine: Engine, sessions: sessionmaker[Session], media: Media
) -> None:
    settings = Settings(database_url=db_url, recordings_dir=media.recordings_dir, retention_hour=0)
    with sessions() as session:
        old_file = media.file(session, media.old)
    part = RetentionPart(engine, settings, tick_s=0.05)
    part.start()
    try:
        deadline = time.monotonic() + 10
        while old_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert part.alive()
    finally:
        part.stop()
    assert not old_file.exists() and not part.alive()
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(AuditLog)) == 1  # once a day
