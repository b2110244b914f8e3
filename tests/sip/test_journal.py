"""The call journal: what a killed worker leaves, and how its next run closes those calls."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

from events.bus import STREAM, AsyncEventBus, Event
from events.calls import CallEnded, parse_call_event
from ivr.domain import Disposition
from sip.journal import CallJournal, JournalEntry, journal_dir, recover
from sip.media import header_complete, recording_path, sha256_file, wav_seconds
from tests.redis_server import RedisServer
from tests.sip.test_media import unclosed_wav

STARTED = datetime(2026, 3, 10, 23, 59, 58, tzinfo=UTC)  # the call crosses midnight


def entry(call_uuid: str = "c0ffee") -> JournalEntry:
    return JournalEntry(
        call_uuid=call_uuid,
        store_id=1,
        did="+15550100100",
        caller="+15550200003",
        caller_raw="+15550200003",
        customer_id=3,
        started_at=STARTED,
        answered_at=STARTED + timedelta(seconds=1),
        consent_played=True,
    )


def test_entries_round_trip_and_junk_is_dropped(tmp_path: Path) -> None:
    journal = CallJournal(journal_dir(tmp_path, "host-5070"))
    assert journal.leftovers() == []  # no folder yet
    journal.write(entry("a"))
    journal.write(entry("b"))
    journal.write(entry("a").model_copy(update={"flow_path": ["main.menu"]}))  # rewritten
    (journal.directory / "junk.json").write_text("{not json")
    (journal.directory / ".half-written.tmp").write_text("{")
    found = journal.leftovers()
    assert [e.call_uuid for e in found] == ["a", "b"]
    assert found[0].flow_path == ["main.menu"]
    assert sorted(p.name for p in journal.directory.iterdir()) == ["a.json", "b.json"]
    journal.remove("a")
    journal.remove("never-there")
    assert [e.call_uuid for e in journal.leftovers()] == ["b"]


def _call_ended_events(url: str, call_uuid: str) -> list[CallEnded]:
    """This call's `call.ended` events on the shared stream (other tests write there too, some
    of them deliberately malformed events, so only this call's are parsed)."""
    client = redis.Redis.from_url(url)
    events = [Event.decode(fields[b"event"]) for _, fields in client.xrange(STREAM)]
    ours = [ev for ev in events if ev.data.get("call_uuid") == call_uuid]
    return [e for e in map(parse_call_event, ours) if isinstance(e, CallEnded)]


async def test_recover_repairs_the_wavs_and_publishes_call_ended(
    tmp_path: Path, redis_url: str
) -> None:
    recordings = tmp_path / "recordings"
    journal = CallJournal(journal_dir(recordings, "host-5070"))
    journal.write(entry())
    caller = recording_path(recordings, STARTED, "c0ffee", "caller")
    voicemail = recording_path(recordings, STARTED + timedelta(seconds=5), "c0ffee", "voicemail")
    other = recording_path(recordings, STARTED, "another-call", "caller")
    for path, seconds in ((caller, 1.5), (voicemail, 0.5), (other, 0.2)):
        path.parent.mkdir(parents=True, exist_ok=True)
        unclosed_wav(path, seconds)
    assert caller.parent != voicemail.parent  # found in the next day's folder too

    bus = AsyncEventBus(redis_url)
    try:
        [ended] = await recover(journal, recordings, bus)
    finally:
        await bus.close()

    assert journal.leftovers() == []
    assert header_complete(caller) and header_complete(voicemail)
    assert not header_complete(other)  # another call's file is not ours to touch
    assert ended.disposition is Disposition.failed
    assert (ended.call_uuid, ended.customer_id, ended.answered_at) == (
        "c0ffee",
        3,
        STARTED + timedelta(seconds=1),
    )
    assert ended.at >= ended.answered_at  # type: ignore[operator]
    by_kind = {r.kind: r for r in ended.recordings}
    assert by_kind["leg"].path == caller.relative_to(recordings).as_posix()
    assert by_kind["leg"].sha256 == sha256_file(caller)
    assert by_kind["leg"].duration_s == wav_seconds(caller) == 1.5
    assert by_kind["leg"].consent_played is True
    assert by_kind["voicemail"].consent_played is False
    assert by_kind["voicemail"].leg_role == "caller"
    assert _call_ended_events(redis_url, "c0ffee") == [ended]


async def test_an_entry_stays_when_call_ended_cannot_be_published(tmp_path: Path) -> None:
    journal = CallJournal(journal_dir(tmp_path, "host-5070"))
    journal.write(entry())
    bus = AsyncEventBus("redis://127.0.0.1:1/0")  # nothing listens there
    try:
        assert await recover(journal, tmp_path, bus, wait_s=0.2) == []
        assert bus.buffered == 1  # held, for when Redis answers
    finally:
        await bus.close(timeout_s=0.2)
    assert [e.call_uuid for e in journal.leftovers()] == ["c0ffee"]  # for the next start


async def test_an_entry_waits_for_redis_and_closes_when_it_answers(
    tmp_path: Path, private_redis: RedisServer
) -> None:
    """Redis away as the worker starts: it starts anyway; the call closes once Redis is back."""
    journal = CallJournal(journal_dir(tmp_path, "host-5070"))
    journal.write(entry("late"))
    private_redis.stop()
    bus = AsyncEventBus(private_redis.url)
    try:
        assert await recover(journal, tmp_path, bus, wait_s=0.2) == []
        assert [e.call_uuid for e in journal.leftovers()] == ["late"]  # held: not on Redis yet
        await asyncio.to_thread(private_redis.start)
        for _ in range(150):
            if not journal.leftovers():
                break
            await asyncio.sleep(0.02)
        assert journal.leftovers() == []
    finally:
        await bus.close()
    assert [e.call_uuid for e in _call_ended_events(private_redis.url, "late")] == ["late"]
