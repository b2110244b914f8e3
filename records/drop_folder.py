"""A DMS drop folder: a store whose DMS only exports files still gets its status changes, thread
entries and pickup calls, a scan interval after the file lands.

    DIR/export.csv ──(settled: size and mtime unchanged for `settle_s`)──▶ DIR/processing/
        ──▶ import_path (the same import as `driveline import`: status changes through the
            use case, so the webhook's effects) ──▶ DIR/done/ or DIR/failed/, with a report

Safe for a DMS that writes in place or writes then renames: only `.csv` and `.json` files are
taken (a `.tmp` or `.part` being written is left alone), and only once they have stopped
changing. A file is moved into `processing/` before it is read (a rename, so two watchers never
take the same file) and out when its report is written; one left in `processing/` by a crash is
imported again at the next start, which changes nothing twice (the import is idempotent). Each
file lands in `done/` (every row imported) or `failed/` (the file could not be read, or some
rows were refused: the good ones are in), named with the time it was taken, beside
`NAME.report.txt`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from events.bus import EventBus
from ivr.parts import ThreadPart, every
from records.importer import ImportFileError, import_path

log = logging.getLogger(__name__)

SUFFIXES = (".csv", ".json")


@dataclass(frozen=True)
class Processed:
    name: str
    outcome: str  # "done" or "failed"
    moved_to: Path
    report: Path


class DropFolder:
    def __init__(
        self,
        engine: Engine,
        directory: Path,
        *,
        bus: EventBus | None = None,
        region: str = "US",
        settle_s: float = 2.0,
    ) -> None:
        self.engine, self.directory, self.bus = engine, Path(directory), bus
        self.region, self.settle_s = region, settle_s
        self._seen: dict[Path, tuple[int, int, float]] = {}  # size, mtime_ns, first seen same
        for sub in ("processing", "done", "failed"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)

    def scan_once(self, now: float | None = None) -> list[Processed]:
        """Import every settled file (and any a crash left in processing/); what was done."""
        now = time.monotonic() if now is None else now
        done = [self._process(path) for path in sorted((self.directory / "processing").iterdir())
                if path.suffix.lower() in SUFFIXES]  # fmt: skip
        for path in sorted(self.directory.iterdir()):
            if not path.is_file() or path.suffix.lower() not in SUFFIXES:
                continue
            if not self._settled(path, now):
                continue
            taken = self.directory / "processing" / path.name
            try:
                path.rename(taken)
            except FileNotFoundError:  # another watcher took it first
                continue
            done.append(self._process(taken))
        return done

    def _settled(self, path: Path, now: float) -> bool:
        stat = path.stat()
        shape = (stat.st_size, stat.st_mtime_ns)
        seen = self._seen.get(path)
        if seen is None or seen[:2] != shape:
            self._seen[path] = (*shape, now)
            return self.settle_s <= 0
        return now - seen[2] >= self.settle_s

    def _process(self, taken: Path) -> Processed:
        self._seen.pop(self.directory / taken.name, None)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        try:
            report = import_path(self.engine, taken, region=self.region, bus=self.bus)
        except ImportFileError as exc:
            outcome, lines = "failed", [f"not imported: {exc}"]
        else:
            outcome = "done" if report.ok else "failed"
            lines = [*report.summary_lines(), *report.errors]
            if not report.ok:
                lines.append("the other rows were imported; fix these and drop the file again")
        target = self.directory / outcome / f"{stamp}-{taken.name}"
        report_path = target.with_name(target.name + ".report.txt")
        report_path.write_text("\n".join([f"{taken.name}: {outcome}", *lines]) + "\n")
        taken.rename(target)
        log.log(logging.INFO if outcome == "done" else logging.WARNING,
                "drop folder: %s %s (%s)", taken.name, outcome, report_path)  # fmt: skip
        return Processed(taken.name, outcome, target, report_path)


class DropFolderPart(ThreadPart):
    """The watcher as a `driveline serve` part: a thread scanning every `interval_s`."""

    def __init__(self, folder: DropFolder, interval_s: float = 10.0) -> None:
        super().__init__("drop-folder", every(interval_s, folder.scan_once, "drop folder scan"))
        self.folder = folder
