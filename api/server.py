"""The API as a `driveline serve` part (driveline/supervisor.py's `Part`): uvicorn in a thread."""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn


class ApiServer:
    """uvicorn in a thread of this process, so the supervisor owns signals and shutdown."""

    name = "api"

    def __init__(self, app: Any, host: str, port: int, startup_timeout_s: float = 30) -> None:
        self.server = uvicorn.Server(
            # proxy_headers off: the app believes X-Forwarded-* only from its own
            # `forwarded_allow_ips` (api/app.py), the same under uvicorn and in tests.
            uvicorn.Config(
                app, host=host, port=port, log_config=None, access_log=False, proxy_headers=False
            )
        )
        self.startup_timeout_s = startup_timeout_s
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.run, name="api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start (is the port in use?)")
            time.sleep(0.02)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        sock = self.server.servers[0].sockets[0]
        return int(sock.getsockname()[1])

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
