"""Recordings served with HTTP range requests (the audio player seeks with them), store-scoped.

Route tests run on SQLite and PostgreSQL; `parse_range` is tested on its own first.
"""

from __future__ import annotations

import uuid
import wave
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from events.bus import EventBus
from ivr.config import Settings
from recordings.serve import RangeNotSatisfiable, parse_range
from records.db import transaction
from records.models import Call, Recording, User
from tests.api.conftest import NOW, World, build_world
from tests.web.conftest import PASSWORD_HASH, log_in


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-50", (950, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=990-5000", (990, 999)),
        ("BYTES = 1 - 2", (1, 2)),
        ("bytes=5-2", None),  # invalid: ignored, whole file
        ("bytes=0-1,5-6", None),  # several ranges: we serve the whole file
        ("items=1-2", None),
        ("bytes=-", None),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 1000)


def _wav(path: Path, seconds: float = 1.0) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(range(256)) * int(8000 * 2 * seconds / 256))
    return path.read_bytes()


@pytest.fixture
def setup(
    db_url: str, engine: Engine, sessions: sessionmaker[Session], redis_url: str, tmp_path: Path
) -> Iterator[tuple[TestClient, World, dict[str, int], bytes]]:
    rec_dir = tmp_path / "recordings"
    audio = _wav(rec_dir / "2026/11/25/a-caller.wav")
    (tmp_path / "outside.wav").write_bytes(audio)
    ids: dict[str, int] = {}
    with sessions() as session:
        world = build_world(session)
        session.commit()
        ann = session.get(User, world.users["ann"])
        assert ann is not None
        ann.password_hash = PASSWORD_HASH
        session.commit()
    with transaction(sessions) as session:
        for letter, path in (("A", "2026/11/25/a-caller.wav"), ("B", "2026/11/25/a-caller.wav")):
            call = Call(
                call_uuid=f"rec-{letter}-{uuid.uuid4().hex}",
                store_id=world.stores[letter],
                direction="inbound",
                from_number="+15550200001",
                to_number="+15550300100",
                started_at=NOW - timedelta(minutes=5),
                flow_path=[],
            )
            session.add(call)
            session.flush()
            rec = Recording(call_id=call.id, path=path, sha256="0" * 64, duration_s=1.0)
            escape = Recording(
                call_id=call.id, path="../outside.wav", sha256="0" * 64, duration_s=1
            )
            session.add_all([rec, escape])
            session.flush()
            ids[letter] = rec.id
            ids[f"escape-{letter}"] = escape.id
    bus = EventBus(redis_url)
    settings = Settings(database_url=db_url, redis_url=redis_url, recordings_dir=rec_dir)
    with TestClient(create_app(settings, engine=engine, bus=bus)) as client:
        yield client, world, ids, audio
    bus.close()


def _get(client: TestClient, token: str, rec: int, range_: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token}"}
    if range_:
        headers["Range"] = range_
    return client.get(f"/api/v1/recordings/{rec}/audio", headers=headers)


def test_whole_file_and_ranges(setup: tuple[TestClient, World, dict[str, int], bytes]) -> None:
    client, world, ids, audio = setup
    token, rec, size = world.tokens["ann"], ids["A"], len(audio)
    whole = _get(client, token, rec)
    assert whole.status_code == 200 and whole.content == audio
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-type"] == "audio/wav"
    assert int(whole.headers["content-length"]) == size

    part = _get(client, token, rec, "bytes=0-99")
    assert part.status_code == 206 and part.content == audio[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{size}"
    assert part.headers["content-length"] == "100"

    tail = _get(client, token, rec, "bytes=8000-")
    assert tail.status_code == 206 and tail.content == audio[8000:]
    assert tail.headers["content-range"] == f"bytes 8000-{size - 1}/{size}"

    last = _get(client, token, rec, "bytes=-44")
    assert last.status_code == 206 and last.content == audio[-44:]

    bad = _get(client, token, rec, f"bytes={size}-")
    assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{size}"

    ignored = _get(client, token, rec, "bytes=9-3")
    assert ignored.status_code == 200 and ignored.content == audio


def test_recordings_stay_in_store(setup: tuple[TestClient, World, dict[str, int], bytes]) -> None:
    client, world, ids, audio = setup
    for outsider in ("ann", "mary"):
        response = _get(client, world.tokens[outsider], ids["B"], "bytes=0-9")
        assert response.status_code == 404 and audio[:10] not in response.content
    assert _get(client, world.tokens["bob"], ids["B"]).status_code == 200
    assert _get(client, world.tokens["root"], ids["B"]).status_code == 200
    assert client.get(f"/api/v1/recordings/{ids['A']}/audio").status_code == 401
    assert _get(client, "dl_wrong", ids["A"]).status_code == 401


def test_paths_outside_the_recordings_dir_are_refused(
    setup: tuple[TestClient, World, dict[str, int], bytes],
) -> None:
    client, world, ids, _audio = setup
    response = _get(client, world.tokens["ann"], ids["escape-A"])
    assert response.status_code == 404 and response.json()["detail"] == "recording file not found"


def test_a_logged_in_page_plays_with_its_session_cookie(
    setup: tuple[TestClient, World, dict[str, int], bytes],
) -> None:
    client, _world, ids, audio = setup
    log_in(client, "ann")
    response = client.get(f"/api/v1/recordings/{ids['A']}/audio", headers={"Range": "bytes=4-7"})
    assert response.status_code == 206 and response.content == audio[4:8]
    assert client.get(f"/api/v1/recordings/{ids['B']}/audio").status_code == 404
