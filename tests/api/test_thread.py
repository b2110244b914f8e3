"""The customer thread, notes with @mentions, and /me/mentions."""

from __future__ import annotations

import json
import time

import redis
from sqlalchemy.orm import Session, sessionmaker

from events.bus import database_of, store_channel
from ivr.mentions import parse_mentions
from records.models import Store, User
from tests.api.conftest import Api


def test_parse_mentions() -> None:
    text = "@ann and @Mary.Jones, not bob@example.com; thanks @ann. (@x_1-2)"
    assert parse_mentions(text) == ["ann", "Mary.Jones", "x_1-2"]
    assert parse_mentions("no mentions @ here") == []


def test_thread_is_newest_first_with_author_and_data(api: Api) -> None:
    items = api.as_("ann").get(f"/customers/{api.world.customers['A']}/thread").json()["items"]
    assert [e["kind"] for e in items] == ["call", "note"]
    call, note = items
    assert call["data"] == {"duration_s": 120} and call["author"] is None
    assert note["author"]["username"] == "mary"
    assert [m["username"] for m in note["mentions"]] == ["ann"]


def test_thread_pages_with_a_cursor(api: Api) -> None:
    ann = api.as_("ann")
    customer = api.world.customers["A"]
    for i in range(4):
        assert (
            ann.post(f"/customers/{customer}/notes", json={"body": f"note {i}"}).status_code == 201
        )
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = ann.get(f"/customers/{customer}/thread", params=params).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 6
    full = ann.get(f"/customers/{customer}/thread", params={"limit": 50}).json()["items"]
    assert [e["id"] for e in full] == seen
    assert [e["body"] for e in full[:4]] == ["note 3", "note 2", "note 1", "note 0"]
    bad = ann.get(f"/customers/{customer}/thread", params={"cursor": "garbage!"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "cursor"]


def test_note_with_mentions_notifies(api: Api, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(store_channel(api.world.stores["A"], database_of(client)))
    try:
        customer = api.world.customers["A"]
        response = api.as_("ann").post(
            f"/customers/{customer}/notes",
            json={"body": "  @Alex can you call? cc @mary and @alex  "},
        )
        assert response.status_code == 201, response.text
        entry = response.json()
        assert entry["kind"] == "note" and entry["body"].startswith("@Alex")
        assert sorted(m["username"] for m in entry["mentions"]) == ["alex", "mary"]
        assert entry["author"]["username"] == "ann"

        deadline, event = time.monotonic() + 3, None
        while event is None and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.2)
            if message and json.loads(message["data"])["data"].get("entry_id") == entry["id"]:
                event = json.loads(message["data"])
        assert event is not None and event["type"] == "thread.updated"
    finally:
        pubsub.close()
        client.close()

    mentions = api.as_("alex").get("/me/mentions").json()["items"]
    assert [m["entry"]["id"] for m in mentions] == [entry["id"]]
    seen = api.as_("alex").post(f"/me/mentions/{mentions[0]['id']}/seen").json()
    assert seen["seen_at"] is not None
    assert api.as_("alex").get("/me/mentions", params={"unseen": True}).json()["items"] == []
    # ann's own mention (from the fixture) is hers alone.
    assert api.as_("mary").post(f"/me/mentions/{api.world.mentions['A']}/seen").status_code == 404


def test_unknown_or_other_store_mention_is_422_naming_it(api: Api) -> None:
    customer = api.world.customers["A"]
    for body, who in (("ask @ghost", "@ghost"), ("ask @bob", "@bob"), ("ask @nobody", "@nobody")):
        response = api.as_("ann").post(f"/customers/{customer}/notes", json={"body": body})
        assert response.status_code == 422, body
        detail = response.json()["detail"][0]
        assert detail["loc"] == ["body", "body"] and who in detail["msg"]
    thread = api.as_("ann").get(f"/customers/{customer}/thread").json()["items"]
    assert len(thread) == 2  # nothing was written


def test_mentions_vanish_when_the_store_is_no_longer_yours(
    api: Api, sessions: sessionmaker[Session]
) -> None:
    """bob moves from store B to store A: his mentions on B's threads are no longer listed."""
    assert len(api.as_("bob").get("/me/mentions").json()["items"]) == 1
    with sessions() as session, session.begin():
        bob = session.get_one(User, api.world.users["bob"])
        bob.stores = [session.get_one(Store, api.world.stores["A"])]
    assert api.as_("bob").get("/me/mentions").json()["items"] == []
