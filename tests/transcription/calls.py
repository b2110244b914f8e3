"""A recorded call's events (ringing → IVR lines → transfer → ended with two legs), and a way
to push them through the real call writer, for the transcription tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import Engine

from events.bus import Event
from events.calls import (
    CallAnswered,
    CallEnded,
    CallEvent,
    CallRinging,
    CallStep,
    CallTransferred,
    CustomerRef,
    Disposition,
    RecordingInfo,
    TransferTarget,
)
from records.call_writer import CallWriterConsumer
from tests.transcription.conftest import DID, KNOWN, write_wav

SHA = "d" * 64


class Call:
    """One transferred, recorded call: its events and its recording files."""

    ANSWERED_S = 2.0  # the caller's recording starts at answer

    def __init__(
        self,
        store_id: int,
        customer_id: int,
        recordings_dir: Path,
        *,
        length_s: float = 60.0,
        bridged_s: float = 30.0,
    ) -> None:
        """A call of `length_s`, bridged to an advisor at `bridged_s` (both legs recorded to
        the hangup; the files start silent, tests write speech into them)."""
        self.uuid = f"tx-{uuid.uuid4().hex[:12]}"
        self.store_id, self.customer_id = store_id, customer_id
        self.length_s, self.bridged_s = length_s, bridged_s
        self.t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=length_s + 5)
        day = recordings_dir / "2026" / "11" / "25"
        self.caller_s = length_s - self.ANSWERED_S
        self.advisor_s = length_s - bridged_s
        self.caller_wav = write_wav(day / f"{self.uuid}-caller.wav", self.caller_s)
        self.advisor_wav = write_wav(day / f"{self.uuid}-advisor.wav", self.advisor_s)
        self.recordings_dir = recordings_dir

    def at(self, s: float) -> datetime:
        return self.t0 + timedelta(seconds=s)

    def base(self, s: float) -> dict[str, Any]:
        return {"call_uuid": self.uuid, "store_id": self.store_id, "at": self.at(s)}

    def events(self) -> list[CallEvent]:
        """ringing → answered → IVR lines and a key → transfer answered → ended (two legs)."""
        rel = lambda p: p.relative_to(self.recordings_dir).as_posix()  # noqa: E731
        return [
            CallRinging(
                **self.base(0),
                did=DID,
                caller=KNOWN,
                unknown_caller=False,
                customer=CustomerRef(id=self.customer_id, name="Ann Tester", first_name="Ann"),
            ),
            CallAnswered(**self.base(self.ANSWERED_S)),
            CallStep(**self.base(4), flow="main", step="greet", said="Thanks for calling."),
            CallStep(**self.base(6), flow="main", step="menu", said="[plays menu.wav]"),
            CallStep(**self.base(9), flow="main", step="menu", digits="0"),
            CallStep(**self.base(10), flow="main", step="advisor", said="Connecting you now."),
            CallTransferred(
                **self.base(self.bridged_s),
                target=TransferTarget(user_id=None, name="Alice", contact="sip:alice@pbx"),
                result="answered",
                started_at=self.at(self.bridged_s - 10),
            ),
            CallEnded(
                **self.base(self.length_s),
                disposition=Disposition.transferred,
                did=DID,
                caller=KNOWN,
                customer_id=self.customer_id,
                started_at=self.t0,
                answered_at=self.at(self.ANSWERED_S),
                recordings=[
                    RecordingInfo(
                        leg_role="caller", path=rel(self.caller_wav), sha256=SHA,
                        duration_s=self.caller_s, started_at=self.at(self.ANSWERED_S),
                    ),
                    RecordingInfo(
                        leg_role="advisor", path=rel(self.advisor_wav), sha256=SHA,
                        duration_s=self.advisor_s, started_at=self.at(self.bridged_s),
                    ),
                ],
            ),
        ]  # fmt: skip


def publish(client: redis.Redis, stream: str, events: list[CallEvent]) -> None:
    for payload in events:
        event = Event(
            type=payload.event_type, store_id=payload.store_id, data=payload.model_dump(mode="json")
        )
        client.xadd(stream, {"event": event.encode()})


def write_call(engine: Engine, redis_url: str, jobs: str, events_stream: str) -> None:
    """Run the call writer over the test's event stream until it is drained."""
    writer = CallWriterConsumer(
        engine,
        redis_url,
        consumer_name="w",
        stream=events_stream,
        group=f"{events_stream}:g",
        jobs_stream=jobs,
    )
    try:
        while writer.poll_once(block_ms=20):
            pass
    finally:
        writer.close()
