"""A TCP proxy in front of the test database, to cut it off the way a database host goes away.

`cut()` breaks every open connection and then holds each new one without a word, the way a
server that stopped answering (or a host behind a dead route) looks to a client: a connection
attempt waits until the client's own connect timeout. `restore()` lets the held attempts fail
(the client retries) and forwards again. Threads only; each connection is two pumping threads.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port: int = self.listener.getsockname()[1]
        self.forwarded = 0  # connections passed through
        self.held = 0  # connection attempts held while cut
        self._cut = False
        self._open: set[socket.socket] = set()  # forwarded sockets, both ends
        self._waiting: set[socket.socket] = set()  # attempts held while cut
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True, name="tcp-proxy")
        self._thread.start()

    @property
    def url_host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            broken, self._open = self._open, set()
        for sock in broken:
            _close(sock)

    def restore(self) -> None:
        with self._lock:
            self._cut = False
            waiting, self._waiting = self._waiting, set()
        for sock in waiting:
            _close(sock)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=2)
        self.listener.close()
        self.cut()
        self.restore()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)  # the listener's accept timeout is not the connection's
            with self._lock:
                if self._cut:
                    self._waiting.add(client)
                    self.held += 1
                    continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open |= {client, upstream}
                self.forwarded += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open -= {src, dst}
            _close(src)
            _close(dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
