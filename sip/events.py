"""What the pjsua2 thread tells asyncio: small frozen dataclasses, one per callback we use.

Every event names the call by `key`, a number this process gives each call. pjsua's own call ids
are slots that get reused as soon as a call ends, so they never leave `sip/endpoint.py`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CallOffered:
    """An INVITE arrived and a call slot was free; 180 Ringing is already on its way."""

    key: int
    sip_call_id: str
    request_uri: str
    from_uri: str
    to_uri: str
    source: str  # "ip:port" the INVITE came from
    received_at: float  # time.monotonic() when onIncomingCall ran


@dataclass(frozen=True)
class MediaReady:
    """The call's audio is in the conference bridge: prompts can play, the caller can be heard."""

    key: int


@dataclass(frozen=True)
class CallProgress:
    """An outbound call got a provisional response (180 Ringing, 183 Session Progress)."""

    key: int
    code: int
    reason: str
    at: float  # time.monotonic()


@dataclass(frozen=True)
class CallConfirmed:
    """Inbound: the ACK for our 200 OK arrived. Outbound: the far end answered (200 OK, ACKed)."""

    key: int
    at: float  # time.monotonic()


@dataclass(frozen=True)
class DtmfDigit:
    key: int
    digit: str
    method: str  # "rfc2833" | "sip_info"


@dataclass(frozen=True)
class MediaHold:
    """The caller put the call on hold (re-INVITE with a=sendonly or a=inactive: `held`) or
    took it off hold (a=sendrecv). pjsua answers the re-INVITE 200 itself; the RTP watchdog is
    suspended while held."""

    key: int
    held: bool
    at: float  # time.monotonic()


@dataclass(frozen=True)
class PlaybackDone:
    """A prompt player reached the end of its file."""

    key: int
    player: int


@dataclass(frozen=True)
class CallEnded:
    """The call is over (BYE, CANCEL, our hang-up, RTP timeout); its key is never used again."""

    key: int
    code: int
    reason: str
    rtp_timeout: bool = False
    at: float = 0.0  # time.monotonic(); 0.0 from code that predates it


SipEvent = (
    CallOffered
    | CallProgress
    | MediaReady
    | CallConfirmed
    | DtmfDigit
    | MediaHold
    | PlaybackDone
    | CallEnded
)
