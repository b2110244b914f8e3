"""Consumer-group plumbing shared by the durable stream consumers (the call writer, the
transcription workers), so both read, and set aside what they cannot handle, the same way."""

from __future__ import annotations

from typing import Any

import redis

Entry = tuple[bytes, dict[bytes, bytes] | None]  # a stream entry; no fields once trimmed
DEAD_LETTER_MAXLEN = 10_000


def ensure_group(client: redis.Redis, stream: str, group: str) -> None:
    """Create the group (and the stream) if missing, from id 0: entries added before any
    consumer ran are read too."""
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def stream_entries(reply: Any) -> list[Entry]:
    """The entries of an XREADGROUP reply for one stream, in RESP2 or RESP3 shape."""
    if not reply:
        return []
    # RESP2: [[stream, entries]]; RESP3: {stream: [entries]}
    entries: list[Entry] = reply[0][1] if isinstance(reply, list) else next(iter(reply.values()))[0]
    return entries


def dead_letter(
    client: redis.Redis,
    *,
    stream: str,
    group: str,
    dead_letter_stream: str,
    entry_id: bytes,
    fields: dict[str, Any],
    consumer: str,
) -> None:
    """Keep the entry (its payload and why) for a person to look at, and ack it, in one
    transaction: one bad entry must not stop every later one."""
    pipe = client.pipeline(transaction=True)
    pipe.xadd(
        dead_letter_stream,
        {**fields, "entry": entry_id, "consumer": consumer},
        maxlen=DEAD_LETTER_MAXLEN,
        approximate=True,
    )
    pipe.xack(stream, group, entry_id)
    pipe.execute()
