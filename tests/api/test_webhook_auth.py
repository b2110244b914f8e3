"""The DMS webhooks take an integration's HMAC signature and nothing else (api/webhook_auth.py),
on both databases: user tokens are 403, a bad or stale signature 401, a replay 409, a time in
the future 422; admins make integrations through the API and the CLI, the secret shown once."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from api.webhook_auth import (
    DELIVERY_HEADER,
    SEEN_KEY,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WINDOW_S,
    signature,
    signed_headers,
)
from driveline.cli import main
from ivr.config import get_settings
from records.models import Integration, StatusEventRow, ThreadEntry
from tests.api.conftest import NOW, SHARED_RO, Api

STATUS = f"/api/v1/repair-orders/{SHARED_RO}/status"
EVENTS = f"/api/v1/repair-orders/{SHARED_RO}/events"
README = Path(__file__).resolve().parents[2] / "README.md"


def _body(status: str = "Tech Working") -> bytes:
    return json.dumps({"status": status, "at": NOW.isoformat()}).encode()


def _post(api: Api, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return api.client.post(path, content=body, headers=headers)


def _signed(api: Api, body: bytes, letter: str = "A", **kw: Any) -> dict[str, str]:
    key_id, secret = api.world.integrations[letter]
    return signed_headers(key_id, secret, body, **kw)


def _status_events(sessions: sessionmaker[Session], ro_id: int) -> int:
    with sessions() as session:
        return session.query(StatusEventRow).filter_by(repair_order_id=ro_id).count()


@pytest.mark.parametrize("path", [STATUS, EVENTS])
def test_user_tokens_are_refused_whatever_the_role(api: Api, path: str) -> None:
    body = json.dumps({"status": "Tech Working"} if path == STATUS else {"event": "x_y"})
    for user in ("ann", "mary", "root"):
        response = api.as_(user).post(path.removeprefix("/api/v1"), content=body)
        assert response.status_code == 403, (user, response.text)
        assert "integration" in response.json()["detail"]
    assert api.client.post(path, content=body).status_code == 401  # nothing at all
    bogus = api.client.post(path, content=body, headers={"Authorization": "Bearer dl_nope"})
    assert bogus.status_code == 401


def test_a_signed_request_is_taken_once(
    api: Api, sessions: sessionmaker[Session], redis_url: str
) -> None:
    body = _body()
    headers = _signed(api, body)
    first = _post(api, STATUS, body, headers)
    assert first.status_code == 200, first.text
    again = _post(api, STATUS, body, headers)  # the very same request, captured and re-sent
    assert again.status_code == 409 and "replayed" in again.json()["detail"]
    # The same delivery id signed anew (another timestamp) is the same delivery.
    delivery = {DELIVERY_HEADER: "dms-42"}
    later = _body("Ready for Pickup")
    assert _post(api, STATUS, later, _signed(api, later, delivery="dms-42")).status_code == 200
    resent = _signed(api, later, at=time.time() + 2, delivery="dms-42")
    assert _post(api, STATUS, later, resent | delivery).status_code == 409
    assert _status_events(sessions, api.world.ros["A"]) == 4  # two of import + two changes
    with sessions() as session:
        entries = session.query(ThreadEntry).filter_by(kind="status_change").count()
        integration = session.query(Integration).filter_by(store_id=api.world.stores["A"]).one()
    assert entries == 2 and integration.last_used_at is not None
    seen = redis.Redis.from_url(redis_url).keys(SEEN_KEY + f"{integration.key_id}:*")
    assert len(seen) == 2  # the first signature, and delivery dms-42
    ttl = redis.Redis.from_url(redis_url).ttl(seen[0])
    assert 0 < ttl <= 2 * WINDOW_S  # seen ids are forgotten once the window has passed


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"off": -WINDOW_S - 60}, "behind the server's clock"),
        ({"off": WINDOW_S + 60}, "ahead of the server's clock"),
        ({TIMESTAMP_HEADER: "yesterday"}, "Unix time"),
        ({SIGNATURE_HEADER: "sha256=" + "0" * 64}, "does not match"),
        ({"secret": "the secret of somebody else"}, "does not match"),
        ({"tamper": True}, "does not match"),
        ({"X-Driveline-Key": "dk_unknown"}, "unknown or revoked"),
        ({"letter": "B"}, ""),  # B's integration, valid, but RO 1001 of A is not in its store
    ],
)
def test_bad_signatures_are_401_with_the_reason(
    api: Api, sessions: sessionmaker[Session], change: dict[str, Any], reason: str
) -> None:
    body = _body()
    key_id, secret = api.world.integrations[change.get("letter", "A")]
    at = time.time() + change["off"] if "off" in change else None
    headers = signed_headers(key_id, change.get("secret", secret), body, at=at)
    headers |= {k: v for k, v in change.items() if k.startswith("X-")}
    sent = body.replace(b"Tech", b"Tex") if change.get("tamper") else body
    path = STATUS + (f"?store_id={api.world.stores['A']}" if "letter" in change else "")
    response = _post(api, path, sent, headers)
    if "letter" in change:
        assert response.status_code == 404  # B's key sees only store B
    else:
        assert response.status_code == 401, response.text
        assert reason in response.json()["detail"]
    assert _status_events(sessions, api.world.ros["A"]) == 2  # nothing written


def test_a_time_in_the_future_is_422_naming_the_field(api: Api) -> None:
    ahead = time.time() + 3600
    for path, payload, field in (
        (STATUS, {"status": "Tech Working", "at": _iso(ahead)}, "at"),
        (EVENTS, {"event": "part_arrived", "at": _iso(ahead)}, "at"),
        (EVENTS, {"line_items": [{"dms_id": "L1", "status": "declined", "description": "x",
                                  "decided_at": _iso(ahead)}]}, "decided_at"),
    ):  # fmt: skip
        body = json.dumps(payload).encode()
        response = _post(api, path, body, _signed(api, body))
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"][-1] == field
        assert "ahead of the server's clock" in response.json()["detail"][0]["msg"]
    # A DMS clock a minute fast is fine.
    body = json.dumps({"status": "Tech Working", "at": _iso(time.time() + 60)}).encode()
    assert _post(api, STATUS, body, _signed(api, body)).status_code == 200


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat()


def test_admins_make_and_revoke_integrations(api: Api) -> None:
    root = api.as_("root")
    for user in ("ann", "mary"):
        assert api.as_(user).get("/integrations").status_code == 403
        made = api.as_(user).post("/integrations", json={"store_id": 1, "name": "x"})
        assert made.status_code == 403
    made = root.post("/integrations", json={"store_id": api.world.stores["A"], "name": "CDK feed"})
    assert made.status_code == 201, made.text
    new = made.json()
    assert new["key_id"].startswith("dk_") and new["secret"].startswith("dlwh_")
    listed = root.get("/integrations").json()
    assert {i["name"] for i in listed} == {"DMS", "CDK feed"}
    assert all("secret" not in i for i in listed) and new["secret"] not in json.dumps(listed)
    again = root.post("/integrations", json={"store_id": api.world.stores["A"], "name": "CDK feed"})
    assert again.status_code == 409 and again.json()["detail"][0]["loc"] == ["body", "name"]
    missing = root.post("/integrations", json={"store_id": 999_999, "name": "x"})
    assert missing.status_code == 404

    body = _body()
    signed = signed_headers(new["key_id"], new["secret"], body)
    assert _post(api, STATUS, body, signed).status_code == 200
    revoked = root.post(f"/integrations/{new['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    body = _body("Ready for Pickup")
    refused = _post(api, STATUS, body, signed_headers(new["key_id"], new["secret"], body))
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


def test_the_cli_makes_an_integration_that_signs(
    api: Api, db_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIVELINE_DATABASE_URL", db_url)
    monkeypatch.setenv("DRIVELINE_REDIS_URL", redis_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        added = runner.invoke(main, ["integrations", "add", "--store", "S-A", "Reynolds"])
        assert added.exit_code == 0, added.output
        key_id = re.search(r"key id: (\S+)", added.output).group(1)  # type: ignore[union-attr]
        secret = re.search(r"secret: (\S+)", added.output).group(1)  # type: ignore[union-attr]
        twice = runner.invoke(main, ["integrations", "add", "--store", "S-A", "Reynolds"])
        assert twice.exit_code == 1 and "already has" in twice.output
        nowhere = runner.invoke(main, ["integrations", "add", "--store", "NOPE", "x"])
        assert nowhere.exit_code == 2 and "no such store" in nowhere.output
        listed = runner.invoke(main, ["integrations", "list"])
        assert key_id in listed.output and secret not in listed.output

        body = _body()
        assert _post(api, STATUS, body, signed_headers(key_id, secret, body)).status_code == 200
        revoked = runner.invoke(main, ["integrations", "revoke", key_id])
        assert revoked.exit_code == 0, revoked.output
        body = _body("Ready for Pickup")
        assert _post(api, STATUS, body, signed_headers(key_id, secret, body)).status_code == 401
    finally:
        get_settings.cache_clear()


def test_the_readme_example_signs_as_the_server_checks(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Python example a DMS integrator copies from the README, run as written (its
    urlopen sent to the test client), is accepted."""
    text = README.read_text()
    section = text[text.index("### DMS webhooks") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    key_id, secret = api.world.integrations["A"]
    code = re.sub(r"KEY_ID, SECRET = .*", f'KEY_ID, SECRET = "{key_id}", "{secret}"', code)
    code = code.replace("/70123/", f"/{SHARED_RO}/")
    answers: list[httpx.Response] = []

    def urlopen(request: urllib.request.Request) -> Any:
        url = request.full_url.removeprefix("http://127.0.0.1:8000")
        answers.append(api.client.post(url, content=request.data, headers=dict(request.headers)))

        class Reply:
            def read(self) -> bytes:
                return answers[-1].content

        return Reply()

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    monkeypatch.setattr("builtins.print", lambda *a, **k: None)
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - our own README's example
    assert [a.status_code for a in answers] == [200], answers[0].text


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(b"secret", b"1764000000." + b'{"a":1}', hashlib.sha256).hexdigest()
    assert signature("secret", "1764000000", b'{"a":1}') == "sha256=" + expected


def test_the_readme_shell_example_signs_alike() -> None:
    """The README's openssl line computes the same signature as the server."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl ships with the base system"
    text = README.read_text()
    section = text[text.index("### DMS webhooks") :]
    shell = re.search(r"```sh\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    (line,) = [line for line in shell.splitlines() if line.startswith("SIG=")]
    env = {"PATH": os.environ["PATH"], "TS": "1764000000", "BODY": '{"a": 1}', "SECRET": "s3"}
    result = subprocess.run(
        ["bash", "-c", line + '\nprintf %s "$SIG"'], env=env, capture_output=True, text=True
    )
    assert "sha256=" + result.stdout == signature("s3", "1764000000", b'{"a": 1}'), result.stderr
