"""Transcript search: stemmed full-text match on both databases, scoped to the user's stores,
kept in sync when a transcript is replaced or its call deleted."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from records.db import transaction
from records.models import Call, ThreadEntry
from records.transcripts import SegmentRow, call_entry_key, save_transcript
from tests.api.conftest import NOW, Api


def _call_with_transcript(
    sessions: sessionmaker[Session], api: Api, letter: str, lines: list[tuple[str, float, str]]
) -> tuple[int, int, str]:
    """A call of store `letter`'s customer with its thread entry and transcript."""
    call_uuid = f"search-{letter}-{uuid.uuid4().hex[:8]}"
    with transaction(sessions) as session:
        call = Call(
            call_uuid=call_uuid,
            store_id=api.world.stores[letter],
            customer_id=api.world.customers[letter],
            direction="inbound",
            from_number="+15550200001",
            to_number="+15550100000",
            started_at=NOW - timedelta(minutes=5),
            flow_path=[],
        )
        session.add(call)
        session.flush()
        entry = ThreadEntry(
            store_id=call.store_id,
            customer_id=call.customer_id,
            kind="call",
            at=call.started_at,
            body="Call transferred",
            data={"call_uuid": call_uuid},
            call_id=call.id,
            dedupe_key=call_entry_key(call_uuid),
        )
        session.add(entry)
        session.flush()
        saved = save_transcript(
            session,
            call_uuid=call_uuid,
            segments=[SegmentRow(who, t, t + 2.0, text, 0.9) for who, t, text in lines],
            text="\n".join(text for _, _, text in lines),
            model="test",
        )
        assert saved is not None and saved.entry_id == entry.id
        return call.id, entry.id, call_uuid


LINES_A = [
    ("IVR", 0.0, "Thanks for calling service."),
    ("Caller", 4.5, "Hi, my brakes are squealing on the Civic."),
    ("Advisor", 9.25, "We can look at the brake pads today."),
]
LINES_B = [("Caller", 3.0, "The brakes on my truck grind.")]


def test_search_finds_stemmed_words_with_snippet_and_offset(
    api: Api, sessions: sessionmaker[Session]
) -> None:
    call_id, entry_id, call_uuid = _call_with_transcript(sessions, api, "A", LINES_A)
    res = api.as_("ann").get("/search/transcripts", params={"q": "brake"})
    assert res.status_code == 200, res.text
    hits = res.json()["items"]
    assert [(h["speaker"], h["start_s"]) for h in hits] == [("Caller", 4.5), ("Advisor", 9.25)]
    first = hits[0]
    assert first["call_id"] == call_id and first["call_uuid"] == call_uuid
    assert first["entry_id"] == entry_id
    assert first["customer_id"] == api.world.customers["A"]
    assert first["customer_name"] == "Jo Smith"
    assert "«brakes»" in first["snippet"] and "squealing" in first["snippet"]
    # every word must occur in the line
    both = api.as_("ann").get("/search/transcripts", params={"q": "brake pads"}).json()["items"]
    assert [h["speaker"] for h in both] == ["Advisor"]
    assert (
        api.as_("ann").get("/search/transcripts", params={"q": "transmission"}).json()["items"]
        == []
    )


def test_search_is_scoped_to_the_users_stores(api: Api, sessions: sessionmaker[Session]) -> None:
    call_a, _, _ = _call_with_transcript(sessions, api, "A", LINES_A)
    call_b, _, _ = _call_with_transcript(sessions, api, "B", LINES_B)

    def calls(user: str) -> set[int]:
        res = api.as_(user).get("/search/transcripts", params={"q": "brakes"})
        assert res.status_code == 200, res.text
        return {h["call_id"] for h in res.json()["items"]}

    assert calls("ann") == {call_a}
    assert calls("mary") == {call_a}
    assert calls("bob") == {call_b}
    assert calls("root") == {call_a, call_b}  # admin: every store
    assert calls("nobody") == set()


def test_search_pages(api: Api, sessions: sessionmaker[Session]) -> None:
    _call_with_transcript(sessions, api, "A", LINES_A)
    first = api.as_("ann").get("/search/transcripts", params={"q": "brake", "limit": 1}).json()
    assert len(first["items"]) == 1 and first["next_offset"] == 1
    second = (
        api.as_("ann")
        .get("/search/transcripts", params={"q": "brake", "limit": 1, "offset": 1})
        .json()
    )
    assert len(second["items"]) == 1 and second["next_offset"] is None
    assert second["items"][0]["segment_id"] != first["items"][0]["segment_id"]


def test_user_text_is_never_query_syntax(api: Api, sessions: sessionmaker[Session]) -> None:
    _call_with_transcript(sessions, api, "A", LINES_A)
    expected = {
        'brakes"': 2,  # "brakes" stems like "brake": both lines
        "brakes*": 2,
        "-brakes": 2,  # not a NOT
        "brakes & | !": 2,
        "(brake": 2,
        "brakes OR transmission": 0,  # not an OR: every word must be there
        "NEAR(brakes pads": 0,
    }
    for q, count in expected.items():
        res = api.as_("ann").get("/search/transcripts", params={"q": q})
        assert res.status_code == 200, (q, res.text)
        assert len(res.json()["items"]) == count, q


def test_bad_queries_are_4xx_with_a_reason(api: Api) -> None:
    for params in ({}, {"q": ""}, {"q": "!!! ??"}, {"q": "x" * 201}, {"q": "a\x00b"}):
        res = api.as_("ann").get("/search/transcripts", params=params)
        assert res.status_code == 422, (params, res.text)
        assert res.json()["detail"], params
    assert api.client.get("/api/v1/search/transcripts", params={"q": "x"}).status_code == 401


def test_index_follows_replaced_transcripts_and_deleted_calls(
    api: Api, sessions: sessionmaker[Session]
) -> None:
    call_id, _, call_uuid = _call_with_transcript(sessions, api, "A", LINES_A)
    with transaction(sessions) as session:
        again = save_transcript(
            session,
            call_uuid=call_uuid,
            segments=[SegmentRow("Caller", 1.0, 2.0, "Is the oil change done?", 0.8)],
            text="Caller: Is the oil change done?",
            model="test",
        )
        assert again is not None and not again.created

    def found(q: str) -> list[int]:
        res = api.as_("ann").get("/search/transcripts", params={"q": q})
        return [h["call_id"] for h in res.json()["items"]]

    assert found("brakes") == []
    assert found("oil") == [call_id]
    with transaction(sessions) as session:
        session.execute(delete(Call).where(Call.id == call_id))
    assert found("oil") == []


def test_a_voicemail_left_on_the_call_gets_the_transcript_too(
    api: Api, sessions: sessionmaker[Session]
) -> None:
    call_id, entry_id, call_uuid = _call_with_transcript(sessions, api, "A", LINES_A)
    with transaction(sessions) as session:
        voicemail = ThreadEntry(
            store_id=api.world.stores["A"],
            customer_id=api.world.customers["A"],
            kind="voicemail",
            body="Voicemail",
            data={"caller": "+15550200001"},
            call_id=call_id,
        )
        session.add(voicemail)
        session.flush()
        saved = save_transcript(
            session,
            call_uuid=call_uuid,
            segments=[SegmentRow("Caller", 1.0, 3.0, "Please call me back.", 0.9)],
            text="Caller: Please call me back.",
            model="test",
        )
        assert saved is not None and saved.entry_id == entry_id  # the call's own entry first
        voicemail_id = voicemail.id
    with sessions() as session:
        for linked in (entry_id, voicemail_id):
            data = session.get(ThreadEntry, linked).data  # type: ignore[union-attr]
            assert data["transcript_id"] == saved.transcript_id
            assert data["transcript_excerpt"] == "Please call me back."
