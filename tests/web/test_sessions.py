"""Passwords and sessions at the data layer (SQLite and PostgreSQL), and the CLI that sets them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.cli import DEMO_PASSWORD, prepare_demo
from api.web.sessions import check_password, log_in, log_out, set_password, web_login
from ivr.cli import main
from ivr.config import get_settings
from records.models import Store, User, WebSession, utcnow


@pytest.fixture
def user(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        store = Store(dms_id="N", name="North")
        row = User(username="ann", name="Ann", role="advisor", stores=[store])
        session.add(row)
        session.commit()
        set_password(session, row, "s3cret-enough")
        return row.id


def test_password_check_and_rehash(sessions: sessionmaker[Session], user: int) -> None:
    with sessions() as session:
        ann = session.get(User, user)
        assert ann is not None and ann.password_hash and "s3cret" not in ann.password_hash
        assert check_password(session, ann, "s3cret-enough")
        assert not check_password(session, ann, "s3cret-enougH")
        assert not check_password(session, None, "s3cret-enough")
        ann.password_hash = PasswordHasher(time_cost=1, memory_cost=8192).hash("s3cret-enough")
        session.commit()
        old = ann.password_hash
        assert check_password(session, ann, "s3cret-enough")  # upgraded on the way in
        assert ann.password_hash != old and "m=65536" in ann.password_hash
        ann.active = False
        session.commit()
        assert not check_password(session, ann, "s3cret-enough")


def test_sessions_expire_and_revoke(sessions: sessionmaker[Session], user: int) -> None:
    with sessions() as session:
        assert log_in(session, username="ann", password="nope", user_agent="t") is None
        secret = log_in(session, username="ann", password="s3cret-enough", user_agent="t")
        assert secret is not None
        row = session.scalar(select(WebSession))
        assert row is not None and row.secret_sha256 != secret and secret not in row.csrf_token
        login = web_login(session, secret)
        assert login is not None and login.scope.store_ids is not None
        assert web_login(session, secret + "x") is None
        row.expires_at = utcnow() - timedelta(seconds=1)
        session.commit()
        assert web_login(session, secret) is None
        row.expires_at = utcnow() + timedelta(hours=1)
        session.commit()
        login = web_login(session, secret)
        assert login is not None
        log_out(session, login)
        assert web_login(session, secret) is None


def test_cli_sets_passwords(
    db_url: str, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIVELINE_DATABASE_URL", db_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        made = runner.invoke(
            main,
            ["users", "create", "zed", "--name", "Zed", "--password"],
            input="long-password\nlong-password\n",
        )
        assert made.exit_code == 0, made.output
        short = runner.invoke(main, ["users", "password", "zed"], input="short\nshort\n")
        assert short.exit_code != 0 and "8 to" in short.output
        changed = runner.invoke(
            main, ["users", "password", "zed"], input="other-pass\nother-pass\n"
        )
        assert changed.exit_code == 0 and "password set for zed" in changed.output
        assert runner.invoke(main, ["users", "password", "nobody"], input="x\nx\n").exit_code != 0
    finally:
        get_settings.cache_clear()
    with sessions() as session:
        zed = session.scalar(select(User).where(User.username == "zed"))
        assert check_password(session, zed, "other-pass")
        assert not check_password(session, zed, "long-password")


def test_demo_users_get_the_documented_password(engine, sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions() as session:
        session.add(User(username="outsider", name="Not Demo", role="manager"))
        session.commit()
    prepare_demo(engine)
    with sessions() as session:
        alice = session.scalar(select(User).where(User.username == "alice"))
        admin = session.scalar(select(User).where(User.username == "admin"))
        outsider = session.scalar(select(User).where(User.username == "outsider"))
        assert check_password(session, alice, DEMO_PASSWORD)
        assert check_password(session, admin, DEMO_PASSWORD)
        assert outsider is not None and outsider.password_hash is None
