"""Hold and resume by re-INVITE (a=sendonly / a=inactive, then a=sendrecv) on a real call.

The caller holds 0.3 s after the answer, resumes, and presses 1 behind the echo handler's
gather: each re-INVITE gets 200 OK, the call is not torn down, and the digit still arrives.
With a short RTP watchdog, a caller held (silent) for longer than its timeout stays up.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import RtpSink, Sipp, WorkerProcess, loud_packets, require_tools

ECHO, TYPEAHEAD = "+15550100001", "+15550100010"


DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


def _ok_directions(messages: str) -> list[str]:
    """The SDP directions in the worker's 200 OKs to INVITEs, in order."""
    directions = []
    for block in messages.split("-" * 47 + " ")[1:]:
        body = block.partition("\n")[2].split("\n\n", 1)[-1]
        to_invite = "INVITE" in body.split("CSeq:", 1)[-1][:20]
        if body.lstrip().startswith("SIP/2.0 200") and to_invite:
            found = [d for d in DIRECTIONS if f"a={d}" in body]
            directions.append(found[0] if found else "sendrecv")
    return directions


@pytest.mark.parametrize("direction", ["sendonly", "inactive"])
def test_hold_and_resume_keep_the_call(worker: WorkerProcess, sipp: Sipp, direction: str) -> None:
    call_id = f"hold-{direction}"
    result = sipp.run(
        "reinvite_hold.xml", service=ECHO, call_id=call_id, hold_ms=1000,
        keys={"hold_dir": direction},
    )  # fmt: skip
    assert result.returncode == 0, result.describe()  # 200 to both re-INVITEs, our BYE at the end
    assert result.count("SuccessfulCall") == 1
    # answer, hold (we only receive, or nothing), resume
    expected_hold = "recvonly" if direction == "sendonly" else "inactive"
    assert _ok_directions(result.messages) == ["sendrecv", expected_hold, "sendrecv"]
    gathered = worker.wait_for(lambda e: e["event"] == "gathered" and e["call"].startswith(call_id))
    assert gathered["digits"] == "1"  # pressed after the resume
    assert gathered["holds"] == [True, False]
    worker.wait_idle()


@pytest.fixture
def watchdog_worker(tmp_path: Path) -> Iterator[WorkerProcess]:
    require_tools()
    process = WorkerProcess(tmp_path, "--rtp-timeout", "1.5")
    try:
        yield process
    finally:
        process.close()


@pytest.mark.parametrize("direction", ["sendonly", "inactive"])
def test_held_caller_is_not_hung_up_by_the_rtp_watchdog(
    watchdog_worker: WorkerProcess, tmp_path: Path, direction: str
) -> None:
    """Held for 3.5 s with a 1.5 s watchdog (which hangs up a silent caller not on hold, see
    test_worker_process.py): the call survives the hold and completes normally."""
    sipp = Sipp(tmp_path, f"127.0.0.1:{watchdog_worker.port}")
    result = sipp.run(
        "reinvite_hold.xml", service=ECHO, call_id="held", hold_ms=3500,
        keys={"hold_dir": direction}, timeout=12,
    )  # fmt: skip
    assert result.returncode == 0, result.describe()
    gathered = watchdog_worker.wait_for(
        lambda e: e["event"] == "gathered" and e["call"].startswith("held")
    )
    assert gathered["digits"] == "1"
    assert gathered["holds"] == [True, False]
    watchdog_worker.wait_idle()


def test_prompt_audio_stops_while_held_and_resumes_after(
    worker: WorkerProcess, sipp: Sipp, rtp_sink: RtpSink
) -> None:
    """The 1.8 s greeting of the type-ahead handler plays across a 0.5 s hold: the caller hears
    it again after the resume (the players follow a rebuilt stream), and the 1 pressed after
    the resume, still during the greeting, is type-ahead for the gather."""
    result = sipp.run(
        "reinvite_hold.xml", service=TYPEAHEAD, call_id="holdaudio", hold_ms=500,
        rtp_sink=rtp_sink.port, keys={"hold_dir": "sendonly"},
    )  # fmt: skip
    assert result.returncode == 0, result.describe()
    gathered = worker.wait_for(
        lambda e: e["event"] == "gathered" and e["call"].startswith("holdaudio")
    )
    assert gathered["digits"] == "1"
    _, hold_at, resume_at = result.message_times("INVITE")
    loud = [p.at for p in loud_packets(rtp_sink.drain())]
    print(f"\nloud RTP: {len(loud)} packets; before hold {sum(t < hold_at for t in loud)}, "
          f"held {sum(hold_at + 0.1 < t < resume_at for t in loud)}, "
          f"after resume {sum(t > resume_at for t in loud)}")  # fmt: skip
    assert sum(t < hold_at for t in loud) >= 5  # the greeting started before the hold
    assert sum(hold_at + 0.1 < t < resume_at for t in loud) == 0  # silent while held
    assert sum(t > resume_at for t in loud) >= 10  # and heard again after the resume
    worker.wait_idle()
