"""Hearing the caller during a speech gather: a pjsua2 media port feeding the endpointer.

`Listener.attach` takes a `pj.AudioMediaPort` (8 kHz, mono, 16-bit, 20 ms) on the pjsua2 thread
and connects the call's audio to it. pjsua2 calls `onFrameReceived` on the media clock thread
for every 20 ms frame: that callback only copies the bytes and hands them to the asyncio loop
(`call_soon_threadsafe`), where `Endpointer` (sip/vad.py) judges them and the listener sets
`started` (barge-in) and then `utterance`. `detach` disconnects the port on the pjsua2 thread
again; a gather attaches for its own length only.

Ports are never deleted while the library runs: a detached port goes back to the endpoint's
`spare_ports` and serves a later gather once it has rested (`REST_S`, so the bridge's queued
disconnect has long been done and no frame of the previous call can reach the next one).
pjsip 2.15's conference bridge removes ports asynchronously; deleting an `AudioMediaPort` right
after its disconnect let the clock thread use freed memory: 1 run in 3 of 64 concurrent calls
(`python -m bench.sip_load --steps 64`) lost a worker to SIGSEGV, right after a speech gather.
Nor after it: a port deleted once the bridge is destroyed aborts the process, so the ports left
when the library stops are disowned (`disown_port`), not deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable

import pjsua2 as pj

from sip.endpoint import EndpointError, SipEndpoint, disown_port
from sip.vad import RATE, Endpointer, Pause, SpeechStarted, Utterance

log = logging.getLogger(__name__)

REST_S = 0.5  # a spare port is reused only this long after its disconnect (25 clock ticks)
BACKLOG_CHUNKS = 500  # 10 s of pjsua's 20 ms frames kept while an utterance is recognised


_PORT_NAMES = itertools.count(1)


class _Port(pj.AudioMediaPort):
    def __init__(self, sink: Callable[[bytes], None]) -> None:
        super().__init__()
        self.sink = sink

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        # Media clock thread: copy and hand off, nothing else (an exception here would abort).
        try:
            if frame.size:
                self.sink(bytes(frame.buf))
        except Exception:  # noqa: BLE001
            return


class Listener:
    """One gather's ear on one call. `started` and `changed` are set on the asyncio loop."""

    def __init__(
        self, endpoint: SipEndpoint, key: int, on_change: Callable[[], None], **vad: float
    ) -> None:
        self.endpoint = endpoint
        self.key = key
        self.on_change = on_change
        self._vad = vad
        self.endpointer = Endpointer(**vad)  # type: ignore[arg-type]
        self.started = False
        self.started_at: float | None = None  # loop (monotonic) time speech started
        self.utterance: Utterance | None = None
        self.pause: bytes | None = None  # the utterance as it stood at the caller's last pause
        # A recognition started at that pause (pcm, task): reused if the utterance ends there.
        self.guess: tuple[bytes, asyncio.Future[object]] | None = None
        self.speech_ended_at: float | None = None  # loop time of the utterance's end
        # Audio heard after the utterance, while it is recognised: `rearm` listens to it first.
        self._backlog: deque[bytes] = deque(maxlen=BACKLOG_CHUNKS)
        self._port: _Port | None = None
        self._loop = asyncio.get_running_loop()

    async def attach(self) -> None:
        loop = self._loop

        def sink(data: bytes) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed under us
                loop.call_soon_threadsafe(self._feed, data)

        def build() -> _Port:
            call = self.endpoint._call(self.key)
            if call.audio is None:
                raise EndpointError(f"call {self.key} has no audio yet")
            port = self._spare() or self._new_port()
            try:
                call.audio.startTransmit(port)
            except Exception:
                self.endpoint.spare_ports.append((time.monotonic(), port))
                raise
            port.sink = sink
            return port

        self._port = await self.endpoint.submit(build)

    def _spare(self) -> _Port | None:
        """A rested spare port (pjsua2 thread)."""
        spares = self.endpoint.spare_ports
        for i, (released_at, port) in enumerate(spares):
            if time.monotonic() - released_at >= REST_S:
                del spares[i]
                return port  # type: ignore[no-any-return]
        return None

    def _new_port(self) -> _Port:
        port = _Port(lambda data: None)
        fmt = pj.MediaFormatAudio()
        fmt.init(pj.PJMEDIA_FORMAT_PCM, RATE, 1, 20000, 16)
        port.createPort(f"listen-{next(_PORT_NAMES)}", fmt)
        return port

    async def detach(self) -> None:
        if self.guess is not None and not self.guess[1].done():
            self.guess[1].cancel()
        port, self._port = self._port, None
        if port is None:
            return
        port.sink = lambda data: None

        def release() -> None:
            call = self.endpoint._calls.get(self.key)
            if call is not None and call.audio is not None:
                with contextlib.suppress(Exception):
                    call.audio.stopTransmit(port)
            # An ended call's audio has left the bridge with its connections.
            self.endpoint.spare_ports.append((time.monotonic(), port))

        try:
            await self.endpoint.submit(release)
        except EndpointError:  # the endpoint stopped: the library is gone with its ports
            disown_port(port)

    def _feed(self, data: bytes) -> None:
        if self.utterance is not None:
            self._backlog.append(data)
            return
        for event in self.endpointer.feed(data):
            if isinstance(event, SpeechStarted):
                self.started, self.started_at = True, self._loop.time()
            elif isinstance(event, Pause):
                self.pause = event.pcm
            elif isinstance(event, Utterance):
                self.utterance = event
                self.speech_ended_at = self._loop.time()
            self.on_change()

    def rearm(self) -> None:
        """Listen for a new utterance: the last one held no words (a cough, a noise, music)."""
        if self.guess is not None and not self.guess[1].done():
            self.guess[1].cancel()
        self.endpointer = Endpointer(**self._vad)  # type: ignore[arg-type]
        self.utterance, self.pause, self.guess = None, None, None
        self.started_at, self.speech_ended_at = None, None
        backlog, self._backlog = list(self._backlog), deque(maxlen=BACKLOG_CHUNKS)
        for data in backlog:  # what the caller said while the recogniser worked
            self._feed(data)

    def flush(self) -> Utterance | None:
        """Stop listening now: the utterance so far, if the caller was speaking."""
        if self.utterance is None:
            self.utterance = self.endpointer.flush()
        return self.utterance
