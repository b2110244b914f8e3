"""`driveline --log-format json sip`: one JSON object per log line, and every line of a call
carries that call's id, over a real call (sipp) to the real worker (demo store, fake voice)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import REPO, RtpSink, Sipp, free_udp_port, require_tools

DID = "+15550100100"
CALLER = "+15550200002"  # demo customer 2


class JsonWorker:
    def __init__(self, workdir: Path, redis_url: str) -> None:
        self.port = free_udp_port()
        env = {
            **os.environ,
            "DRIVELINE_DATABASE_URL": f"sqlite:///{workdir / 'driveline.db'}",
            "DRIVELINE_REDIS_URL": redis_url,
            "DRIVELINE_PROMPTS_DIR": str(workdir / "prompts"),
            "DRIVELINE_RECORDINGS_DIR": str(workdir / "recordings"),
            "DRIVELINE_FLOWS_DIR": str(REPO / "flows"),
            "DRIVELINE_OUTBOUND_CALLS": "false",
        }
        cli = [sys.executable, "-m", "driveline"]
        subprocess.run([*cli, "demo-data"], env=env, cwd=workdir, check=True, capture_output=True)
        self.stderr_path = workdir / "worker.stderr"
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [*cli, "--log-format", "json", "sip", "--fake-tts", "--bind", f"127.0.0.1:{self.port}"],
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.ready = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()
        if not self.ready.wait(60):
            self.stop()
            pytest.fail("the worker did not start:\n" + self.stderr_path.read_text()[-3000:])

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("sip worker ready"):
                self.ready.set()

    def stop(self) -> list[str]:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._stderr.close()
        return self.stderr_path.read_text().splitlines()


@pytest.fixture
def json_worker(tmp_path: Path, redis_url: str) -> Iterator[JsonWorker]:
    require_tools()
    worker = JsonWorker(tmp_path, redis_url)
    try:
        yield worker
    finally:
        worker.stop()


def test_every_line_of_a_call_carries_its_call_id(json_worker: JsonWorker, tmp_path: Path) -> None:
    (tmp_path / "sipp").mkdir()
    sipp = Sipp(tmp_path / "sipp", f"127.0.0.1:{json_worker.port}")
    sink = RtpSink()
    try:
        result = sipp.run(
            "hold.xml", service=DID, call_id="logs", caller=CALLER, hold_ms=2500,
            rtp_sink=sink.port, timeout=15,
        )  # fmt: skip
    finally:
        sink.close()
    assert result.returncode == 0, result.describe()
    lines = json_worker.stop()

    records: list[dict[str, Any]] = []
    for line in lines:
        if line.strip():
            records.append(json.loads(line))  # every stderr line is one JSON object
    assert all({"ts", "level", "logger", "msg"} <= r.keys() for r in records)

    start = next(i for i, r in enumerate(records) if r["msg"].startswith("INVITE did="))
    call_id = records[start].get("call_id")
    assert call_id, records[start]
    end = max(i for i, r in enumerate(records) if r.get("call_id") == call_id)
    of_call = records[start : end + 1]
    # The call's whole life: offered, answered, the flow ran, it ended.
    assert any(r["msg"].startswith("answered") for r in of_call)
    assert any(r["msg"].startswith("call done") for r in of_call)
    assert len(of_call) >= 4
    strays = [r for r in of_call if r.get("call_id") != call_id]
    assert not strays, f"lines during the call without its id: {strays}"
    # Lines naming the SIP call (the channel's own) are the same call.
    named = [r for r in records if str(r.get("call", "")).startswith("logs-")]
    assert named and all(r.get("call_id") == call_id for r in named)
