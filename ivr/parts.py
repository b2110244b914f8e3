"""A `driveline serve` part that runs on a thread of its own: the one way to write one.

`serve` runs the call writer, the transcriber, the speech service, the drop folder, the
morning summary and retention in one process (driveline/supervisor.py starts them, polls
`alive()` and stops them). Each used to carry its own copy of the thread, the stop event and
the join; here they only say what runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class ThreadPart:
    """`run(stopping)` on a daemon thread named `name`, until `stopping` is set.

    A part whose `run` returns or raises is dead: the supervisor then stops the server, so a
    `run` that must survive a failing dependency catches it itself (see `every`).
    """

    def __init__(
        self, name: str, run: Callable[[threading.Event], None], *, join_s: float = 30.0
    ) -> None:
        self.name, self.run, self.join_s = name, run, join_s
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.run, args=(self.stopping,), name=self.name, daemon=True
        )
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=self.join_s)


def every(
    interval_s: float, tick: Callable[[], object], what: str
) -> Callable[[threading.Event], None]:
    """A `run` calling `tick` every `interval_s`. A failed tick (the database or Redis away, a
    file gone) is logged as "`what` failed" and tried again on the next: it never stops the
    server."""

    def run(stopping: threading.Event) -> None:
        while not stopping.is_set():
            try:
                tick()
            except Exception:  # noqa: BLE001 - whatever failed, the next tick tries again
                log.exception("%s failed", what)
            stopping.wait(interval_s)

    return run
