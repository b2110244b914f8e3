"""`driveline users/tokens/serve` against a real database; the server part with real HTTP."""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.server import ApiServer
from driveline.cli import main
from driveline.supervisor import Supervisor
from ivr.config import Settings, get_settings
from records.models import ApiToken, Store, User, utcnow


@pytest.fixture
def configured(db_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("DRIVELINE_DATABASE_URL", db_url)
    monkeypatch.setenv("DRIVELINE_REDIS_URL", redis_url)
    get_settings.cache_clear()
    yield db_url
    get_settings.cache_clear()


def test_users_and_tokens_commands(
    configured: str, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    with sessions() as session, session.begin():
        session.add_all([Store(dms_id="N1", name="North"), Store(dms_id="S1", name="South")])
    runner = CliRunner()
    created = runner.invoke(
        main,
        [
            "users",
            "create",
            "dana",
            "--name",
            "Dana Lee",
            "--role",
            "manager",
            "--store",
            "N1",
            "--store",
            "S1",
            "--phone",
            "(555) 020-0100",
        ],
    )
    assert created.exit_code == 0, created.output
    with sessions() as session:
        dana = session.query(User).filter_by(username="dana").one()
        assert (dana.role, dana.phone, [s.dms_id for s in dana.stores]) == (
            "manager",
            "+15550200100",
            ["N1", "S1"],
        )
    assert runner.invoke(main, ["users", "create", "dana", "--name", "X"]).exit_code != 0
    unknown = runner.invoke(main, ["users", "create", "eve", "--name", "Eve", "--store", "ZZ"])
    assert unknown.exit_code != 0 and "ZZ" in unknown.output
    bad = runner.invoke(main, ["users", "create", "bad name", "--name", "Eve"])
    assert bad.exit_code != 0 and "username" in bad.output

    issued = runner.invoke(main, ["tokens", "create", "dana", "--name", "laptop"])
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.strip()  # logs go to stderr
    in_90_days = f"expires {(utcnow() + timedelta(days=90)):%Y-%m-%d}"
    assert in_90_days in issued.stderr  # the api_token_days default
    app = create_app(Settings(database_url=configured), engine=engine)
    with TestClient(app) as client:
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["username"] == "dana"
    assert runner.invoke(main, ["tokens", "create", "nobody"]).exit_code != 0

    short = runner.invoke(main, ["tokens", "create", "dana", "--name", "ci", "--expires-in", "12h"])
    assert short.exit_code == 0, short.output
    with sessions() as session:
        row = session.scalars(select(ApiToken).where(ApiToken.name == "ci")).one()
        left = row.expires_at - utcnow()
        assert timedelta(hours=11, minutes=59) < left <= timedelta(hours=12)
    for bad_lifetime in ("0d", "soon", "4000d"):
        refused = runner.invoke(main, ["tokens", "create", "dana", "--expires-in", bad_lifetime])
        assert refused.exit_code == 2 and "--expires-in" in refused.output
    listed = runner.invoke(main, ["tokens", "list", "dana"])
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert len(lines) == 2 and "laptop" in lines[0] and in_90_days in lines[0]
    assert " live " in lines[1] and "dl_" not in listed.stdout


def test_serve_demo_seeds_once_and_prints_tokens(
    configured: str, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`records.demo` is another module's job; a stand-in seeds one store and one advisor."""
    calls: list[Engine] = []

    def seed_demo(engine: Engine) -> dict[str, int]:
        calls.append(engine)
        with Session(engine) as session, session.begin():
            store = Store(dms_id="DEMO", name="Demo Motors")
            session.add(User(username="amy", name="Amy", role="advisor", stores=[store]))
        return {"stores": 1}

    monkeypatch.setitem(sys.modules, "records.demo", types.SimpleNamespace(seed_demo=seed_demo))
    ran: list[Supervisor] = []
    monkeypatch.setattr(Supervisor, "run", lambda self: ran.append(self) or 0)

    runner = CliRunner()
    first = runner.invoke(main, ["serve", "--demo", "--port", "8123"])
    assert first.exit_code == 0, first.output
    assert "demo data: {'stores': 1}" in first.output
    assert "created demo admin 'admin', password 'demo-password'" in first.output
    assert "token for admin: dl_" in first.output and "token for amy: dl_" in first.output
    assert 'curl -H "Authorization: Bearer dl_' in first.output
    assert "http://127.0.0.1:8123/api/v1/me" in first.output
    names = [p.name for p in ran[0].parts]
    assert names == ["call-writer", "transcriber", "speech", "sip", "retention", "api"]

    second = runner.invoke(main, ["serve", "--demo"])
    assert second.exit_code == 0 and "demo data" not in second.output
    assert "admin 'admin' exists: no demo admin created, no password changed" in second.output
    assert len(calls) == 1  # the store exists now: not seeded twice
    assert runner.invoke(main, ["serve", "--no-transcribe", "--no-sip"]).exit_code == 0
    assert [p.name for p in ran[-1].parts] == ["call-writer", "retention", "api"]
    with sessions() as session:
        assert session.query(User).filter_by(username="admin").count() == 1


class FakePart:
    def __init__(self, name: str, log: list[str], fail_start: bool = False) -> None:
        self.name, self.log, self.fail_start, self.running = name, log, fail_start, False

    def start(self) -> None:
        if self.fail_start:
            raise RuntimeError("boom")
        self.running = True
        self.log.append(f"start {self.name}")

    def alive(self) -> bool:
        return self.running

    def stop(self) -> None:
        self.running = False
        self.log.append(f"stop {self.name}")


def test_supervisor_stops_everything_when_a_part_dies() -> None:
    log: list[str] = []
    first, second = FakePart("a", log), FakePart("b", log)
    supervisor = Supervisor(poll_s=0.01)
    supervisor.add(first)
    supervisor.add(second)
    threading.Timer(0.05, lambda: setattr(first, "running", False)).start()
    assert supervisor.run() == 1
    assert log == ["start a", "start b", "stop b", "stop a"]


def test_supervisor_stops_started_parts_when_one_cannot_start() -> None:
    log: list[str] = []
    supervisor = Supervisor(poll_s=0.01)
    supervisor.add(FakePart("a", log))
    supervisor.add(FakePart("b", log, fail_start=True))
    assert supervisor.run() == 1
    assert log == ["start a", "stop a"]


def test_api_server_part_serves_http(db_url: str, engine: Engine, redis_url: str) -> None:
    app = create_app(Settings(database_url=db_url, redis_url=redis_url), engine=engine)
    server = ApiServer(app, host="127.0.0.1", port=0)
    supervisor = Supervisor(poll_s=0.01)
    supervisor.add(server)
    runner = threading.Thread(target=supervisor.run)
    runner.start()
    try:
        for _ in range(500):
            if server.alive() and server.server.started:
                break
            threading.Event().wait(0.01)
        health = httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
        assert health.status_code == 200 and health.json()["database"] == "ok"
        assert httpx.get(f"http://127.0.0.1:{server.port}/api/v1/me").status_code == 401
    finally:
        supervisor.stopping.set()
        runner.join(timeout=10)
    assert not server.alive()


def test_serve_refuses_a_bad_flow_and_names_file_and_line(
    configured: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "main.yaml").write_text(
        "name: main\nstart: greet\nsteps:\n  greet:\n    say: hello\n    next: menu\n"
    )
    monkeypatch.setenv("DRIVELINE_FLOWS_DIR", str(flows))
    get_settings.cache_clear()
    ran: list[Supervisor] = []
    monkeypatch.setattr(Supervisor, "run", lambda self: ran.append(self) or 0)

    result = CliRunner().invoke(main, ["serve"])

    assert result.exit_code == 1
    assert "refusing to load the flows" in result.output
    assert f"{flows / 'main.yaml'}:6: steps.greet.next:" in result.output
    assert ran == []  # nothing was started
