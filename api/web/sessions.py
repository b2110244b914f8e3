"""Browser logins: argon2 password hashes, server-side sessions, CSRF tokens.

The cookie holds 256 random bits; the database keeps only their sha256 (as for API tokens), so a
leaked database row cannot be replayed, and logout or expiry ends the session on the server.
Every form a page renders carries the session's CSRF token; the login form, which has no session
yet, uses a double-submit cookie instead.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from api.auth import hash_token
from api.deps import get_scope
from records.models import User, WebSession, utcnow
from records.queries import Scope, get_user_by_username

COOKIE = "dl_session"
LOGIN_CSRF_COOKIE = "dl_login_csrf"
SESSION_TTL = timedelta(hours=12)  # one working day; the advisor logs in each morning
MAX_PASSWORD = 1024  # argon2 hashes anything, but a megabyte "password" is an attack

_hasher = PasswordHasher()
# Checked when the username is unknown, so a wrong username costs the same time as a wrong
# password and response times do not reveal who has an account.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    if not password or len(password) > MAX_PASSWORD:
        raise ValueError(f"a password has 1 to {MAX_PASSWORD} characters")
    return _hasher.hash(password)


def check_password(session: Session, user: User | None, password: str) -> bool:
    """True when `password` is the user's; upgrades the stored hash when parameters changed."""
    if user is None or not user.password_hash or not user.active:
        try:
            _hasher.verify(_DUMMY_HASH, password[:MAX_PASSWORD] or "-")
        except VerificationError:
            pass
        return False
    if len(password) > MAX_PASSWORD:
        return False
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
        session.commit()
    return True


def set_password(session: Session, user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    session.commit()


@dataclass(frozen=True)
class WebLogin:
    """Who is behind a request's cookie, and what they may see."""

    user: User
    web_session: WebSession
    scope: Scope

    @property
    def csrf(self) -> str:
        return self.web_session.csrf_token


def log_in(session: Session, *, username: str, password: str, user_agent: str) -> str | None:
    """A new session's cookie secret, or None for a wrong username or password."""
    user = get_user_by_username(session, username=username.strip()[:64])
    if not check_password(session, user, password):
        return None
    assert user is not None
    secret = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            user_id=user.id,
            secret_sha256=hash_token(secret),
            csrf_token=secrets.token_urlsafe(32),
            expires_at=utcnow() + SESSION_TTL,
            user_agent=user_agent[:200],
        )
    )
    session.commit()
    return secret


def web_login(session: Session, secret: str | None) -> WebLogin | None:
    """The live session behind a cookie: not revoked, not expired, its user still active."""
    if not secret or len(secret) > 200:
        return None
    row = session.scalar(
        select(WebSession)
        .where(
            WebSession.secret_sha256 == hash_token(secret),
            WebSession.revoked_at.is_(None),
            WebSession.expires_at > utcnow(),
        )
        .options(selectinload(WebSession.user).selectinload(User.stores))
    )
    if row is None or not row.user.active:
        return None
    return WebLogin(user=row.user, web_session=row, scope=get_scope(row.user))


def scope_for_cookie(session: Session, secret: str) -> Scope | None:
    login = web_login(session, secret)
    return login.scope if login is not None else None


def log_out(session: Session, login: WebLogin) -> None:
    login.web_session.revoked_at = utcnow()
    session.commit()


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and secrets.compare_digest(expected or "", given or "")
