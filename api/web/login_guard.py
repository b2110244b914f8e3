"""Login throttling: backoff per user name and per address after failures, and a cap on hashes.

Every password check costs an argon2 hash (64 MiB and tens of milliseconds of a core), so a
guessing run attacks the box as well as the accounts. Failures are counted in Redis, so every
API process sees the same counts and a restart forgives nothing. After `FREE_PER_USER` failures
for one user name, or `FREE_PER_ADDRESS` from one address, each further failure shuts that door
for twice as long as the one before (2 s, 4 s, 8 s, ... up to `MAX_BACKOFF`), and an attempt
while it is shut gets 429 with Retry-After before any hash is computed. Counts are forgotten
`WINDOW` after the last failure; a good login clears its user name's count, never the address's
(else one valid account would launder guesses at others from the same address).

At most `max_hashing` hashes run at once in a process; a login that cannot get a slot within
`HASH_WAIT` gets 503 with Retry-After instead of queueing more 64 MiB hashes. If Redis is down
the backoff is skipped (logged) but the cap still holds. Each failure is logged with the user
name and the address, never the password.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis
from sqlalchemy.orm import Session

from api.web.sessions import log_in

log = logging.getLogger(__name__)

PREFIX = "driveline:login:"
FREE_PER_USER = 5
FREE_PER_ADDRESS = 20  # an office behind one NAT address shares this
MAX_BACKOFF = 15 * 60.0
WINDOW = 60 * 60  # seconds after the last failure that a count is kept
HASH_WAIT = 2.0


class LoginDeferred(Exception):
    """Not checked now: `status` 429 (backoff) or 503 (hash slots busy), retry after N s."""

    def __init__(self, status: int, retry_after: int, message: str) -> None:
        super().__init__(message)
        self.status, self.retry_after, self.message = status, retry_after, message


def backoff(failures: int, free: int) -> float:
    """Seconds a door stays shut after the `failures`-th failure (0 while still free)."""
    if failures < free:
        return 0.0
    return min(MAX_BACKOFF, 2.0 ** (failures - free + 1))


class LoginGuard:
    def __init__(
        self,
        client: redis.Redis,
        *,
        max_hashing: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = client
        self.slots = threading.BoundedSemaphore(max_hashing)
        self.clock = clock

    def log_in(
        self, session: Session, *, username: str, password: str, address: str, user_agent: str
    ) -> str | None:
        """`sessions.log_in` behind the backoff and the hash cap; None for a wrong password.

        Raises LoginDeferred when the user name or the address is in backoff, or when every
        hash slot stayed busy for HASH_WAIT."""
        name = username.strip()[:64]
        wait = self._wait(name, address)
        if wait > 0:
            log.warning("login for %r from %s refused: backoff %.0f s", name, address, wait)
            raise LoginDeferred(
                429,
                math.ceil(wait),
                f"Too many failed logins. Try again in {math.ceil(wait)} seconds.",
            )
        with self._slot(name, address):
            secret = log_in(session, username=name, password=password, user_agent=user_agent)
        if secret is None:
            self._failed(name, address)
        else:
            self._forget(name)
        return secret

    @contextmanager
    def _slot(self, name: str, address: str) -> Iterator[None]:
        if not self.slots.acquire(timeout=HASH_WAIT):
            log.warning("login for %r from %s refused: every hash slot busy", name, address)
            raise LoginDeferred(503, 1, "The server is busy. Try again in a moment.")
        try:
            yield
        finally:
            self.slots.release()

    def _keys(self, name: str, address: str) -> tuple[tuple[str, int], tuple[str, int]]:
        return (
            (f"{PREFIX}user:{name.lower()}", FREE_PER_USER),
            (f"{PREFIX}address:{address}", FREE_PER_ADDRESS),
        )

    def _wait(self, name: str, address: str) -> float:
        now = self.clock()
        try:
            pipe = self.redis.pipeline(transaction=False)
            for key, _ in self._keys(name, address):
                pipe.hmget(key, "failures", "last")
            rows = pipe.execute()
        except redis.RedisError as exc:
            log.warning("login backoff skipped, Redis unavailable: %s", exc)
            return 0.0
        wait = 0.0
        for (_, free), (failures, last) in zip(self._keys(name, address), rows, strict=True):
            if failures is not None and last is not None:
                shut_until = float(last) + backoff(int(failures), free)
                wait = max(wait, shut_until - now)
        return wait

    def _failed(self, name: str, address: str) -> None:
        counts: list[int] = []
        try:
            pipe = self.redis.pipeline(transaction=True)
            for key, _ in self._keys(name, address):
                pipe.hincrby(key, "failures", 1)
                pipe.hset(key, "last", repr(self.clock()))
                pipe.expire(key, WINDOW)
            counts = [int(n) for n in pipe.execute()[::3]]
        except redis.RedisError as exc:
            log.warning("login failure not counted, Redis unavailable: %s", exc)
        shown = f" ({counts[0]} for the user, {counts[1]} from the address)" if counts else ""
        log.warning("login failed for %r from %s%s", name, address, shown)

    def _forget(self, name: str) -> None:
        try:
            self.redis.delete(f"{PREFIX}user:{name.lower()}")
        except redis.RedisError as exc:
            log.warning("login count not cleared, Redis unavailable: %s", exc)
