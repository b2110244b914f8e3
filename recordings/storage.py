"""Recording files on disk: where a row's file is, and removing it when its row goes.

Paths in the database are relative to `Settings.recordings_dir`; `resolve` refuses any that
would leave it, so a bad row can never serve or delete an arbitrary file. Removal is
idempotent: a file already gone is what we wanted, so it is reported, not raised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Removal = Literal["removed", "missing", "outside"]


def _inside(recordings_dir: Path, relative: str) -> Path | None:
    root = Path(os.path.realpath(recordings_dir))
    path = Path(os.path.realpath(root / relative))
    return path if root in path.parents else None


def resolve(recordings_dir: Path, relative: str) -> Path | None:
    """The file a recording row names, if it lies inside `recordings_dir` and exists."""
    path = _inside(recordings_dir, relative)
    return path if path is not None and path.is_file() else None


@dataclass(frozen=True)
class Removed:
    outcome: Removal
    bytes: int = 0


def remove(recordings_dir: Path, relative: str) -> Removed:
    """Delete a recording's file: `removed` (with its size), `missing` (already gone: fine) or
    `outside` (the row points out of `recordings_dir`: left alone, never deleted)."""
    path = _inside(recordings_dir, relative)
    if path is None:
        return Removed("outside")
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return Removed("missing")
    return Removed("removed", size)
