"""`GET /api/v1/recordings/{id}/audio`: a call recording, with range requests for seeking."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from starlette.responses import Response

from api.deps import DbId, SessionDep, SettingsDep, not_found
from api.web.deps import ReaderScope
from recordings.serve import get_recording, range_response
from recordings.storage import resolve

router = APIRouter(tags=["recordings"])


@router.get(
    "/recordings/{recording_id}/audio",
    response_class=Response,
    responses={
        200: {"content": {"audio/wav": {}}, "description": "The whole file."},
        206: {"content": {"audio/wav": {}}, "description": "The bytes the Range asked for."},
        404: {"description": "No such recording in your stores, or its file is gone."},
        416: {"description": "The Range starts past the end; Content-Range gives the size."},
    },
)
def recording_audio(
    recording_id: DbId,
    session: SessionDep,
    scope: ReaderScope,
    settings: SettingsDep,
    range: Annotated[str | None, Header(max_length=200)] = None,  # noqa: A002 - the header
) -> Response:
    """The recording's audio (bearer token, or the web page's session cookie)."""
    recording = get_recording(session, scope=scope, recording_id=recording_id)
    if recording is None:
        raise not_found("recording")
    path = resolve(settings.recordings_dir, recording.path)
    if path is None:
        raise not_found("recording file")
    return range_response(path, range)
