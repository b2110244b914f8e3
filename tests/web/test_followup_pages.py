"""The Follow-ups page over HTTP (no browser), on SQLite and PostgreSQL: the advisor's one list
(callbacks and follow-ups, overdue first), outcome buttons with CSRF landing on the thread, the
manager's overdue list, and store scope. test_followups_browser.py clicks through it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from records import followups
from records.models import FollowUp, RepairOrder, ThreadEntry
from tests.api.conftest import NOW, World
from tests.web.conftest import log_in


def _seed(sessions: sessionmaker[Session], world: World) -> dict[str, int]:
    """A's RO 1001 (ann's): a brake item declined 40 days ago (overdue since 10 days) and a
    promise due in 2 hours; B's RO: an overdue declined item of bob's."""
    ids = {}
    with sessions.begin() as session:
        ro_a = session.get(RepairOrder, world.ros["A"])
        ro_b = session.get(RepairOrder, world.ros["B"])
        assert ro_a is not None and ro_b is not None
        _, made = followups.add_line_item(
            session, ro=ro_a, description="Front brake pads", status="declined",
            decided_at=NOW - timedelta(days=40), now=NOW,
        )  # fmt: skip
        ids["brakes"] = made.created[0].id
        ids["promise"] = followups.create_promise(
            session, ro=ro_a, text="call with the estimate", created_by_id=world.users["ann"],
            due_at=NOW + timedelta(hours=2),
        ).id  # fmt: skip
        _, made = followups.add_line_item(
            session, ro=ro_b, description="Wiper blades", status="declined",
            decided_at=NOW - timedelta(days=40), now=NOW,
        )  # fmt: skip
        ids["b"] = made.created[0].id
    return ids


def _order(html: str) -> list[str]:
    return re.findall(r'id="((?:callback|follow-up)-\d+)"', html)


def test_advisor_works_the_one_list(
    client: TestClient, world: World, sessions: sessionmaker[Session]
) -> None:
    ids = _seed(sessions, world)
    csrf = log_in(client, "ann")
    page = client.get("/follow-ups")
    assert page.status_code == 200
    mine = page.text.split('id="my-work"')[1]
    # The world's callbacks of ann: overdue one (1 h ago) and a later one (in 2 h).
    overdue_cb, later_cb = world.callbacks["A"], _later_callback(page.text, world)
    assert _order(mine) == [
        f"follow-up-{ids['brakes']}",  # due 10 days ago
        f"callback-{overdue_cb}",  # due 1 hour ago
        f"callback-{later_cb}",  # due in 2 hours
        f"follow-up-{ids['promise']}",  # due in 2 hours too: callbacks first on a tie
    ]
    assert "Front brake pads" in mine and "RO 1001" in mine and "Overdue" in mine
    assert 'id="team-overdue"' not in page.text  # advisors: their own list only
    assert f"follow-up-{ids['b']}" not in page.text  # another store's

    refused = client.post(
        f"/follow-ups/{ids['brakes']}/outcome", data={"outcome": "booked"}, follow_redirects=False
    )
    assert refused.status_code == 403  # no CSRF token
    done = client.post(
        f"/follow-ups/{ids['brakes']}/outcome",
        data={"outcome": "booked", "csrf": csrf},
        follow_redirects=False,
    )
    assert done.status_code == 303
    location = done.headers["location"]
    assert location.startswith(f"/customers/{world.customers['A']}#entry-")
    entry_id = int(location.rsplit("-", 1)[1])
    with sessions() as session:
        entry = session.get(ThreadEntry, entry_id)
        assert entry is not None and entry.kind == "follow_up"
        assert entry.body == "Declined service (Front brake pads): booked"
    thread = client.get(location.split("#")[0])
    assert "Declined service (Front brake pads): booked" in thread.text
    assert f"follow-up-{ids['brakes']}" not in client.get("/follow-ups").text  # closed

    other = client.post(
        f"/follow-ups/{ids['b']}/outcome",
        data={"outcome": "booked", "csrf": csrf},
        follow_redirects=False,
    )
    assert other.status_code == 404


def _later_callback(html: str, world: World) -> int:
    found = [int(n) for n in re.findall(r'id="callback-(\d+)"', html)]
    return next(n for n in found if n != world.callbacks["A"])


def test_manager_sees_the_stores_overdue(
    client: TestClient, world: World, sessions: sessionmaker[Session]
) -> None:
    ids = _seed(sessions, world)
    log_in(client, "mary")
    page = client.get("/follow-ups")
    team = page.text.split('id="team-overdue"')[1]
    assert _order(team) == [f"follow-up-{ids['brakes']}", f"callback-{world.callbacks['A']}"]
    assert "Ann" in team  # whose it is
    assert f"follow-up-{ids['promise']}" not in team  # not overdue yet
    assert f"follow-up-{ids['b']}" not in page.text  # store B's


def test_record_a_promise_from_the_page(
    client: TestClient, world: World, sessions: sessionmaker[Session]
) -> None:
    """Store A's zone is America/New_York (the default): 15:00 local on 1 Dec is 20:00 UTC."""
    csrf = log_in(client, "ann")

    def post(**form: str) -> Any:
        return client.post(
            "/follow-ups/promise", data={"csrf": csrf, **form}, follow_redirects=False
        )

    timed = post(ro_number="1001", text="call with the estimate", due="2026-12-01T15:00")
    assert timed.status_code == 303
    part = post(ro_number="1001", text="call when the part is in", when="part")
    assert part.status_code == 303
    for form, code, message in (
        ({"ro_number": "424242", "text": "x", "due": "2026-12-01T15:00"}, 404, "No such repair"),
        ({"ro_number": "9B", "text": "x", "when": "part"}, 404, "No such repair order"),  # B's
        ({"ro_number": "1001", "text": "x", "due": "soon"}, 422, "Give the date and time"),
        ({"ro_number": "1001", "text": "  ", "when": "part"}, 422, "Say what you promised"),
    ):
        refused = post(**form)
        assert refused.status_code == code and message in refused.text, form
        assert f'value="{form["ro_number"]}"' in refused.text  # the form keeps what was typed
    with sessions() as session:
        rows = session.scalars(select(FollowUp).order_by(FollowUp.id)).all()
        assert [(f.text, f.due_at, f.trigger, f.owner_id) for f in rows] == [
            ("call with the estimate", datetime(2026, 12, 1, 20, 0, tzinfo=UTC), None,
             world.users["ann"]),
            ("call when the part is in", None, "part_arrived", world.users["ann"]),
        ]  # fmt: skip
    page = client.get("/follow-ups").text
    assert "waiting for part arrived" in page and "call with the estimate" in page


def test_outcome_twice_says_why(
    client: TestClient, world: World, sessions: sessionmaker[Session]
) -> None:
    ids = _seed(sessions, world)
    csrf = log_in(client, "ann")
    url = f"/follow-ups/{ids['brakes']}/outcome"
    first = client.post(url, data={"outcome": "done", "csrf": csrf}, follow_redirects=False)
    assert first.status_code == 303
    again = client.post(
        url, data={"outcome": "done", "csrf": csrf}, headers={"accept": "text/html"}
    )
    assert again.status_code == 409 and "was closed (done)" in again.text


def test_a_promise_from_the_page_keeps_the_apis_owner_rule(
    client: TestClient, world: World, sessions: sessionmaker[Session]
) -> None:
    """The page records promises through the API's use case: the admin, who is no user of
    store A, cannot own a promise on its RO there either, and nothing is written."""
    csrf = log_in(client, "root")
    form = {"csrf": csrf, "text": "call when it is in", "when": "part"}
    refused = client.post("/follow-ups/promise", data={**form, "ro_number": "9A"})
    assert refused.status_code == 422
    assert "The owner must be an active user of the store." in refused.text
    several = client.post("/follow-ups/promise", data={**form, "ro_number": "1001"})
    assert several.status_code == 422 and "That RO exists in several stores." in several.text
    api = client.post(
        "/api/v1/follow-ups",
        json={"repair_order_id": world.ros["A"], "text": "call", "trigger": "part_arrived"},
        headers={"Authorization": f"Bearer {world.tokens['root']}"},
    )
    assert api.status_code == 422 and "active user of the store" in api.text  # the same rule
    with sessions() as session:
        assert session.scalars(select(FollowUp)).all() == []
