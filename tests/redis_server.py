"""A private `redis-server` a test may stop and start again on the same port: what a Redis
restart looks like to the processes using it. The shared test Redis is never touched."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.e2e.harness import free_tcp_port
from tests.needs import require


class RedisServer:
    """`redis-server` on a free loopback port, no persistence of its own (`--save ''`,
    `--appendonly no`); `stop(keep_data=True)` saves once, like a Redis with persistence that
    is restarted, and the next `start` loads it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_tcp_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = directory / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        # No retries: redis-py's default backs off for seconds on a server that is away.
        return redis.Redis(
            port=self.port, socket_connect_timeout=1, socket_timeout=2, retry=Retry(NoBackoff(), 0)
        )

    def start(self, timeout: float = 5.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--logfile",
                str(self.log),
                "--daemonize",
                "no",
            ],  # fmt: skip
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        client = self.client()
        while True:
            try:
                if client.ping():
                    break
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text()[-2000:] if self.log.exists() else ""
                raise RuntimeError(f"redis-server on {self.port} did not answer:\n{tail}")
            time.sleep(0.02)
        client.close()

    def stop(self, *, keep_data: bool = False, timeout: float = 5.0) -> None:
        """Shut it down (its clients see their connections drop); `keep_data`: save first."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.client().shutdown(save=keep_data, nosave=not keep_data)
        except redis.ConnectionError:
            pass  # the connection drops as it goes
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        if not keep_data:
            (self.directory / "dump.rdb").unlink(missing_ok=True)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A running private Redis for one test, stopped at the end whatever state it is in."""
    require(shutil.which("redis-server"), "restart tests need redis-server (apt install redis)")
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
