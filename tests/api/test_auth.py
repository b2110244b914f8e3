"""Bearer tokens, roles and the admin-only routes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.auth import hash_token
from records.models import ApiToken, User
from tests.api.conftest import Api


def test_health_and_docs_need_no_token(api: Api) -> None:
    health = api.client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": "ok", "redis": "ok"}
    assert api.client.get("/openapi.json").json()["info"]["title"] == "Driveline"
    assert api.client.get("/docs").status_code == 200


BAD_HEADERS: list[dict[str, str]] = [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer dl_not-a-real-token"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer " + "x" * 5000},
]


def test_missing_or_unknown_token_is_401(api: Api) -> None:
    for headers in BAD_HEADERS:
        for path in ("/me", "/customers", f"/customers/{api.world.customers['A']}", "/users"):
            response = api.client.get("/api/v1" + path, headers=headers)
            assert response.status_code == 401, (headers, path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
        response = api.client.post("/api/v1/customers/1/notes", headers=headers, json={"body": "x"})
        assert response.status_code == 401


def test_only_the_hash_is_stored(api: Api, sessions: sessionmaker[Session]) -> None:
    token = api.world.tokens["ann"]
    with sessions() as session:
        stored = session.scalars(select(ApiToken.token_sha256)).all()
    assert hash_token(token) in stored
    assert token not in stored and all(len(h) == 64 for h in stored)


def test_revoked_token_and_inactive_user_are_401(api: Api, sessions: sessionmaker[Session]) -> None:
    assert api.as_("ann").get("/me").status_code == 200
    with sessions() as session, session.begin():
        token = session.scalar(
            select(ApiToken).where(ApiToken.token_sha256 == hash_token(api.world.tokens["ann"]))
        )
        assert token is not None
        token.revoked_at = datetime.now(UTC)
        session.get_one(User, api.world.users["bob"]).active = False
    assert api.as_("ann").get("/me").status_code == 401
    assert api.as_("bob").get("/me").status_code == 401


def test_me_shows_role_and_stores(api: Api) -> None:
    me = api.as_("mary").get("/me").json()
    assert me["username"] == "mary" and me["role"] == "manager"
    assert [s["dms_id"] for s in me["stores"]] == ["S-A"]
    assert "password_hash" not in me


ADMIN_ROUTES = [
    ("GET", "/users", None),
    ("GET", "/users/{user}", None),
    ("GET", "/users/{user}/tokens", None),
    ("POST", "/users", {"username": "eve", "name": "Eve", "role": "admin"}),
    ("POST", "/users/{user}/tokens", {"name": "x"}),
    ("POST", "/tokens/{token}/revoke", None),
]


def test_admin_routes_are_403_for_advisors_and_managers(
    api: Api, sessions: sessionmaker[Session]
) -> None:
    with sessions() as session:
        token_id = session.scalars(select(ApiToken.id)).first()
    for method, path, body in ADMIN_ROUTES:
        url = path.format(user=api.world.users["ann"], token=token_id)
        for username in ("ann", "mary", "bea"):
            client = api.as_(username)
            response = client.get(url) if method == "GET" else client.post(url, json=body)
            assert response.status_code == 403, (username, url, response.text)
        client = api.as_("root")
        response = client.get(url) if method == "GET" else client.post(url, json=body)
        assert 200 <= response.status_code < 300, (url, response.text)


def test_admin_creates_a_user_and_a_token_that_works(api: Api) -> None:
    root = api.as_("root")
    store_b = api.world.stores["B"]
    created = root.post(
        "/users",
        json={
            "username": "carl",
            "name": "Carl Advisor",
            "role": "advisor",
            "store_ids": [store_b],
            "phone": "(555) 020-0077",
        },
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["phone"] == "+15550200077" and [s["id"] for s in user["stores"]] == [store_b]

    issued = root.post(f"/users/{user['id']}/tokens", json={"name": "laptop"})
    assert issued.status_code == 201
    token = issued.json()["token"]
    me = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["username"] == "carl"
    # The secret is shown once: listing tokens never includes it.
    listed = root.get(f"/users/{user['id']}/tokens").json()
    assert listed[0]["name"] == "laptop" and "token" not in listed[0]

    revoked = root.post(f"/tokens/{issued.json()['id']}/revoke")
    assert revoked.json()["revoked_at"] is not None
    me = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401


def test_user_create_rejects_duplicates_and_unknown_stores(api: Api) -> None:
    root = api.as_("root")
    dup = root.post("/users", json={"username": "ann", "name": "Other Ann", "role": "advisor"})
    assert dup.status_code == 409
    assert dup.json()["detail"][0]["loc"] == ["body", "username"]
    bad = root.post(
        "/users", json={"username": "zz", "name": "Z", "role": "advisor", "store_ids": [999]}
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "store_ids"]
    role = root.post("/users", json={"username": "zz", "name": "Z", "role": "owner"})
    assert role.status_code == 422 and role.json()["detail"][0]["loc"] == ["body", "role"]


def _expire(sessions: sessionmaker[Session], token: str) -> None:
    with sessions() as session, session.begin():
        row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == hash_token(token)))
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)


def test_an_expired_token_is_401_token_expired(api: Api, sessions: sessionmaker[Session]) -> None:
    token = api.world.tokens["ann"]
    assert api.as_("ann").get("/me").status_code == 200
    _expire(sessions, token)
    for path in ("/me", "/customers", "/events", "/recordings/1/audio"):
        response = api.as_("ann").get(path)
        assert response.status_code == 401, (path, response.text)
        assert response.json() == {"detail": "token expired"}
    events = api.client.get(f"/api/v1/events?token={token}")
    assert (events.status_code, events.json()) == (401, {"detail": "token expired"})
    metrics = api.client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert (metrics.status_code, metrics.json()) == (401, {"detail": "token expired"})
    assert api.as_("mary").get("/me").status_code == 200  # other tokens are not affected


def test_admin_gives_a_token_a_lifetime(api: Api) -> None:
    root = api.as_("root")
    ann = api.world.users["ann"]
    default = root.post(f"/users/{ann}/tokens", json={"name": "default"}).json()
    short = root.post(f"/users/{ann}/tokens", json={"name": "short", "expires_in_days": 1}).json()
    now = datetime.now(UTC)
    left = datetime.fromisoformat(default["expires_at"]) - now
    assert timedelta(days=89, hours=23) < left <= timedelta(days=90)  # api_token_days
    left = datetime.fromisoformat(short["expires_at"]) - now
    assert timedelta(hours=23) < left <= timedelta(days=1)
    for bad in (0, 3651, "soon"):
        refused = root.post(f"/users/{ann}/tokens", json={"name": "x", "expires_in_days": bad})
        assert refused.status_code == 422, refused.text
    listed = root.get(f"/users/{ann}/tokens").json()
    assert all(t["expires_at"] for t in listed)
