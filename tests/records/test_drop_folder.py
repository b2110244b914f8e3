"""The DMS drop folder (records/drop_folder.py): each export dropped there is imported once,
with the status webhook's effects, and moved to done/ or failed/ beside its report."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from driveline.cli import main
from events.bus import EventBus
from records.drop_folder import DropFolder, DropFolderPart
from records.models import Customer, RepairOrder, ThreadEntry

EXAMPLE = Path(__file__).parents[2] / "records" / "examples" / "dms_export.csv"
READY = [{"type": "repair_order", "store": "EX1", "number": "70123",
          "status": "Ready for Pickup", "status_at": "2026-11-25T17:45:00Z"}]  # fmt: skip


def _customers(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        return s.scalar(select(func.count(Customer.id))) or 0


def test_a_dropped_export_is_imported_once_when_it_has_settled(
    engine: Engine, sessions: sessionmaker[Session], redis_url: str, tmp_path: Path
) -> None:
    bus = EventBus(redis_url)
    folder = DropFolder(engine, tmp_path, bus=bus, settle_s=1.0)
    try:
        partial = tmp_path / "export.csv.part"  # still being written: never taken
        shutil.copy(EXAMPLE, partial)
        assert folder.scan_once(now=0) == [] and folder.scan_once(now=10) == []
        partial.rename(tmp_path / "export.csv")
        assert folder.scan_once(now=20) == []  # first seen: it may still be growing
        (item,) = folder.scan_once(now=22)
        assert item.outcome == "done" and item.moved_to.parent == tmp_path / "done"
        assert item.report.read_text().startswith("export.csv: done")
        assert _customers(sessions) > 0 and not (tmp_path / "export.csv").exists()
        assert folder.scan_once(now=30) == []  # once

        (tmp_path / "ready.json").write_text(json.dumps(READY))
        folder.scan_once(now=40)
        (ready,) = folder.scan_once(now=42)
        assert ready.outcome == "done"
        with sessions() as s:
            ro = s.scalars(select(RepairOrder).where(RepairOrder.number == "70123")).one()
            entries = s.scalars(select(ThreadEntry).where(ThreadEntry.kind == "status_change"))
            assert ro.status == "Ready for Pickup"
            assert [e.body for e in entries] == ["RO 70123: Tech Working → Ready for Pickup"]
    finally:
        bus.close()


def test_bad_files_go_to_failed_with_a_report_and_a_crash_is_picked_up_again(
    engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    folder = DropFolder(engine, tmp_path, settle_s=0)
    (tmp_path / "broken.json").write_text("{not json")
    rows = [{"type": "store", "id": "S9", "name": "Nine", "timezone": "UTC"},
            {"type": "customer", "store": "S9", "id": "C1", "first_name": "Al",
             "home_phone": "not a phone"}]  # fmt: skip
    (tmp_path / "some-bad-rows.json").write_text(json.dumps(rows))
    done = {item.name: item for item in folder.scan_once()}
    assert done["broken.json"].outcome == "failed"
    assert "not imported" in done["broken.json"].report.read_text()
    bad_rows = done["some-bad-rows.json"]
    assert bad_rows.outcome == "failed" and bad_rows.moved_to.parent == tmp_path / "failed"
    assert "row 2" in bad_rows.report.read_text()  # the refused row, named
    # A crash after taking a file: it waits in processing/ and is imported at the next scan.
    shutil.copy(EXAMPLE, tmp_path / "processing" / "left.csv")
    (left,) = DropFolder(engine, tmp_path, settle_s=0).scan_once()
    assert left.outcome == "done" and not (tmp_path / "processing" / "left.csv").exists()


def test_the_watch_command_and_the_serve_part(
    db_url: str, redis_url: str, engine: Engine, tmp_path: Path, fresh_settings: None
) -> None:
    env = {"DRIVELINE_DATABASE_URL": db_url, "DRIVELINE_REDIS_URL": redis_url}
    runner = CliRunner()
    usage = runner.invoke(main, ["import"], env=env)
    assert usage.exit_code == 2 and "--watch" in usage.output
    drop = tmp_path / "drop"
    drop.mkdir()
    shutil.copy(EXAMPLE, drop / "export.csv")
    once = runner.invoke(main, ["import", "--watch", str(drop), "--once"], env=env)
    assert once.exit_code == 0, once.output
    assert "export.csv: done" in once.output and len(list((drop / "done").glob("*.csv"))) == 1

    part = DropFolderPart(DropFolder(engine, drop, settle_s=0), interval_s=0.1)
    part.start()
    try:
        (drop / "again.json.part").write_text(json.dumps(READY))  # as a DMS: write, rename
        (drop / "again.json.part").rename(drop / "again.json")
        deadline = time.monotonic() + 10
        while not list((drop / "done").glob("*again.json")):
            assert time.monotonic() < deadline and part.alive()
            time.sleep(0.05)
    finally:
        part.stop()
    assert not part.alive()
