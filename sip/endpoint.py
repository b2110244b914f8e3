"""One pjsua2 endpoint per process, driven from one thread and bridged to asyncio.

pjsua2 is not thread-safe in the way asyncio code would like: every pj call must happen on the
thread that created the library. So this module owns a dedicated thread that creates the
endpoint (`threadCnt = 0`, `mainThreadOnly = True`) and then loops:

    run queued commands  →  libHandleEvents(poll_ms)  →  delete ended calls  →  call watchdog

Asyncio code never touches pj objects. It calls the `SipEndpoint` coroutines (`answer`, `play`,
`start_recorder`, ...), which queue a closure for that loop and await a future the pj thread
settles with `loop.call_soon_threadsafe`. In the other direction, pjsua2 callbacks turn into the
frozen dataclasses of `sip/events.py` and reach asyncio the same way, via `on_event`.

Two pjsua2 traps this module is built around (NOTES.md, checked again here):
- The wheel holds at most 4 calls. `UaConfig.maxCalls` stays at or below that, so pjsua itself
  answers a surplus INVITE with a stateless 486 before any callback runs and no Python `Call` is
  ever built for it. Building a `Call` for a slot beyond `maxCalls` aborts the process.
- A `Call` must not be deleted inside its own callback. Ended calls are parked and deleted after
  `libHandleEvents` returns. A parked call still holds its slot number, and its destructor clears
  that slot's user data, so parked calls are also deleted before a new call takes a slot.

Hold: pjsua answers a caller's hold / resume re-INVITE (a=sendonly or a=inactive, then
a=sendrecv) with 200 OK itself and reports it in `onCallMediaState` (REMOTE_HOLD, then ACTIVE).
We then emit `MediaHold`, suspend the RTP watchdog for that call while it is held (restarting its
clock at the resume), and connect players, recorders and bridged calls to the call's audio again:
the re-INVITE rebuilds the stream, and its bridge port loses its connections.

Outbound calls (`dial`, the advisor leg of a bridged transfer, `driveline dial`) share the same
slots. `dial` counts the live calls itself and raises `NoCapacity` instead of building a `Call`
when every slot is taken; `outbound_reserve` keeps that many slots free of inbound calls (a
surplus INVITE gets 486 from us, before the router sees it), so callers already in a flow can
still reach an advisor. Events of an outbound call go to the `sink` given to `dial`, not to
`on_event`: the channel that placed it owns it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import itertools
import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pjsua2 as pj

from ivr.phone import DestinationRule
from sip.events import (
    CallConfirmed,
    CallEnded,
    CallOffered,
    CallProgress,
    DtmfDigit,
    MediaHold,
    MediaReady,
    PlaybackDone,
    SipEvent,
)

log = logging.getLogger(__name__)
pj_log = logging.getLogger("sip.pjsua")
_PJ_LEVELS = {0: logging.CRITICAL, 1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO}

WHEEL_MAX_CALLS = 4  # pjsua2-python 2.15.1 carries at most 4 calls per process
# Re-INVITE/UPDATE offers a caller may make: each rebuilds the call's media, so a storm of them
# is CPU the other calls need. Hold and resume a few times in a window is normal; beyond the
# budget an offer gets 488 (pjsua's only refusal), which costs no media work; a flood of
# them from one address is the edge's to cut off (pike).
REOFFER_WINDOW_S = 10.0
REOFFER_MAX = 6
T = TypeVar("T")


@dataclass(frozen=True)
class EndpointConfig:
    host: str = "127.0.0.1"
    port: int = 5060  # UDP, and TCP on the same number; 0 picks a free port (tests)
    tcp: bool = True
    max_calls: int = WHEEL_MAX_CALLS
    rtp_port: int = 0  # first RTP port; 0 lets the OS pick one per call
    rtp_port_range: int = 0
    rtp_timeout: float | None = 30.0  # no RTP from the caller for this long → hang up
    poll_ms: int = 10
    log_level: int = 2  # pjsua's own log (0-6) into the `sip.pjsua` logger; 2 = warnings
    user_agent: str = "Driveline"
    user: str = "driveline"  # the user part of our own URI: From of outbound calls
    # Slots inbound calls may not take, kept for outbound legs (bridged transfers): with 1, a
    # worker answers 3 callers and refuses a 4th with 486 so one of them can still be bridged.
    outbound_reserve: int = 0
    # Where E.164 numbers are dialled: a SIP URI with `{number}` (`sip:{number}@trunk.example`)
    # or a bare host/URI (`sip:trunk.example:5060` → `sip:+1555...@trunk.example:5060`).
    # None: numbers cannot be dialled (no trunk), only SIP URIs.
    trunk_uri: str | None = None
    # Digest credentials answered to a 401/407 that names the trunk's realm (no other).
    trunk_auth: TrunkAuth | None = None
    # Who may send us calls: an INVITE from any other address gets 403 before it rings
    # (the edge has the same allow-list; this is the worker's own check). None: anyone.
    trusted: tuple[str, ...] | None = ("127.0.0.1/32",)
    # The address our SDP carries and RTP binds, when it is not `host` (SIP on loopback
    # behind the edge, media on the address the trunk reaches).
    media_address: str | None = None
    # The numbers this process may dial, checked again here whatever queued or configured
    # them (ivr.phone.DestinationRule); None only for the operator's own `driveline dial`.
    dial_rule: DestinationRule | None = DestinationRule()
    region: str = "US"  # how a number written without +country in a dialled URI is read

    def __post_init__(self) -> None:
        for entry in self.trusted or ():
            ipaddress.ip_network(entry, strict=False)  # ValueError names a bad entry
        if not 1 <= self.max_calls <= WHEEL_MAX_CALLS:
            raise ValueError(f"max_calls must be 1..{WHEEL_MAX_CALLS} (the wheel's limit)")
        if not 0 <= self.outbound_reserve < self.max_calls:
            raise ValueError("outbound_reserve must leave at least one slot for inbound calls")

    def dial_uri(self, contact: str) -> str | None:
        """The SIP URI to call for a contact: SIP URIs as they are, E.164 numbers through
        `trunk_uri`; None when the contact cannot be dialled from here."""
        contact = contact.strip()
        if contact.lower().startswith(("sip:", "sips:")):
            return contact if self.may_dial(contact) else None
        if not re.fullmatch(r"\+[1-9]\d{6,14}", contact) or not self.trunk_uri:
            return None
        if not self.may_dial(f"tel:{contact}"):
            return None
        if "{number}" in self.trunk_uri:
            return self.trunk_uri.replace("{number}", contact)
        scheme, sep, rest = self.trunk_uri.partition(":")
        if not sep or scheme.lower() not in ("sip", "sips"):
            scheme, rest = "sip", self.trunk_uri
        return f"{scheme}:{contact}@{rest.split('@')[-1]}"

    def may_dial(self, uri: str) -> bool:
        return self.dial_rule is None or self.dial_rule.allows_uri(uri, self.region)

    def trusts(self, source: str) -> bool:
        """`source` is "ip:port" (or "[v6]:port") as pjsip reports an INVITE's origin."""
        if self.trusted is None:
            return True
        host = source.rpartition(":")[0].strip("[]") if ":" in source else source
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in ipaddress.ip_network(n, strict=False) for n in self.trusted)


@dataclass(frozen=True)
class TrunkAuth:
    username: str
    password: str = field(repr=False)
    realm: str  # the realm of the trunk's challenge; another realm gets no credentials


class EndpointError(RuntimeError):
    pass


class CallGone(EndpointError):
    """The call ended before the command reached it."""


class NoCapacity(EndpointError):
    """Every call slot of this process is taken: an outbound call cannot be placed."""


class RecorderFailed(EndpointError):
    """pjsua could not create a recording file (unwritable folder, bad path): the call goes on."""


class DestinationRefused(EndpointError):
    """The URI names a number outside the dial rule (premium, international...): not dialled."""


# --- pj-side objects: only ever touched on the pjsua2 thread -----------------------------------


class _LogWriter(pj.LogWriter):
    """pjsua's own log lines into Python logging (`sip.pjsua`), from whichever thread."""

    def write(self, entry: pj.LogEntry) -> None:
        try:
            pj_log.log(_PJ_LEVELS.get(entry.level, logging.DEBUG), "%s", entry.msg.rstrip())
        except Exception:  # noqa: BLE001 - an exception escaping a director aborts the process
            return


class _Player(pj.AudioMediaPlayer):
    def __init__(self, on_eof: Callable[[], None] | None) -> None:
        super().__init__()
        self._on_eof = on_eof

    def onEof2(self) -> None:
        # Runs on the media clock thread even with mainThreadOnly: hand off, touch nothing pj.
        try:
            if self._on_eof is not None:
                self._on_eof()
        except Exception:  # an exception escaping a director aborts the process
            log.exception("player EOF callback failed")


class _Call(pj.Call):
    def __init__(
        self,
        ep: SipEndpoint,
        acc: pj.Account,
        call_id: int,
        key: int,
        sink: Callable[[SipEvent], None] | None = None,
    ) -> None:
        super().__init__(acc, call_id)
        self.ep = ep
        self.key = key
        self.sink = sink  # outbound calls: where their events go (else the endpoint's on_event)
        self.outbound = sink is not None
        self.progress = 0  # last provisional code seen (outbound)
        self.audio: pj.AudioMedia | None = None
        self.audio_index = -1
        self.answered = False  # our 2xx went out
        self.confirmed = False
        self.ended = False
        self.rtp_timed_out = False
        self.players: dict[int, _Player] = {}
        self.recorders: dict[int, pj.AudioMediaRecorder] = {}
        self.rx_packets = 0
        self.rx_changed = time.monotonic()
        self.held = False  # the caller put us on hold (sendonly/inactive): no RTP expected
        self.peers: set[int] = set()  # calls bridged with this one (`connect`)
        self.offers: collections.deque[float] = collections.deque()  # re-offers in the window
        self.refused_offers = 0
        self.reinvite_counted = False

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        try:
            info = self.getInfo()
            if info.state == pj.PJSIP_INV_STATE_CONFIRMED and not self.confirmed:
                self.confirmed = True
                self.answered = True  # from now on our hang-up is a BYE
                self.rx_changed = time.monotonic()
                self._emit(CallConfirmed(self.key, time.monotonic()))
            elif (
                info.state == pj.PJSIP_INV_STATE_EARLY
                and self.outbound
                and info.lastStatusCode != self.progress
            ):
                self.progress = info.lastStatusCode
                self._emit(
                    CallProgress(self.key, info.lastStatusCode, info.lastReason, time.monotonic())
                )
            elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                self.ep._ended(self, info.lastStatusCode, info.lastReason)
        except Exception:
            log.exception("onCallState failed (call %s)", self.key)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        # Runs after the first offer/answer and again after every re-INVITE (hold, resume).
        # A re-INVITE that changes the direction may rebuild the audio stream and its bridge
        # port, dropping the port's connections: take the AudioMedia afresh and connect our
        # players and recorders again (connecting an already connected pair is a no-op).
        try:
            info = self.getInfo()  # keep it alive: the media vector points into it
            for media in info.media:
                if media.type != pj.PJMEDIA_TYPE_AUDIO:
                    continue
                log.debug("call %s: audio media status %s", self.key, media.status)
                if media.status in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
                    first = self.audio is None
                    self.audio = self.getAudioMedia(media.index)
                    self.audio_index = media.index
                    self._set_held(media.status == pj.PJSUA_CALL_MEDIA_REMOTE_HOLD)
                    if first:
                        self._emit(MediaReady(self.key))
                    else:
                        self._rewire()
                    break
                if media.status == pj.PJSUA_CALL_MEDIA_NONE and self.audio is not None:
                    # No stream any more (the caller disabled audio with port 0): no RTP is
                    # expected either. Both a=sendonly and a=inactive arrive as REMOTE_HOLD.
                    self._set_held(True)
                    break
        except Exception:
            log.exception("onCallMediaState failed (call %s)", self.key)

    def _set_held(self, held: bool) -> None:
        if held == self.held:
            return
        self.held = held
        # Leaving hold restarts the watchdog's clock: the caller's RTP resumes from now.
        self.rx_changed = time.monotonic()
        self.rx_packets = -1  # a rebuilt stream counts from 0 again
        log.info("call %s: %s", self.key, "on hold" if held else "resumed")
        self._emit(MediaHold(self.key, held, time.monotonic()))

    def _rewire(self) -> None:
        """The call's bridge port may have changed: connect running players, recorders and
        bridged calls to it again."""
        if self.audio is None:
            return
        for player in self.players.values():
            with contextlib.suppress(Exception):
                player.startTransmit(self.audio)
        for recorder in self.recorders.values():
            with contextlib.suppress(Exception):
                self.audio.startTransmit(recorder)
        for key in self.peers:
            peer = self.ep._calls.get(key)
            if peer is None or peer.ended or peer.audio is None:
                continue
            with contextlib.suppress(Exception):
                self.audio.startTransmit(peer.audio)
                peer.audio.startTransmit(self.audio)

    # --- the far end never steers where we dial (toll-fraud guard) ---------------------------
    # pjsua's defaults obey the other party: a REFER gets 202 and an INVITE to its Refer-To, an
    # INVITE with Replaces takes over a live call. Either would let a caller make this worker
    # dial a number of their choosing, so both are refused; transfers are only ever started by
    # our own flows. pjsua2 already stops at a 3xx to our INVITE; saying so here keeps it so.

    def onCallTransferRequest(self, prm: pj.OnCallTransferRequestParam) -> None:
        prm.statusCode = 603  # Decline: no NOTIFY, no INVITE to the Refer-To
        log.warning("call %s: REFER to %s refused (603)", self.key, prm.dstUri)

    def onCallReplaceRequest(self, prm: pj.OnCallReplaceRequestParam) -> None:
        prm.statusCode = 403
        prm.reason = "Replaces not allowed"
        log.warning("call %s: INVITE with Replaces refused (403)", self.key)

    # --- re-INVITE / UPDATE storms --------------------------------------------------------------

    # pjsua asks about a re-INVITE twice: onCallRxReinvite, then (only if that said 200)
    # onCallRxOffer; an UPDATE only the latter. Each request counts once.

    def onCallRxReinvite(self, prm: pj.OnCallRxReinviteParam) -> None:
        try:
            if self._offer_allowed("re-INVITE"):
                self.reinvite_counted = True
            else:
                prm.statusCode = 488
        except Exception:  # an exception escaping a director aborts the process
            log.exception("call %s: re-INVITE check failed", self.key)

    def onCallRxOffer(self, prm: pj.OnCallRxOfferParam) -> None:
        try:
            if self.reinvite_counted:
                self.reinvite_counted = False
            elif not self._offer_allowed("UPDATE"):
                prm.statusCode = 488
        except Exception:
            log.exception("call %s: offer check failed", self.key)

    def _offer_allowed(self, what: str) -> bool:
        now = time.monotonic()
        while self.offers and now - self.offers[0] > REOFFER_WINDOW_S:
            self.offers.popleft()
        if len(self.offers) < REOFFER_MAX:
            self.offers.append(now)
            return True
        self.refused_offers += 1
        if self.refused_offers == 1:
            log.warning(
                "call %s: more than %d re-offers in %.0fs; refusing this %s and the next (488)",
                self.key, REOFFER_MAX, REOFFER_WINDOW_S, what,
            )  # fmt: skip
        return False

    def onCallRedirected(self, prm: pj.OnCallRedirectedParam) -> int:
        log.warning("call %s: redirect to %s not followed", self.key, prm.targetUri)
        return pj.PJSIP_REDIRECT_STOP

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        # RFC 2833 events and SIP INFO (application/dtmf-relay) both arrive here.
        method = "sip_info" if prm.method == pj.PJSUA_DTMF_METHOD_SIP_INFO else "rfc2833"
        self._emit(DtmfDigit(self.key, prm.digit, method))

    def _emit(self, event: SipEvent) -> None:
        if self.sink is not None:
            self.ep._post(self.sink, event)
        else:
            self.ep._emit(event)


class _Account(pj.Account):
    def __init__(self, ep: SipEndpoint) -> None:
        super().__init__()
        self.ep = ep

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        try:
            self.ep._incoming(self, prm)
        except Exception:  # pjsua2 answers 500 when no Call was built
            log.exception("incoming call failed")


def _request_uri(whole_msg: str) -> str:
    first = whole_msg.split("\r\n", 1)[0].split("\n", 1)[0]
    parts = first.split()
    return parts[1] if len(parts) >= 3 else ""


# --- the endpoint ----------------------------------------------------------------------------


def disown_port(port: Any) -> None:
    """Let go of a pjsua2 media port without deleting its C++ half, for a port that outlives
    the library (see `SipEndpoint._destroy`)."""
    port.thisown = False


class SipEndpoint:
    """The process's pjsua2 endpoint; coroutines here are safe to call from the asyncio loop."""

    def __init__(self, config: EndpointConfig, on_event: Callable[[SipEvent], None]) -> None:
        self.config = config
        self.on_event = on_event
        self.address: tuple[str, int] = (config.host, config.port)  # real port once started
        self._loop: asyncio.AbstractEventLoop | None = None
        self._commands: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...], Any]] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._startup_error: BaseException | None = None
        self._keys = itertools.count(1)
        self._media_ids = itertools.count(1)
        # pj thread state
        self._ep: pj.Endpoint | None = None
        self._account: _Account | None = None
        self._calls: dict[int, _Call] = {}
        self._parked: list[_Call] = []
        # Bridge ports that Python owns (sip/listen.py) are reused, never deleted while the
        # library runs: pjsip 2.15's conference bridge removes a port asynchronously, on its
        # clock thread, and a pjsua2 `AudioMediaPort` deleted right after being disconnected
        # was used after free (a worker died of SIGSEGV under load). (released_at, port)
        self.spare_ports: list[tuple[float, Any]] = []
        self._next_watch = 0.0
        self._log_writer = _LogWriter()  # must outlive libDestroy

    # --- lifecycle (asyncio side) ---------------------------------------------------------------

    async def start(self, timeout: float = 10.0) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._main, name="pjsua2", daemon=True)
        self._thread.start()
        if not await asyncio.to_thread(self._ready.wait, timeout):
            raise EndpointError("pjsua2 did not start in time")
        if self._startup_error is not None:
            raise EndpointError(f"pjsua2 failed to start: {_describe(self._startup_error)}")

    async def stop(self, timeout: float = 5.0) -> None:
        """Hang up every call, delete every pj object, destroy the library, join the thread."""
        if self._thread is None:
            return
        self._stop.set()
        await asyncio.to_thread(self._thread.join, timeout)
        if self._thread.is_alive():
            log.error("pjsua2 thread did not stop within %.1fs", timeout)
        self._thread = None

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run `fn(*args)` on the pjsua2 thread; the future settles on the asyncio loop."""
        if self._loop is None or self._thread is None or self._stop.is_set():
            raise EndpointError("the SIP endpoint is not running")
        future: asyncio.Future[T] = self._loop.create_future()
        self._commands.put((fn, args, future))
        return future

    # --- commands (asyncio side) -----------------------------------------------------------------

    async def answer(self, key: int, code: int = 200) -> None:
        await self.submit(self._answer, key, code)

    async def hangup(self, key: int, code: int = 603) -> None:
        """End the call: a final `code` while it rings, a BYE once answered. No-op if gone."""
        await self.submit(self._hangup, key, code)

    async def play(self, key: int, path: str, *, loop: bool = False) -> int:
        """Start playing a WAV to the caller once; `PlaybackDone(key, id)` follows at its end.
        With `loop` it repeats until `stop_player` (ringback) and no `PlaybackDone` is sent."""
        return await self.submit(self._play, key, path, loop)

    async def dial(
        self,
        uri: str,
        sink: Callable[[SipEvent], None],
        *,
        headers: dict[str, str] | None = None,
        from_uri: str | None = None,
    ) -> int:
        """Place an outbound call; returns its key. Its events (`CallProgress`, `MediaReady`,
        `CallConfirmed`, `CallEnded`, ...) go to `sink` on the loop. `from_uri` replaces our
        own URI in From (a masked call shows the store's number). Raises `NoCapacity` when
        no slot is free, `DestinationRefused` for a number outside `config.dial_rule` and
        `EndpointError` when pjsua refuses the URI."""
        if not self.config.may_dial(uri):
            log.warning("refused to dial %s: not an allowed destination", uri)
            raise DestinationRefused(f"{uri} is not an allowed destination")
        return await self.submit(self._dial, uri, sink, headers or {}, from_uri)

    async def connect(self, a: int, b: int) -> None:
        """Join two calls' audio both ways in the conference bridge (a bridged transfer)."""
        await self.submit(self._connect, a, b)

    async def send_dtmf(self, key: int, digits: str) -> None:
        """Send digits as RFC 2833 telephone-events."""
        await self.submit(lambda: self._call(key).dialDtmf(digits))

    async def free_slots(self) -> int:
        """Call slots an outbound call could take now."""
        return await self.submit(self._free_slots)

    async def stop_player(self, key: int, player: int) -> None:
        await self.submit(self._stop_player, key, player)

    async def start_recorder(self, key: int, path: str) -> int:
        """Record the call's audio to a new WAV at `path`; `RecorderFailed` when pjsua cannot
        create it (a full disk is not noticed here: pjsua then writes nothing, silently)."""
        return await self.submit(self._start_recorder, key, path)

    async def stop_recorder(self, key: int, recorder: int) -> None:
        """Stop and close the WAV (the header is written when the recorder is destroyed)."""
        await self.submit(self._stop_recorder, key, recorder)

    async def rx_level(self, key: int) -> int:
        """The caller's last audio level, 0..255 (what the bridge reads from the call)."""
        return await self.submit(self._rx_level, key)

    async def live_calls(self) -> int:
        """pjsua2 `Call` objects alive in this process (active plus not yet deleted)."""
        return await self.submit(lambda: len(self._calls) + len(self._parked))

    # --- the pjsua2 thread ---------------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._setup()
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._startup_error = exc
            self._ready.set()
            self._destroy()
            return
        self._ready.set()
        try:
            while not self._stop.is_set():
                self._drain()
                assert self._ep is not None
                self._ep.libHandleEvents(self.config.poll_ms)
                self._reap()
                self._watch_calls()
        except BaseException:
            log.exception("pjsua2 loop failed")
        finally:
            self._stop.set()  # from now on submit() refuses instead of queueing into the void
            self._shutdown()

    def _setup(self) -> None:
        cfg = self.config
        ep = pj.Endpoint()
        ep.libCreate()
        self._ep = ep
        ep_cfg = pj.EpConfig()
        ep_cfg.uaConfig.threadCnt = 0
        ep_cfg.uaConfig.mainThreadOnly = True
        ep_cfg.uaConfig.maxCalls = cfg.max_calls
        ep_cfg.uaConfig.userAgent = cfg.user_agent
        ep_cfg.medConfig.clockRate = 8000
        ep_cfg.medConfig.sndClockRate = 8000
        ep_cfg.medConfig.noVad = True
        ep_cfg.medConfig.ecTailLen = 0
        ep_cfg.logConfig.level = cfg.log_level
        ep_cfg.logConfig.consoleLevel = cfg.log_level
        ep_cfg.logConfig.decor = pj.PJ_LOG_HAS_SENDER  # logging adds the time and level
        ep_cfg.logConfig.writer = self._log_writer
        ep.libInit(ep_cfg)

        port = self._transports(ep)
        ep.audDevManager().setNullDev()
        ep.libStart()
        self.address = (cfg.host, port)

        acc_cfg = pj.AccountConfig()
        acc_cfg.idUri = f"sip:{cfg.user}@{cfg.host}:{port}"
        acc_cfg.mediaConfig.transportConfig.port = cfg.rtp_port
        acc_cfg.mediaConfig.transportConfig.portRange = cfg.rtp_port_range
        media_host = cfg.media_address or cfg.host
        if media_host not in ("", "0.0.0.0"):
            acc_cfg.mediaConfig.transportConfig.boundAddress = media_host
        if cfg.trunk_auth is not None:
            auth = cfg.trunk_auth
            acc_cfg.sipConfig.authCreds.append(
                pj.AuthCredInfo("digest", auth.realm, auth.username, 0, auth.password)
            )
        self._account = _Account(self)
        self._account.create(acc_cfg, True)
        log.info("SIP endpoint on %s:%d (udp%s)", cfg.host, port, "+tcp" if cfg.tcp else "")

    def _transports(self, ep: pj.Endpoint) -> int:
        """UDP, and TCP on the same number; returns the port. With port 0 the OS picks the UDP
        port, and the same TCP port may be taken by someone else: then try another pick."""
        cfg = self.config
        for attempt in range(1 if cfg.port else 10):
            udp = pj.TransportConfig()
            udp.port = cfg.port
            if cfg.host not in ("", "0.0.0.0"):
                udp.boundAddress = cfg.host
            udp_id = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, udp)
            port = int(ep.transportGetInfo(udp_id).localName.rpartition(":")[2])
            if not cfg.tcp:
                return port
            tcp = pj.TransportConfig()
            tcp.port = port
            tcp.boundAddress = udp.boundAddress
            try:
                ep.transportCreate(pj.PJSIP_TRANSPORT_TCP, tcp)
            except Exception:
                if cfg.port or attempt == 9:
                    raise
                log.debug("TCP port %d is taken; picking another port", port)
                ep.transportClose(udp_id)
                continue
            return port
        raise EndpointError("no port free for both UDP and TCP")

    def _drain(self) -> None:
        while True:
            try:
                fn, args, future = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                result = fn(*args)
            except Exception as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                self._post(_settle, future, None, exc)
            else:
                self._post(_settle, future, result, None)

    def _post(self, fn: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            pass

    def _emit(self, event: SipEvent) -> None:
        self._post(self.on_event, event)

    def _incoming(self, acc: _Account, prm: pj.OnIncomingCallParam) -> None:
        # A parked call may hold the very slot pjsua just reused; delete it first.
        self._reap()
        if not 0 <= prm.callId < self.config.max_calls:
            # Cannot happen while maxCalls ≤ the wheel's limit (pjsua refuses with 486 first);
            # building a Call here would abort the process, so leave it to pjsua2's 500.
            log.error("incoming call in slot %d beyond max_calls; refused", prm.callId)
            return
        key = next(self._keys)
        call = _Call(self, acc, prm.callId, key)
        self._calls[key] = call
        source = prm.rdata.srcAddress
        if not self.config.trusts(source):
            # Anyone could spoof a customer's caller ID and hear their repair status: only the
            # edge and the trunks may call a worker.
            log.warning("call %s refused 403: %s is not a trusted source", key, source)
            self._hangup(key, 403)
            return
        inbound = sum(1 for c in self._calls.values() if not c.outbound)
        if inbound > self.config.max_calls - self.config.outbound_reserve:
            # The slot is within max_calls, so the Call is safe to build; refuse it like pjsua
            # refuses a surplus, keeping the reserved slots for outbound legs.
            log.info("call %s refused 486: slots reserved for outbound legs", key)
            self._hangup(key, 486)
            return
        try:
            info = call.getInfo()
            ringing = pj.CallOpParam()
            ringing.statusCode = 180
            call.answer(ringing)
        except Exception:
            log.exception("could not ring call %s; refusing it", key)
            self._hangup(key, 500)
            return
        self._emit(
            CallOffered(
                key=key,
                sip_call_id=info.callIdString,
                request_uri=_request_uri(prm.rdata.wholeMsg),
                from_uri=info.remoteUri,
                to_uri=info.localUri,
                source=source,
                received_at=time.monotonic(),
            )
        )

    def _ended(self, call: _Call, code: int, reason: str) -> None:
        call.ended = True
        call.audio = None  # pjsua2 already freed it; never hand it to startTransmit again
        self._calls.pop(call.key, None)
        self._parked.append(call)
        call._emit(CallEnded(call.key, code, reason, call.rtp_timed_out, time.monotonic()))

    def _reap(self) -> None:
        while self._parked:
            call = self._parked.pop()
            call.players.clear()  # destroying a player or recorder removes its bridge port
            call.recorders.clear()
            del call

    def _watch_calls(self) -> None:
        """Twice a second: hang up a call whose caller sent no RTP for `rtp_timeout`."""
        timeout = self.config.rtp_timeout
        now = time.monotonic()
        if timeout is None or now < self._next_watch:
            return
        self._next_watch = now + 0.5
        for call in list(self._calls.values()):
            if not call.confirmed or call.audio is None or call.held:
                continue  # a held caller sends no RTP (sendonly/inactive): suspended
            try:
                packets = call.getStreamStat(call.audio_index).rtcp.rxStat.pkt
            except Exception:  # noqa: BLE001 - no stream (yet)
                log.debug("call %s: no stream statistics yet", call.key)
                continue
            if packets != call.rx_packets:
                call.rx_packets, call.rx_changed = packets, now
            elif now - call.rx_changed > timeout and not call.rtp_timed_out:
                log.info("call %s: no RTP for %.1fs, hanging up", call.key, timeout)
                call.rtp_timed_out = True
                self._hangup(call.key, 408)

    def _shutdown(self) -> None:
        try:
            if self._ep is not None and self._calls:
                self._ep.hangupAllCalls()
                deadline = time.monotonic() + 2.0
                while self._calls and time.monotonic() < deadline:
                    self._ep.libHandleEvents(self.config.poll_ms)
            self._reap()
            for call in list(self._calls.values()):  # calls that never confirmed their end
                call.players.clear()
                call.recorders.clear()
            self._calls.clear()
        except Exception:
            log.exception("hanging up calls at shutdown failed")
        self._fail_pending()
        self._destroy()

    def _fail_pending(self) -> None:
        while True:
            try:
                _fn, _args, future = self._commands.get_nowait()
            except queue.Empty:
                return
            self._post(_settle, future, None, EndpointError("the SIP endpoint stopped"))

    def _destroy(self) -> None:
        if self._account is not None:
            try:
                self._account.shutdown()
            except Exception:
                log.exception("account shutdown failed")
            self._account = None
        if self._ep is not None:
            try:
                # Calls were hung up (and their BYEs sent) in _shutdown; without this flag
                # pjsua waits a further second for network work that is not there.
                self._ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
            except Exception:
                log.exception("libDestroy failed")
            self._ep = None
        # The bridge is gone, and with it every port in it. A pjsua2 port deleted now would
        # remove itself from the missing bridge and pjsip would abort the process (SIGABRT
        # from pjmedia_conf_remove_port): their C++ halves are left to the exiting process.
        for _released_at, port in self.spare_ports:
            disown_port(port)
        self.spare_ports.clear()

    # --- command bodies (pjsua2 thread) ----------------------------------------------------------

    def _call(self, key: int) -> _Call:
        call = self._calls.get(key)
        if call is None or call.ended:
            raise CallGone(f"call {key} has ended")
        return call

    def _answer(self, key: int, code: int) -> None:
        call = self._call(key)
        prm = pj.CallOpParam()
        prm.statusCode = code
        call.answer(prm)
        call.answered = code >= 200

    def _hangup(self, key: int, code: int) -> None:
        call = self._calls.get(key)
        if call is None or call.ended:
            return
        prm = pj.CallOpParam()
        # Once answered it is a BYE and pjsua only records the code: say "normal clearing".
        prm.statusCode = 200 if call.answered else code
        call.hangup(prm)

    def _play(self, key: int, path: str, loop: bool = False) -> int:
        call = self._call(key)
        if call.audio is None:
            raise EndpointError(f"call {key} has no audio yet")
        player_id = next(self._media_ids)
        if loop:
            player = _Player(None)
            player.createPlayer(path, 0)
        else:
            player = _Player(lambda: call._emit(PlaybackDone(key, player_id)))
            player.createPlayer(path, pj.PJMEDIA_FILE_NO_LOOP)
        player.startTransmit(call.audio)
        call.players[player_id] = player
        return player_id

    def _stop_player(self, key: int, player_id: int) -> None:
        call = self._calls.get(key)
        if call is None:
            return
        player = call.players.pop(player_id, None)
        if player is not None and call.audio is not None:
            player.stopTransmit(call.audio)

    def _start_recorder(self, key: int, path: str) -> int:
        call = self._call(key)
        if call.audio is None:
            raise EndpointError(f"call {key} has no audio yet")
        recorder_id = next(self._media_ids)
        recorder = pj.AudioMediaRecorder()
        try:
            recorder.createRecorder(path)
        except Exception as exc:  # noqa: BLE001 - pj.Error; deleting a failed recorder is safe
            raise RecorderFailed(f"cannot record to {path}: {_describe(exc)}") from None
        call.audio.startTransmit(recorder)
        call.recorders[recorder_id] = recorder
        return recorder_id

    def _stop_recorder(self, key: int, recorder_id: int) -> None:
        call = self._calls.get(key)
        if call is None:
            return  # reaped with the call: the recorder is closed already
        recorder = call.recorders.pop(recorder_id, None)
        if recorder is not None and call.audio is not None:
            call.audio.stopTransmit(recorder)

    def _free_slots(self) -> int:
        self._reap()
        return max(0, self.config.max_calls - len(self._calls))

    def _dial(
        self,
        uri: str,
        sink: Callable[[SipEvent], None],
        headers: dict[str, str],
        from_uri: str | None = None,
    ) -> int:
        # Count before building anything: a Call beyond the wheel's slots aborts the process.
        if self._free_slots() <= 0:
            raise NoCapacity(f"no free call slot for {uri}")
        assert self._account is not None
        key = next(self._keys)
        call = _Call(self, self._account, pj.PJSUA_INVALID_ID, key, sink)
        prm = pj.CallOpParam(True)
        for name, value in headers.items():
            header = pj.SipHeader()
            header.hName, header.hValue = name, value
            prm.txOption.headers.append(header)
        if from_uri:
            prm.txOption.localUri = from_uri
        try:
            call.makeCall(uri, prm)
        except Exception as exc:
            # No slot was kept (or pjsua reports the end itself): delete it after this poll.
            self._parked.append(call)
            raise EndpointError(f"cannot call {uri}: {_describe(exc)}") from None
        self._calls[key] = call
        return key

    def _connect(self, a: int, b: int) -> None:
        first, second = self._call(a), self._call(b)
        if first.audio is None or second.audio is None:
            raise EndpointError(f"calls {a} and {b} need audio to be bridged")
        first.audio.startTransmit(second.audio)
        second.audio.startTransmit(first.audio)
        first.peers.add(b)  # a hold/resume re-INVITE on either side connects them again
        second.peers.add(a)

    def _rx_level(self, key: int) -> int:
        # The caller's level is the call port's *tx* level in pjsua2's terms (what the port
        # transmits into the bridge); getRxLevel stayed 0 while sipp played speech.
        call = self._call(key)
        return 0 if call.audio is None else int(call.audio.getTxLevel())


def _describe(exc: BaseException) -> str:
    """pjsua2's `Error` prints as an empty string; its `info()` says what went wrong."""
    info = getattr(exc, "info", None)
    if callable(info):
        with contextlib.suppress(Exception):
            return str(info())
    return str(exc) or type(exc).__name__


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
