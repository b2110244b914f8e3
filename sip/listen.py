"""Hearing the caller during a speech gather: a pjsua2 media port feeding the endpointer.

`Listener.attach` builds a `pj.AudioMediaPort` (8 kHz, mono, 16-bit, 20 ms) on the pjsua2 thread
and connects the call's audio to it. pjsua2 calls `onFrameReceived` on the media clock thread
for every 20 ms frame: that callback only copies the bytes and hands them to the asyncio loop
(`call_soon_threadsafe`), where `Endpointer` (sip/vad.py) judges them and the listener sets
`started` (barge-in) and then `utterance`. `detach` disconnects and deletes the port on the
pjsua2 thread again; a gather attaches for its own length only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import pjsua2 as pj

from sip.endpoint import EndpointError, SipEndpoint
from sip.vad import RATE, Endpointer, Pause, SpeechStarted, Utterance

log = logging.getLogger(__name__)


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
        self.endpointer = Endpointer(**vad)  # type: ignore[arg-type]
        self.started = False
        self.started_at: float | None = None  # loop (monotonic) time speech started
        self.utterance: Utterance | None = None
        self.pause: bytes | None = None  # the utterance as it stood at the caller's last pause
        # A recognition started at that pause (pcm, task): reused if the utterance ends there.
        self.guess: tuple[bytes, asyncio.Future[object]] | None = None
        self.speech_ended_at: float | None = None  # loop time of the utterance's end
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
            port = _Port(sink)
            fmt = pj.MediaFormatAudio()
            fmt.init(pj.PJMEDIA_FORMAT_PCM, RATE, 1, 20000, 16)
            port.createPort(f"listen-{self.key}", fmt)
            call.audio.startTransmit(port)
            return port

        self._port = await self.endpoint.submit(build)

    async def detach(self) -> None:
        if self.guess is not None and not self.guess[1].done():
            self.guess[1].cancel()
        port, self._port = self._port, None
        if port is None:
            return
        port.sink = lambda data: None
        holder = [port]
        del port

        def destroy() -> None:
            dead = holder.pop()
            call = self.endpoint._calls.get(self.key)
            if call is not None and call.audio is not None:
                with contextlib.suppress(Exception):
                    call.audio.stopTransmit(dead)
            del dead  # the port leaves the bridge when deleted, on the pjsua2 thread

        try:
            await self.endpoint.submit(destroy)
        except EndpointError:  # the endpoint stopped: the library is gone with its ports
            holder.clear()

    def _feed(self, data: bytes) -> None:
        if self.utterance is not None:
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

    def flush(self) -> Utterance | None:
        """Stop listening now: the utterance so far, if the caller was speaking."""
        if self.utterance is None:
            self.utterance = self.endpointer.flush()
        return self.utterance
