"""Bearer tokens: random secrets handed out once; the database keeps only their sha256.

A sha256 (not a slow password hash) is enough because the token is 256 random bits, and it
lets a request find its token by an indexed equality lookup. Every token expires
(`api_token_days` unless given a lifetime), so a forgotten or leaked one stops working.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy.orm import Session

from ivr.config import get_settings
from records import queries
from records.models import ApiToken, User, utcnow

TOKEN_PREFIX = "dl_"  # makes a leaked token easy to spot (and to grep for) in logs and repos
MAX_LIFETIME = timedelta(days=3650)


class TokenExpired(Exception):
    """A known, unrevoked token past its expiry; the app answers 401 "token expired"."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def default_lifetime() -> timedelta:
    return timedelta(days=get_settings().api_token_days)


def new_token(
    session: Session, user: User, name: str = "", lifetime: timedelta | None = None
) -> tuple[ApiToken, str]:
    """The stored token row and its plaintext (which exists only in this return value).

    `lifetime` None: the configured default (`api_token_days`)."""
    lifetime = default_lifetime() if lifetime is None else lifetime
    if not timedelta(0) < lifetime <= MAX_LIFETIME:
        raise ValueError(f"a token lives more than 0 and at most {MAX_LIFETIME.days} days")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = queries.add_token(
        session,
        user=user,
        name=name,
        token_sha256=hash_token(secret),
        expires_at=utcnow() + lifetime,
    )
    return row, secret


def issue_token(
    session: Session, user: User, name: str = "", lifetime: timedelta | None = None
) -> str:
    """Create a token for `user` and return its plaintext; it cannot be shown again."""
    return new_token(session, user, name, lifetime)[1]


def authenticate(session: Session, token: str) -> User | None:
    """The active user behind a live token, or None for unknown and revoked tokens.

    Raises TokenExpired for a token past its expiry, so the client is told to get a new one
    rather than that its token never existed."""
    if not token or len(token) > 200:
        return None
    found = queries.live_token(session, token_sha256=hash_token(token))
    if found is None:
        return None
    row, user = found
    if row.expires_at <= utcnow():
        raise TokenExpired
    queries.touch_token(session, row)
    return user
