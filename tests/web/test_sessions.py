"""Passwords and sessions at the data layer (SQLite and PostgreSQL), and the CLI that sets them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.web.sessions import check_password, log_in, log_out, set_password, web_login
from driveline.cli import main
from driveline.serve import DEMO_PASSWORD, prepare_demo
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


@pytest.mark.parametrize("password", ["the-real-one", None])
def test_demo_against_a_real_database_leaves_its_admin_alone(  # type: ignore[no-untyped-def]
    engine, sessions, password: str | None
) -> None:
    """`serve --demo` on a database with stores and an admin named `admin`: no demo seed, no
    demo admin, and that admin's password (or its lack of one) is exactly as it was."""
    with sessions() as session:
        store = Store(dms_id="REAL", name="Real Motors")
        admin = User(username="admin", name="Real Admin", role="admin", stores=[store])
        session.add(admin)
        session.commit()
        if password is not None:
            set_password(session, admin, password)
    access = prepare_demo(engine)
    assert access.seeded is None
    assert access.notes == ["admin 'admin' exists: no demo admin created, no password changed"]
    with sessions() as session:
        admin = session.scalar(select(User).where(User.username == "admin"))
        assert admin is not None and admin.name == "Real Admin"
        if password is None:
            assert admin.password_hash is None
        else:
            assert check_password(session, admin, password)
        assert not check_password(session, admin, DEMO_PASSWORD)
        assert session.scalar(select(User).where(User.role == "admin", User.id != admin.id)) is None


def test_demo_creates_its_admin_only_where_there_is_none(engine, sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions() as session:
        session.add(
            User(username="ann", name="Ann", role="advisor", stores=[Store(dms_id="S", name="S")])
        )
        session.commit()
    access = prepare_demo(engine)
    assert access.seeded is None  # a store exists: nothing seeded
    assert access.notes == ["created demo admin 'admin', password 'demo-password'"]
    with sessions() as session:
        admin = session.scalar(select(User).where(User.username == "admin"))
        assert admin is not None and admin.role == "admin"
        assert check_password(session, admin, DEMO_PASSWORD)
        ann = session.scalar(select(User).where(User.username == "ann"))
        assert ann is not None and ann.password_hash is None  # not a demo user: untouched
