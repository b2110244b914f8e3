"""Callback tasks: advisors work their own list, managers the store's, overdue first."""

from __future__ import annotations

from datetime import timedelta

from tests.api.conftest import NOW, Api


def _reasons(page: dict) -> list[str]:  # type: ignore[type-arg]
    return [t["reason"] for t in page["items"]]


def test_advisor_sees_own_open_tasks_overdue_first(api: Api) -> None:
    page = api.as_("ann").get("/callbacks").json()
    assert _reasons(page) == ["missed call", "later"]
    assert [t["overdue"] for t in page["items"]] == [True, False]
    assert _reasons(api.as_("ann").get("/callbacks", params={"state": "done"}).json()) == ["done"]
    assert _reasons(api.as_("ann").get("/callbacks", params={"state": "all"}).json()) == [
        "missed call",
        "done",
        "later",
    ]
    assert api.as_("ann").get("/callbacks", params={"mine": False}).status_code == 403


def test_manager_sees_the_whole_store_or_just_theirs(api: Api) -> None:
    assert _reasons(api.as_("mary").get("/callbacks").json()) == ["missed call", "mary's", "later"]
    assert _reasons(api.as_("mary").get("/callbacks", params={"mine": True}).json()) == ["mary's"]
    assert api.as_("mary").get("/callbacks", params={"state": "bogus"}).status_code == 422


def test_create_and_complete(api: Api) -> None:
    ann = api.as_("ann")
    due = (NOW + timedelta(minutes=30)).isoformat()
    created = ann.post(
        "/callbacks",
        json={
            "phone": "(555) 020-0123",
            "customer_id": api.world.customers["A"],
            "reason": "quote for brakes",
            "due_at": due,
        },
    )
    assert created.status_code == 201, created.text
    task = created.json()
    assert task["phone"] == "+15550200123" and task["owner"]["username"] == "ann"
    assert task["store_id"] == api.world.stores["A"] and task["overdue"] is False

    # ann's only store is implied; a manager may hand a task to an advisor of the store.
    assert ann.post("/callbacks", json={"phone": "5550200124"}).status_code == 201
    handed = api.as_("mary").post(
        "/callbacks", json={"phone": "5550200125", "owner_id": api.world.users["alex"]}
    )
    assert handed.json()["owner"]["username"] == "alex"
    wrong_owner = api.as_("mary").post(
        "/callbacks", json={"phone": "5550200125", "owner_id": api.world.users["bob"]}
    )
    assert wrong_owner.status_code == 422
    assert wrong_owner.json()["detail"][0]["loc"] == ["body", "owner_id"]

    done = ann.post(f"/callbacks/{task['id']}/done")
    assert done.status_code == 200 and done.json()["done_by_id"] == api.world.users["ann"]
    again = ann.post(f"/callbacks/{task['id']}/done").json()
    assert again["done_at"] == done.json()["done_at"]  # idempotent
    assert task["id"] not in [t["id"] for t in ann.get("/callbacks").json()["items"]]


def test_advisors_cannot_touch_each_others_tasks(api: Api) -> None:
    anns = api.world.callbacks["A"]
    assert api.as_("alex").get(f"/callbacks/{anns}").status_code == 404
    assert api.as_("alex").post(f"/callbacks/{anns}/done").status_code == 404
    assert api.as_("mary").post(f"/callbacks/{anns}/done").status_code == 200
