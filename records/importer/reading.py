"""Export files → raw rows: a CSV or JSON file read into (row number, fields) pairs.

Kept apart from the row types so the file formats (BOM, JSON shapes, CSV quirks) are one
place, and a file that cannot be read at all fails before any row is applied.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any


class ImportFileError(Exception):
    """The file as a whole cannot be read (not CSV/JSON, no `type` column, bad JSON)."""


def read_rows(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """(row number, fields) pairs from a CSV or JSON file; field names lower-cased."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # Excel writes a BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFileError(f"{path}: {exc}") from None
    is_json = path.suffix.lower() == ".json" or (
        path.suffix.lower() != ".csv" and text.lstrip()[:1] in ("[", "{")
    )
    return _json_rows(text, path) if is_json else _csv_rows(text, path)


def _csv_rows(text: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(text.splitlines(keepends=True))
    if reader.fieldnames is None:
        raise ImportFileError(f"{path}: empty file")
    reader.fieldnames = [(name or "").strip().lower() for name in reader.fieldnames]
    if "type" not in reader.fieldnames:
        raise ImportFileError(f"{path}: the header has no 'type' column")
    rows = []
    try:
        for record in reader:
            rows.append((reader.line_num, record))
    except csv.Error as exc:
        raise ImportFileError(f"{path}: line {reader.line_num}: {exc}") from None
    return rows


def _json_rows(text: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFileError(f"{path}: not valid JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("rows"), list):
        data = data["rows"]
    if not isinstance(data, list):
        raise ImportFileError(f'{path}: expected a list of rows or {{"rows": [...]}}')
    rows: list[tuple[int, dict[str, Any]]] = []
    for n, item in enumerate(data, start=1):
        if isinstance(item, dict):
            rows.append((n, {str(k).strip().lower(): v for k, v in item.items()}))
        else:
            rows.append((n, {"__not_an_object__": item}))
    return rows
