"""How a call reads on its customer's thread and in its callback task: "Missed call from
+1..., 0m 12s", "Outbound call by Ann Lee to +1..., 2m 05s", "Attempted call ...: busy"."""

from __future__ import annotations

from typing import Any

from events.calls import CallEnded
from ivr.domain import Disposition
from records.models import Call


def duration_words(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


HEADLINES = {
    Disposition.handled_by_ivr: "Call handled by the IVR",
    Disposition.transferred: "Call transferred",
    Disposition.voicemail: "Call, left a voicemail",
    Disposition.abandoned: "Caller hung up",
    Disposition.missed: "Missed call",
    Disposition.failed: "Call failed",
}


def unrecorded_data(p: CallEnded) -> dict[str, Any]:
    """The legs the worker could not record (a full disk), for the thread to say so."""
    return {"unrecorded": [u.model_dump(mode="json") for u in p.unrecorded]} if p.unrecorded else {}


def call_summary(call: Call, p: CallEnded, advisor: str | None) -> str:
    if p.direction == "outbound":
        return outbound_summary(call, p, advisor)
    text = f"{HEADLINES[p.disposition]} from {call.from_number}, {duration_words(p.duration_s)}"
    if p.disposition == Disposition.transferred and advisor:
        text += f", talked to {advisor}"
    return text


NOT_REACHED = {  # the last `outbound.*` step of a masked call (sip/outbound.py), in words
    "outbound.advisor_no_answer": "the advisor did not answer",
    "outbound.customer_busy": "busy",
    "outbound.customer_no_answer": "no answer",
    "outbound.expired": "no line was free",
}


def outbound_summary(call: Call, p: CallEnded, advisor: str | None) -> str:
    """The thread line of a masked call: `Outbound call by Ann Lee to +1..., 2m 05s`, or
    `Attempted call by Ann Lee to +1...: busy`; without an advisor, `Automated call`."""
    by = f" by {advisor}" if advisor else ""
    if p.disposition in (Disposition.transferred, Disposition.handled_by_ivr):
        kind = "Outbound call" if advisor else "Automated call"
        return f"{kind}{by} to {call.to_number}, {duration_words(p.duration_s)}"
    reason = next((NOT_REACHED[s] for s in reversed(p.flow_path) if s in NOT_REACHED), "")
    kind = "Attempted call" if advisor else "Attempted automated call"
    return f"{kind}{by} to {call.to_number}" + (f": {reason}" if reason else "")


def callback_reason(call: Call, p: CallEnded) -> str:
    return f"{HEADLINES[p.disposition]} from {call.from_number}"
