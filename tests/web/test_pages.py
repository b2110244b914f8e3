"""The web pages over HTTP (no browser): login, CSRF, sessions, store scope, forms.

Run on SQLite and PostgreSQL. The browser tests (test_browser.py) cover what needs JavaScript.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import redis
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from events import outbound
from records.db import transaction
from records.models import Call, StoreNumber, ThreadEntry, User, WebSession
from records.transcripts import SegmentRow, call_entry_key, save_transcript
from tests.api.conftest import NOW, World
from tests.web.conftest import PASSWORD, csrf_of, log_in


def test_login_sets_a_strict_session_cookie(client: TestClient, world: World) -> None:
    page = client.get("/login")
    assert page.status_code == 200 and 'for="password"' in page.text
    response = client.post(
        "/login",
        data={"username": "ann", "password": PASSWORD, "csrf": csrf_of(page.text), "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("dl_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=" in cookie
    assert "Secure" not in cookie  # plain http here; https sets it (test_secure_cookie_on_https)
    home = client.get("/")
    assert home.status_code == 200 and "Ann" in home.text


def test_secure_cookie_on_https(db_url: str, engine, bus, redis_url: str, world: World) -> None:  # type: ignore[no-untyped-def]
    from api.app import create_app
    from ivr.config import Settings

    app = create_app(Settings(database_url=db_url, redis_url=redis_url), engine=engine, bus=bus)
    with TestClient(app, base_url="https://testserver") as client:
        page = client.get("/login")
        response = client.post(
            "/login",
            data={"username": "ann", "password": PASSWORD, "csrf": csrf_of(page.text)},
            follow_redirects=False,
        )
        cookies = response.headers.get_list("set-cookie")
        assert any(c.startswith("dl_session=") and "Secure" in c for c in cookies)


def test_wrong_password_and_unknown_user_fail_alike(client: TestClient, world: World) -> None:
    for username, password in (("ann", "wrong"), ("nobody-here", PASSWORD), ("nobody", PASSWORD)):
        page = client.get("/login")
        response = client.post(
            "/login",
            data={"username": username, "password": password, "csrf": csrf_of(page.text)},
            follow_redirects=False,
        )
        assert response.status_code == 401, username
        assert "Wrong username or password" in response.text
        assert "dl_session" not in response.headers.get("set-cookie", "")
    assert client.get("/", follow_redirects=False).status_code == 303


def test_login_without_csrf_is_refused(client: TestClient, world: World) -> None:
    client.get("/login")  # has the cookie, but the form field is missing
    response = client.post("/login", data={"username": "ann", "password": PASSWORD})
    assert response.status_code == 403
    fresh = TestClient(client.app)  # a forged cross-site post: no cookie at all
    page_token = csrf_of(client.get("/login").text)
    response = fresh.post(
        "/login", data={"username": "ann", "password": PASSWORD, "csrf": page_token}
    )
    assert response.status_code == 403


def test_pages_need_a_login(client: TestClient, world: World) -> None:
    for path in ("/", "/customers", "/calls", "/search", "/audit", "/dashboard", "/flows"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=" + path)
    assert client.get("/login?next=//evil.example").text.count('value="/"') == 1


def test_logout_revokes_the_session(
    client: TestClient, world: World, sessions: sessionmaker[Session]
) -> None:
    csrf = log_in(client, "ann")
    cookie = client.cookies.get("dl_session")
    assert client.post("/logout", data={}).status_code == 403  # logout needs CSRF too
    response = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303
    with sessions() as session:
        row = session.scalar(select(WebSession).where(WebSession.user_id == world.users["ann"]))
        assert row is not None and row.revoked_at is not None
    client.cookies.set("dl_session", cookie or "")  # replaying the old cookie does not work
    assert client.get("/", follow_redirects=False).status_code == 303


def test_note_with_mention_reaches_the_mentioned_users_home(
    client: TestClient, world: World
) -> None:
    csrf = log_in(client, "mary")
    customer = world.customers["A"]
    assert client.post(f"/customers/{customer}/notes", data={"body": "x"}).status_code == 403
    bad = client.post(
        f"/customers/{customer}/notes", data={"body": "ask @bob (other store)", "csrf": csrf}
    )
    assert bad.status_code == 422 and "No such user in this store: @bob." in bad.text
    assert "ask @bob (other store)" in bad.text  # the draft is kept
    response = client.post(
        f"/customers/{customer}/notes",
        data={"body": "Parts approved, @alex please call Jo", "csrf": csrf},
        follow_redirects=False,
    )
    assert response.status_code == 303
    thread = client.get(f"/customers/{customer}")
    assert "Parts approved, @alex please call Jo" in thread.text
    client.cookies.clear()
    log_in(client, "ann")  # ann was not mentioned
    assert "Parts approved" not in client.get("/").text


def test_thread_page_shows_nothing_from_the_query_string(client: TestClient, world: World) -> None:
    """A link cannot put words on the thread page (a phishing line in the error slot, a note
    in the box): a refusal and its draft come back only from the POST that was refused."""
    csrf = log_in(client, "ann")
    url = f"/customers/{world.customers['A']}"
    bait = client.get(
        url, params={"error": "Session expired: call 1-900-555-0100", "draft": "Pwn3d"}
    )
    assert bait.status_code == 200
    assert "1-900-555-0100" not in bait.text and "Pwn3d" not in bait.text
    assert 'role="alert"' not in bait.text
    refused = client.post(f"{url}/notes", data={"body": "ask @nobody-here", "csrf": csrf})
    assert refused.status_code == 422
    assert "No such user in this store: @nobody-here." in refused.text
    assert ">ask @nobody-here</textarea>" in refused.text  # the draft, from the POST itself
    assert "nobody-here" not in client.get(url).text  # and gone on the next visit


def test_home_lists_my_callbacks_overdue_first_and_my_mentions(
    client: TestClient, world: World
) -> None:
    log_in(client, "ann")
    home = client.get("/").text
    assert home.index("missed call") < home.index("later")  # overdue first
    assert "Overdue" in home
    assert '<span class="muted">done</span>' not in home  # done tasks are not listed
    assert "mary&#39;s" not in home and "mary's" not in home  # nor other people's
    assert "@ann call them back" in home
    assert "Joan" not in home and "Bea" not in home  # nothing from store B


def test_advisor_cannot_open_another_stores_objects(
    client: TestClient, world: World, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as session:
        call = Call(
            call_uuid=f"web-{uuid.uuid4().hex}",
            store_id=world.stores["B"],
            customer_id=world.customers["B"],
            direction="inbound",
            from_number="+15550200001",
            to_number="+15550300100",
            started_at=NOW - timedelta(minutes=5),
            disposition="missed",
            flow_path=[],
        )
        session.add(call)
        session.flush()
        call_b = call.id
    for user in ("ann", "mary"):
        client.cookies.clear()
        csrf = log_in(client, user)
        b = world.customers["B"]
        assert client.get(f"/customers/{b}").status_code == 404
        assert client.get(f"/calls/{call_b}").status_code == 404
        assert (
            client.post(f"/customers/{b}/notes", data={"body": "hi", "csrf": csrf}).status_code
            == 404
        )
        done = client.post(f"/callbacks/{world.callbacks['B']}/done", data={"csrf": csrf})
        assert done.status_code == 404
        link = client.post(
            f"/calls/{call_b}/link", data={"customer_id": world.customers["A"], "csrf": csrf}
        )
        assert link.status_code == 404
        calls = client.get(f"/calls?store={world.stores['B']}")
        assert calls.status_code == 404
        assert "Joan" not in client.get("/calls").text
        assert "Joan" not in client.get("/customers?q=jo").text
    client.cookies.clear()
    log_in(client, "bob")  # the same objects open for their own store's advisor
    assert client.get(f"/customers/{world.customers['B']}").status_code == 200
    assert client.get(f"/calls/{call_b}", follow_redirects=False).status_code == 303


def test_manager_pages_are_for_managers(client: TestClient, world: World) -> None:
    csrf = log_in(client, "ann")
    assert client.get("/dashboard").status_code == 403
    assert client.get("/audit").status_code == 403
    response = client.post(
        f"/audit/{world.customers['A']}", data={"csrf": csrf, "week": "2026-11-23"}
    )
    assert response.status_code == 403
    client.cookies.clear()
    log_in(client, "mary")
    for path in ("/dashboard", "/audit", "/calls", "/search?q=brakes", "/flows"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "Store B" not in page.text and "Joan" not in page.text


def test_save_an_audit_on_the_thread(
    client: TestClient, world: World, sessions: sessionmaker[Session]
) -> None:
    csrf = log_in(client, "mary")
    audit = client.get("/audit")
    assert "Ann" in audit.text and f"/audit/{world.customers['A']}" in audit.text
    week = audit.text.split('name="week" value="')[1].split('"')[0]
    response = client.post(
        f"/audit/{world.customers['A']}",
        data={
            "csrf": csrf,
            "week": week,
            "advisor_id": str(world.users["ann"]),
            "notes": "on",
            "handoffs": "on",
            "comment": "Good handoff.",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    with sessions() as session:
        entry = session.scalar(select(ThreadEntry).where(ThreadEntry.kind == "audit"))
        assert entry is not None and entry.customer_id == world.customers["A"]
        assert entry.data["score"] == 40 and entry.data["checklist"]["notes"] is True
        assert entry.author_id == world.users["mary"]
    thread = client.get(f"/customers/{world.customers['A']}").text
    assert "Weekly audit" in thread and "score 40%" in thread and "Good handoff." in thread
    assert "Audited:" in client.get(response.headers["location"]).text


def test_search_page_highlights_hits_of_my_store_only(
    client: TestClient, world: World, sessions: sessionmaker[Session]
) -> None:
    for letter in ("A", "B"):
        with transaction(sessions) as session:
            call_uuid = f"web-search-{letter}-{uuid.uuid4().hex[:6]}"
            call = Call(
                call_uuid=call_uuid,
                store_id=world.stores[letter],
                customer_id=world.customers[letter],
                direction="inbound",
                from_number="+15550200001",
                to_number="+15550100000",
                started_at=NOW - timedelta(minutes=5),
                flow_path=[],
            )
            session.add(call)
            session.flush()
            session.add(
                ThreadEntry(
                    store_id=call.store_id,
                    customer_id=call.customer_id,
                    kind="call",
                    at=call.started_at,
                    body="Call",
                    call_id=call.id,
                    dedupe_key=call_entry_key(call_uuid),
                )
            )
            session.flush()
            save_transcript(
                session,
                call_uuid=call_uuid,
                segments=[
                    SegmentRow("Caller", 12.5, 15.0, f"my brakes squeal store {letter}", 0.9)
                ],
                text="",
                model="test",
            )
            if letter == "A":
                call_a = call.id
    log_in(client, "mary")
    page = client.get("/search?q=brake").text
    assert "<mark>brakes</mark>" in page and f"/calls/{call_a}?t=12.5" in page
    assert "store B" not in page and "Joan" not in page
    seek = client.get(f"/calls/{call_a}?t=12.5", follow_redirects=False)
    assert seek.headers["location"] == f"/customers/{world.customers['A']}?t=12.5#call-{call_a}"
    thread = client.get(seek.headers["location"]).text
    assert 'data-start="12.5"' in thread and "my brakes squeal store A" in thread


def test_call_button_places_a_masked_call_with_the_page_session(
    client: TestClient, world: World, sessions: sessionmaker[Session], redis_url: str
) -> None:
    csrf = log_in(client, "ann")
    a, b = world.customers["A"], world.customers["B"]
    assert client.post(f"/customers/{a}/call").status_code == 403  # no CSRF token
    assert client.post(f"/customers/{b}/call", headers={"X-CSRF-Token": csrf}).status_code == 404
    refused = client.post(f"/customers/{a}/call", headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 409 and "no phone number" in refused.json()["detail"]
    with sessions() as session:
        ann = session.get(User, world.users["ann"])
        assert ann is not None
        ann.phone = "+15550100201"
        session.add(StoreNumber(store_id=world.stores["A"], e164="+15550300100"))
        session.commit()
    placed = client.post(f"/customers/{a}/call", headers={"X-CSRF-Token": csrf})
    assert placed.status_code == 202 and placed.json()["state"] == "queued"
    with sessions() as session:
        call = session.get(Call, placed.json()["id"])
        assert call is not None and call.direction == "outbound" and call.customer_id == a
    queue = redis.Redis.from_url(redis_url)
    queue.delete(outbound.QUEUE)  # no SIP worker of a later test may place this call
    queue.close()


def test_unknown_callers_are_listed_and_linked(
    client: TestClient, world: World, sessions: sessionmaker[Session]
) -> None:
    ids = {}
    for letter in ("A", "B"):
        with transaction(sessions) as session:
            call = Call(
                call_uuid=f"web-unknown-{letter}-{uuid.uuid4().hex[:6]}",
                store_id=world.stores[letter],
                direction="inbound",
                from_number=f"+1555029999{'1' if letter == 'A' else '2'}",
                to_number="+15550300100",
                started_at=NOW - timedelta(minutes=3),
                disposition="voicemail",
                flow_path=[],
            )
            session.add(call)
            session.flush()
            ids[letter] = call.id
    csrf = log_in(client, "ann")
    home = client.get("/").text
    assert "+15550299991" in home and "+15550299992" not in home
    assert f"/customers?link_call={ids['A']}" in home
    picker = client.get(f"/customers?link_call={ids['A']}&q=jo").text
    assert "Linking the call from +15550299991" in picker and "Link call" in picker
    linked = client.post(
        f"/calls/{ids['A']}/link",
        data={"customer_id": world.customers["A"], "add_phone": "true", "csrf": csrf},
        follow_redirects=False,
    )
    assert linked.status_code == 303
    assert "+15550299991" not in client.get("/").text  # no longer unknown
    with sessions() as session:
        call = session.get(Call, ids["A"])
        assert call is not None and call.customer_id == world.customers["A"]


def test_errors_are_pages_for_browsers_and_json_for_the_api(
    client: TestClient, world: World
) -> None:
    log_in(client, "ann")
    page = client.get(f"/customers/{world.customers['B']}", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "<h1>Not found</h1>" in page.text
    assert "Joan" not in page.text and "Log out" in page.text
    api = client.get(f"/api/v1/customers/{world.customers['B']}", headers={"Accept": "text/html"})
    assert api.status_code == 401 and api.json()["detail"]  # the API takes no cookie


def test_event_stream_refuses_unknown_cookies(client: TestClient, world: World) -> None:
    client.cookies.set("dl_session", "not-a-session")
    response = client.get("/api/v1/events")
    assert response.status_code == 401 and response.json()["detail"] == "unknown or revoked token"


def test_a_call_the_worker_could_not_record_says_so_on_the_thread(
    client: TestClient, world: World, sessions: sessionmaker[Session]
) -> None:
    """The call writer keeps `call.ended`'s `unrecorded` legs and `cut_short` recordings in the
    entry's data (records/call_rows.py): the thread names them instead of a missing player."""
    with transaction(sessions) as session:
        session.add(
            ThreadEntry(
                store_id=world.stores["A"],
                customer_id=world.customers["A"],
                kind="call",
                at=NOW - timedelta(minutes=3),
                body="Call from +15550200001",
                data={
                    "recordings": [{"leg_role": "advisor", "cut_short": True}],
                    "unrecorded": [{"leg_role": "caller", "kind": "leg", "reason": "disk_full"}],
                },
                dedupe_key=f"call:web-unrecorded-{uuid.uuid4().hex[:6]}",
            )
        )
    log_in(client, "ann")
    page = client.get(f"/customers/{world.customers['A']}").text
    assert "caller leg not recorded (disk full)" in page
    assert "advisor recording cut short (disk full)" in page
