"""Who may call the DMS webhooks: an integration that signs each request, never a user's token.

The signing scheme (README "DMS webhooks" has a copyable example):

    X-Driveline-Key:        the integration's key id (`driveline integrations add`)
    X-Driveline-Timestamp:  Unix time in seconds when the request was signed
    X-Driveline-Signature:  sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>
    X-Driveline-Delivery:   optional, a unique id per delivery

A timestamp more than `WINDOW_S` from the server's clock is refused, so a captured request
cannot be sent again later; within the window, the same delivery id (or, without one, the same
signature) is accepted once: seen ids are kept in Redis for twice the window. Signatures are
compared in constant time. A user's bearer token (advisor, manager or admin) is refused with
403: a webhook changes data for a whole store and is no person's to call.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from redis.exceptions import RedisError

from api.auth import authenticate
from api.deps import BusDep, SessionDep
from records import integrations
from records.models import Integration, utcnow
from records.queries import Scope

log = logging.getLogger(__name__)

KEY_HEADER = "X-Driveline-Key"
TIMESTAMP_HEADER = "X-Driveline-Timestamp"
SIGNATURE_HEADER = "X-Driveline-Signature"
DELIVERY_HEADER = "X-Driveline-Delivery"
WINDOW_S = 300  # ± this many seconds between the signer's clock and ours
SEEN_KEY = "driveline:webhook:seen:"  # + key id + ":" + sha256 of the delivery id


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=` and the hex HMAC-SHA256 of `timestamp.body` under the integration's secret."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(
    key_id: str, secret: str, body: bytes, *, at: float | None = None, delivery: str | None = None
) -> dict[str, str]:
    """The headers a DMS sends with `body` (for clients and tests)."""
    timestamp = str(int(time.time() if at is None else at))
    headers = {
        KEY_HEADER: key_id,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        "Content-Type": "application/json",
    }
    if delivery is not None:
        headers[DELIVERY_HEADER] = delivery
    return headers


def _refused(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail=reason,
        headers={"WWW-Authenticate": f'Signature header="{SIGNATURE_HEADER}"'},
    )


async def _raw_body(request: Request) -> bytes:
    """The bytes that were signed (FastAPI parses the same cached bytes for the route)."""
    return await request.body()


def get_integration(
    request: Request,
    session: SessionDep,
    bus: BusDep,
    body: Annotated[bytes, Depends(_raw_body)],
) -> Integration:
    headers = request.headers
    sent = headers.get(SIGNATURE_HEADER)
    if sent is None:
        bearer = headers.get("authorization", "")
        if bearer[:7].lower() == "bearer " and authenticate(session, bearer[7:].strip()):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"webhooks take an integration's signature ({SIGNATURE_HEADER}), not a "
                "user's token; an admin makes one with `driveline integrations add`",
            )
        raise _refused(
            f"missing {SIGNATURE_HEADER}: sign the request with the integration's secret"
        )
    integration = integrations.active_by_key(session, headers.get(KEY_HEADER, "")[:64])
    if integration is None:
        raise _refused(f"{KEY_HEADER}: unknown or revoked integration key")
    raw_time = headers.get(TIMESTAMP_HEADER, "")
    if not raw_time.isdigit() or len(raw_time) > 12:
        raise _refused(f"{TIMESTAMP_HEADER}: give the Unix time in seconds")
    off = int(raw_time) - time.time()
    if abs(off) > WINDOW_S:
        raise _refused(
            f"{TIMESTAMP_HEADER} is {abs(off):.0f} s {'ahead of' if off > 0 else 'behind'} the "
            f"server's clock (allowed ±{WINDOW_S} s): sign each delivery when you send it"
        )
    if not hmac.compare_digest(signature(integration.secret, raw_time, body), sent.strip()):
        raise _refused(f"{SIGNATURE_HEADER} does not match the body and timestamp")
    delivery = headers.get(DELIVERY_HEADER) or sent.strip()
    seen = SEEN_KEY + f"{integration.key_id}:" + hashlib.sha256(delivery.encode()).hexdigest()
    try:
        first = bus.redis.set(seen, raw_time, nx=True, ex=2 * WINDOW_S)
    except RedisError:
        log.exception("webhook replay check unavailable")
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail="replay check unavailable; retry"
        ) from None
    if not first:
        what = DELIVERY_HEADER if headers.get(DELIVERY_HEADER) else "signature"
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"replayed delivery: this {what} was already accepted"
        )
    integration.last_used_at = utcnow()  # saved with the route's commit
    return integration


WebhookCaller = Annotated[Integration, Depends(get_integration)]


def get_webhook_scope(integration: WebhookCaller) -> Scope:
    """An integration sees its own store, nothing else."""
    return Scope(store_ids=frozenset({integration.store_id}))


WebhookScope = Annotated[Scope, Depends(get_webhook_scope)]
