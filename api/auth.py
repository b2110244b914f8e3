"""Bearer tokens: random secrets handed out once; the database keeps only their sha256.

A sha256 (not a slow password hash) is enough because the token is 256 random bits, and it
lets a request find its token by an indexed equality lookup.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy.orm import Session

from records import queries
from records.models import ApiToken, User

TOKEN_PREFIX = "dl_"  # makes a leaked token easy to spot (and to grep for) in logs and repos


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token(session: Session, user: User, name: str = "") -> tuple[ApiToken, str]:
    """The stored token row and its plaintext (which exists only in this return value)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = queries.add_token(session, user=user, name=name, token_sha256=hash_token(secret))
    return row, secret


def issue_token(session: Session, user: User, name: str = "") -> str:
    """Create a token for `user` and return its plaintext; it cannot be shown again."""
    return new_token(session, user, name)[1]


def authenticate(session: Session, token: str) -> User | None:
    """The active user behind a live token, or None for unknown and revoked tokens."""
    if not token or len(token) > 200:
        return None
    return queries.user_for_token(session, token_sha256=hash_token(token))
