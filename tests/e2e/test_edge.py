"""Kamailio (`driveline edge`'s configuration) in front of two real SIP workers on loopback.

One module-wide stack: `driveline sip --workers 2` on free ports and Kamailio on another, with
a 1 s OPTIONS probe, a 1 s failover timeout, 127.0.0.1 and 127.0.0.2 trusted and a pike limit
of 20 requests per 2 s. Callers go through the edge with hold_proxy.xml (Record-Route aware).
The flood test runs last: pike blocks the flooding address for a while.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ivr.config import Settings
from sip.edge import EdgeFiles, options_ping, render
from tests.e2e.harness import (
    SCENARIOS,
    RunningSipp,
    Sipp,
    SippResult,
    free_udp_port,
)
from tests.e2e.stack import DEMO_CALLER, DEMO_DID, Proc, demo_env, kamailio_path, pool_pids

NO_STORE = "+15559990000"  # no store has it: the worker answers 404 without holding a slot


@dataclass
class Edge:
    kamailio: Proc
    pool: Proc
    files: EdgeFiles
    port: int
    base: int
    workdir: Path

    def calls(self, name: str, count: int, at_once: int, rate: int, hold_ms: int) -> RunningSipp:
        """`count` demo customers calling the demo store through the edge (hold_proxy.xml),
        at most `at_once` up together, each staying `hold_ms`; Call-IDs start with `name`."""
        directory = self.workdir / name
        directory.mkdir(exist_ok=True)
        return Sipp(directory, f"127.0.0.1:{self.port}").start(
            "hold_proxy.xml",
            service=DEMO_DID,
            caller=DEMO_CALLER,
            call_id=name,
            calls=count,
            concurrent=at_once,
            rate=rate,
            hold_ms=hold_ms,
            timeout=25,
        )

    def states(self) -> dict[int, str]:
        """Worker port → dispatcher flags (`AP`: active and probing; `IP`: inactive)."""
        out = subprocess.run(
            ["kamcmd", "-s", self.files.ctl_socket, "dispatcher.list"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
        found = re.findall(r"URI: sip:127\.0\.0\.1:(\d+)\s+FLAGS: (\w+)", out)
        return {int(port): flags for port, flags in found}

    def wait_state(self, port: int, flags: str, timeout: float) -> float:
        started = time.monotonic()
        while self.states().get(port) != flags:
            assert time.monotonic() - started < timeout, f"{port}: {self.states()}"
            time.sleep(0.05)
        return time.monotonic() - started

    def routed(self, call_prefix: str) -> dict[int, int]:
        """How many INVITEs of these calls Kamailio sent to each worker port (first tries)."""
        counts: dict[int, int] = {}
        for line in list(self.kamailio.lines):
            found = re.search(rf"cid:{call_prefix}-\S+ .*to worker sip:127\.0\.0\.1:(\d+)", line)
            if found:
                counts[int(found.group(1))] = counts.get(int(found.group(1)), 0) + 1
        return counts


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Edge]:
    kamailio = kamailio_path()
    workdir = tmp_path_factory.mktemp("edge")
    base, port = free_udp_port(2), free_udp_port()
    env = demo_env(workdir, redis_url, sip_drain_s="5")
    pool = Proc.driveline(
        ["sip", "--workers", "2", "--fake-tts", "--bind", f"127.0.0.1:{base}"], env, workdir
    )
    settings = Settings(
        sip_bind=f"127.0.0.1:{port}",
        edge_workers=[f"127.0.0.1:{base}", f"127.0.0.1:{base + 1}"],
        sip_trusted=["127.0.0.1", "127.0.0.2/32"],
        edge_probe_interval_s=1,
        edge_failover_ms=1000,
        edge_pike_density=20,
        edge_pike_window_s=2,
        edge_pike_block_s=10,
    )
    files = render(settings, workdir / "run")
    proxy = Proc(files.argv(kamailio), env, workdir, "kamailio")
    try:
        proxy.wait_for("driveline edge ready", timeout=10)
        pool.wait_for(rf"sip worker on port {base + 1} ready", timeout=40)
        pool.wait_for(rf"sip worker on port {base} ready", timeout=5)
        stack = Edge(proxy, pool, files, port, base, workdir)
        stack.wait_state(base, "AP", 10)
        stack.wait_state(base + 1, "AP", 10)
        yield stack
    finally:
        pool.close(timeout=20)
        proxy.close(timeout=10)


def test_health_checks_ping_the_edge_and_the_workers(edge: Edge) -> None:
    for port in (edge.port, edge.base, edge.base + 1):
        assert options_ping(f"127.0.0.1:{port}") == 200, port
    assert options_ping(f"127.0.0.1:{free_udp_port()}", timeout=0.5) is None


def test_calls_are_spread_over_both_workers(edge: Edge) -> None:
    result = edge.calls("spread", 8, at_once=4, rate=8, hold_ms=1500).wait()
    assert result.returncode == 0, result.describe()
    assert result.count("GenericCounter3") == 8  # all answered
    routed = edge.routed("spread")
    print(f"8 calls, 4 at a time, sent to the workers: {routed}")
    assert sum(routed.values()) == 8
    # Call-load selection: with 4 up at once, each worker carries some (a 4/4 split expected).
    assert routed.get(edge.base, 0) >= 2 and routed.get(edge.base + 1, 0) >= 2, routed


def test_a_worker_restarted_gracefully_loses_no_call(edge: Edge) -> None:
    """SIGTERM to one worker: it refuses new calls with 503 (the edge tries the other one),
    finishes its own, exits, and the pool starts it again."""
    port = edge.base + 1
    start = len(edge.pool.lines)
    calls = edge.calls("rolling", 8, at_once=4, rate=4, hold_ms=2000)
    edge.pool.wait_for(rf"sip-{port}: .*answered [\d.]+ ms after the INVITE", 10, start)
    os.kill(pool_pids(edge.pool)[port], signal.SIGTERM)
    result = calls.wait()
    assert result.returncode == 0, result.describe()
    assert result.count("GenericCounter3") == 8, result.describe()
    edge.pool.wait_for(rf"sip-{port}: .*draining: waiting for [1-4] call", 1, start)
    edge.pool.wait_for(rf"sip worker on port {port} exited \(code 0", timeout=15)
    refused = edge.pool.count(rf"sip-{port}: .*draining; 503")  # depends on timing
    print(f"calls refused 503 by the draining worker and placed on the other one: {refused}")
    edge.wait_state(port, "AP", timeout=30)  # back after its restart


def test_a_killed_worker_is_taken_out_and_no_new_call_fails(edge: Edge) -> None:
    victim_port = edge.base + 1
    os.kill(pool_pids(edge.pool)[victim_port], signal.SIGKILL)
    killed_at = time.monotonic()
    calls = edge.calls("failover", 10, at_once=3, rate=4, hold_ms=500)
    edge.wait_state(victim_port, "IP", timeout=10)
    print(f"killed worker marked down {time.monotonic() - killed_at:.2f}s after SIGKILL")
    result = calls.wait()
    assert result.returncode == 0, result.describe()
    assert result.count("GenericCounter3") == 10, result.describe()  # 0 failed new calls
    assert result.count("FailedCall") == 0
    retried = edge.kamailio.count(r"cid:failover-\S+ .*retrying")
    print(f"calls that failed over to the other worker: {retried}")
    # The pool starts it again on its port; the probe brings it back into the set.
    back_after = edge.wait_state(victim_port, "AP", timeout=30)
    print(f"restarted worker back in the set after {back_after:.1f}s more")
    again = edge.calls("back", 4, at_once=4, rate=8, hold_ms=1500).wait()
    assert again.count("GenericCounter3") == 4, again.describe()
    assert edge.routed("back").get(victim_port, 0) >= 1  # it takes calls again


def _flood(edge: Edge, source: str, calls: int, rate: int) -> SippResult:
    """`calls` INVITEs at `rate`/s from `source` (another loopback address) through the edge."""
    directory = edge.workdir / f"flood-{source}"
    directory.mkdir(exist_ok=True)
    stat_file = directory / "flood.csv"
    command = [
        "sipp", f"127.0.0.1:{edge.port}",
        "-sf", str(SCENARIOS / "flood.xml"),
        "-s", NO_STORE, "-key", "caller", "+15552010001",
        "-i", source, "-p", str(free_udp_port()),
        "-m", str(calls), "-l", str(calls), "-r", str(rate),
        "-cid_str", f"flood-{source}-%u@%s",
        "-timeout", "15s", "-timeout_error",
        "-trace_stat", "-stf", str(stat_file), "-nostdin",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, cwd=directory, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return RunningSipp(proc, stat_file, directory / "no-messages", timeout=40).wait()


def test_a_flood_from_one_address_is_cut_off_and_others_still_get_through(edge: Edge) -> None:
    flood = _flood(edge, "127.0.0.2", calls=120, rate=120)
    relayed, dropped = flood.count("GenericCounter2"), flood.count("GenericCounter1")
    print(f"flood of 120 INVITEs in 1 s: {relayed} relayed, {dropped} dropped by pike")
    assert relayed + dropped == 120, flood.describe()
    assert dropped >= 60, flood.describe()  # cut off after the first few dozen
    assert relayed >= 1  # it was trusted and routed until it flooded
    assert edge.kamailio.count(r"pike: flood from 127\.0\.0\.2") >= 1

    # Another trusted address is not affected.
    normal = edge.calls("calm", 1, at_once=1, rate=1, hold_ms=300).wait()
    assert normal.count("GenericCounter3") == 1, normal.describe()

    # An address not on the allow-list gets 403 and never reaches a worker.
    stranger = _flood(edge, "127.0.0.3", calls=1, rate=1)
    assert stranger.count("GenericCounter3") == 1, stranger.describe()
    assert edge.routed("flood-127.0.0.3") == {}
