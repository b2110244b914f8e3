"""The morning view's pages (TestClient, SQLite and PostgreSQL) on the seeded week of
tests/records/morning_seed.py: every count links to the rows behind it, within scope."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from records.models import Store
from tests.api.conftest import NOW, World
from tests.records.morning_seed import seed_week
from tests.usecases.media import add_call
from tests.web.conftest import log_in
from usecases import retention

WEEK = "from=2026-11-16&to=2026-11-22"


@pytest.fixture
def week(world: World, sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions.begin() as session:
        store = session.get(Store, world.stores["A"])
        other = session.get(Store, world.stores["B"])
        assert store is not None and other is not None
        return seed_week(session, store=store, other=other)


def _href(html: str, label: str) -> str:
    match = re.search(r'<a href="([^"]+)" aria-label="' + re.escape(label) + '"', html)
    assert match, f"no link {label!r}"
    return match.group(1).replace("&amp;", "&")


def test_each_count_links_to_the_rows_behind_it(
    client: TestClient, world: World, week: dict[str, int]
) -> None:
    log_in(client, "mary")
    page = client.get(f"/morning?{WEEK}")
    assert page.status_code == 200
    assert "Mon 16 Nov 2026 to Sun 22 Nov 2026" in page.text
    a = world.stores["A"]
    c3, c7 = sorted([week["c3"], week["c7"]])
    assert _href(page.text, "Missed: 2, Service") == f"/calls?store={a}&ids={c3},{c7}"
    calls = client.get(_href(page.text, "Missed: 2, Service"))
    assert calls.text.count('<tr class="disp-') == 2
    assert "The calls behind a morning-view figure" in calls.text

    overdue = client.get(_href(page.text, "Callbacks overdue: 2, Sales"))
    assert overdue.status_code == 200 and "Sales: Callbacks overdue" in overdue.text
    assert overdue.text.count("<tr>") == 3  # the header and k4, k6
    assert f'href="/calls/{week["c21"]}"' in overdue.text  # k4: its call (no customer)

    booked = client.get(_href(page.text, "Declined service booked: 2, Service"))
    assert booked.text.count(f'href="/customers/{week["cust1"]}"') == 2
    assert "Declined service" in booked.text and "booked" in booked.text
    assert _href(page.text, "Calls in: 12, All departments").startswith("/calls?")


def test_morning_pages_refuse_advisors_bad_ids_and_other_stores_rows(
    client: TestClient, world: World, week: dict[str, int]
) -> None:
    log_in(client, "ann")
    assert client.get("/morning").status_code == 403
    assert client.get(f"/morning/items?of=callback&ids={week['k1']}").status_code == 403
    client.cookies.clear()
    log_in(client, "mary")
    assert client.get("/calls?ids=1,x").status_code == 422
    assert client.get("/morning?from=2026-11-22&to=2026-11-01").status_code == 422
    assert client.get("/morning/items?of=thread&ids=1").status_code == 422
    # k10 belongs to store B: mary's list of it is empty.
    other = client.get(f"/morning/items?of=callback&ids={week['k10']}")
    assert other.status_code == 200 and "Nothing here." in other.text
    default = client.get("/morning")  # yesterday: the seeded week is long past
    assert default.status_code == 200 and 'aria-label="Missed:' not in default.text


def test_the_morning_view_shows_the_last_retention_run(
    client: TestClient, world: World, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    log_in(client, "mary")
    assert "this store keeps recordings forever" in client.get("/morning").text
    with sessions() as session:
        store = session.get(Store, world.stores["A"])
        assert store is not None
        store.retention_days = 30
        add_call(session, tmp_path, store_id=store.id, started_at=NOW - timedelta(days=40))
        session.commit()
        retention.apply_retention(session, recordings_dir=tmp_path, now=NOW)
    page = client.get("/morning").text
    assert "by retention job: deleted 1 recording and 1 transcript of 1 call older than 30" in page
