"""Serve a recording with HTTP range requests, so a browser's audio player can seek.

`<audio>` asks for `Range: bytes=N-` when the listener jumps ahead (or a transcript line is
clicked); answering 206 with just those bytes lets it start playing there at once instead of
downloading the whole call first. One range per request (browsers never ask for more); a range
that cannot be satisfied is a 416 carrying the file size, as RFC 9110 asks.

Paths in the database are relative to `Settings.recordings_dir`; `recordings.storage.resolve`
refuses any that would leave it, so a bad row can never serve an arbitrary file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response, StreamingResponse

from records.models import Call, Recording
from records.queries import Scope

CHUNK = 64 * 1024
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
MEDIA_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg"}


class RangeNotSatisfiable(ValueError):
    """The Range header names no byte of the file (416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte a Range header asks for, or None for the whole file.

    A header we do not understand (other units, several ranges, garbage) is ignored and the
    whole file served, as RFC 9110 allows; a well-formed range past the end raises.
    """
    if not header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:  # "bytes=-500": the last 500 bytes
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        return max(0, size - suffix), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else None
    if last is not None and last < first:
        return None  # syntactically invalid: ignore it
    if first >= size:
        raise RangeNotSatisfiable(header)
    last = size - 1 if last is None else last
    return first, min(last, size - 1)


def _read(path: Path, first: int, last: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(first)
        left = last - first + 1
        while left > 0:
            chunk = handle.read(min(CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def range_response(path: Path, range_header: str | None) -> Response:
    """200 with the whole file, 206 with the asked range, or 416 with the size."""
    size = path.stat().st_size
    media_type = MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
    try:
        wanted = parse_range(range_header, size)
    except RangeNotSatisfiable:
        return Response(status_code=416, headers=headers | {"Content-Range": f"bytes */{size}"})
    if wanted is None:
        return StreamingResponse(
            _read(path, 0, size - 1),
            media_type=media_type,
            headers=headers | {"Content-Length": str(size)},
        )
    first, last = wanted
    headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(last - first + 1)
    return StreamingResponse(
        _read(path, first, last), status_code=206, media_type=media_type, headers=headers
    )


def get_recording(session: Session, *, scope: Scope, recording_id: int) -> Recording | None:
    """A recording whose call belongs to one of the caller's stores."""
    return session.scalar(
        select(Recording)
        .join(Call, Call.id == Recording.call_id)
        .where(Recording.id == recording_id, scope.where(Call.store_id))
    )
