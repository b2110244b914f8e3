"""Call event payloads: what a SIP worker may publish and what readers get back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from events.bus import Event
from events.calls import (
    CALL_ENDED,
    CallEnded,
    CallRinging,
    CallStep,
    RecordingInfo,
    parse_call_event,
)
from ivr.domain import Disposition, disposition_for

AT = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
SHA = "a" * 64


def test_sensitive_step_never_carries_what_was_keyed_or_heard() -> None:
    step = CallStep(
        call_uuid="c1",
        store_id=1,
        at=AT,
        flow="pay",
        step="card",
        kind="gather",
        digits="4111111111111111",
        heard="four one one one",
        sensitive=True,
    )
    assert step.digits is None and step.heard is None
    assert "4111" not in step.model_dump_json()
    plain = CallStep(call_uuid="c1", store_id=1, at=AT, flow="main", step="menu", digits="1")
    assert plain.digits == "1"


def test_ringing_unknown_caller_must_agree_with_customer() -> None:
    CallRinging(call_uuid="c1", store_id=1, at=AT, did="+15550300100", unknown_caller=True)
    with pytest.raises(ValidationError, match="unknown_caller"):
        CallRinging(call_uuid="c1", store_id=1, at=AT, did="+15550300100", unknown_caller=False)


@pytest.mark.parametrize("path", ["/etc/passwd", "../x.wav", "a/../../x.wav", "", "a\\b.wav"])
def test_recording_paths_stay_inside_the_recordings_dir(path: str) -> None:
    with pytest.raises(ValidationError):
        RecordingInfo(leg_role="caller", path=path, sha256=SHA, duration_s=1.0)
    assert RecordingInfo(leg_role="caller", path="2026/11/c1-caller.wav", sha256=SHA, duration_s=1)


def test_round_trip_through_the_bus_envelope_keeps_types_and_store() -> None:
    ended = CallEnded(
        call_uuid="c1",
        store_id=3,
        at=AT,
        disposition=Disposition.voicemail,
        did="+15550300100",
        caller="+15550301001",
        started_at=AT - timedelta(minutes=2),
        recordings=[
            RecordingInfo(
                leg_role="caller", path="v.wav", sha256=SHA, duration_s=9, kind="voicemail"
            )
        ],
    )
    event = Event.decode(
        Event(type=CALL_ENDED, store_id=3, data=ended.model_dump(mode="json")).encode()
    )
    parsed = parse_call_event(event)
    assert parsed == ended and isinstance(parsed, CallEnded)
    assert parsed.duration_s == 120.0
    # The envelope's store wins over a payload that claims another one.
    forged = Event(type=CALL_ENDED, store_id=4, data={**event.data, "store_id": 3})
    assert parse_call_event(forged).store_id == 4  # type: ignore[union-attr]
    assert parse_call_event(Event(type="thread.updated", store_id=3, data={})) is None


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValidationError):
        CallStep(call_uuid="c1", store_id=1, at=datetime(2026, 1, 1), flow="m", step="s")


def test_disposition_from_the_engine_outcome() -> None:
    assert disposition_for("transfer", answered=True) == Disposition.transferred
    assert disposition_for("caller_hung_up", answered=True) == Disposition.abandoned
    assert disposition_for("hangup", answered=True) == Disposition.handled_by_ivr
    assert disposition_for("error", answered=True) == Disposition.failed
    assert disposition_for(None, answered=False) == Disposition.missed
