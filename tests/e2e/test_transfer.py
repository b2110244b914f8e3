"""Bridged transfers with real calls: sipp is the caller and, as a UAS, the advisor's phone.

The worker (tests/e2e/app.py) answers `xfer-PORT-RING_MS`, records the call and transfers it to
`sip:advisor@127.0.0.1:PORT`. Both phones' audio is an `RtpPeer`: it hears what the worker sends
and speaks sipp's g711a.pcap speech back, so each direction of the bridge can be checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import (
    RtpPeer,
    RunningUas,
    Sipp,
    WorkerProcess,
    free_udp_port,
    loud_packets,
    require_tools,
    wav_info,
)

HOLD = "+15550100003"


@pytest.fixture
def peers() -> Iterator[list[RtpPeer]]:
    made: list[RtpPeer] = []
    yield made
    for peer in made:
        peer.close()


@pytest.fixture
def uases() -> Iterator[list[RunningUas]]:
    made: list[RunningUas] = []
    yield made
    for uas in made:
        uas.stop()


def events_of(worker: WorkerProcess, prefix: str, kind: str) -> list[dict]:
    return [e for e in worker.of_call(prefix) if e["event"] == kind]


def test_answered_transfer_bridges_both_ways_and_records_each_leg(
    worker: WorkerProcess,
    sipp: Sipp,
    peers: list[RtpPeer],
    uases: list[RunningUas],
) -> None:
    caller_phone, advisor_phone = RtpPeer(), RtpPeer()
    peers += [caller_phone, advisor_phone]
    advisor = sipp.start_uas("advisor_answer.xml", rtp_sink=advisor_phone.port, hold_ms=500)
    uases.append(advisor)
    result = sipp.run(
        "hold.xml",
        service=f"xfer-{advisor.port}-5000",
        call_id="bridge",
        hold_ms=3500,
        rtp_sink=caller_phone.port,
    )
    assert result.returncode == 0, result.describe()
    assert result.count("GenericCounter3") == 1
    far = advisor.wait()
    assert far.returncode == 0, far.describe()  # answered, got the worker's BYE after ours
    assert "\nBYE sip:" in far.messages

    done = worker.wait_for(lambda e: e["event"] == "transfer" and e["call"].startswith("bridge"))
    assert done["status"] == "answered"
    assert done["contact"] == advisor.uri
    (recs,) = [
        e["recordings"]
        for e in worker.wait_for_all(lambda e: e["event"] == "recordings", "bridge", 1)
    ]
    by_role = {r["role"]: r for r in recs}
    assert set(by_role) == {"caller", "advisor"}
    assert {r["kind"] for r in recs} == {"call"}
    uuid = worker.of_call("bridge")[-1]["uuid"]
    for role, rec in by_role.items():
        path = Path(rec["path"])
        assert path.name == f"{uuid}-{role}.wav"
        assert path.parent.parent.parent.parent.name == "recordings"  # YYYY/MM/DD
        seconds, peak, digest = wav_info(path)
        assert digest == rec["sha256"]
        assert seconds == pytest.approx(rec["duration_s"])
        assert peak > 2000, f"the {role} leg recording is silence"
    # caller leg: answer → hang-up (3.5 s); advisor leg: bridge (≈0.5 s later) → hang-up
    assert 3.0 < by_role["caller"]["duration_s"] < 4.5
    assert 2.2 < by_role["advisor"]["duration_s"] < by_role["caller"]["duration_s"]

    # caller → advisor: the advisor's phone heard the caller's speech through the bridge
    assert len(loud_packets(advisor_phone.drain())) >= 25
    # advisor → caller: after the answer the caller hears the advisor (ringback stopped)
    answered_at = far.message_times("SIP/2.0 200")[0]  # then the 200 to our BYE
    heard = [p for p in caller_phone.drain() if p.at > answered_at + 0.3]
    assert len(loud_packets(heard)) >= 25
    worker.wait_idle()


def test_advisor_hanging_up_ends_the_call_for_the_caller(
    worker: WorkerProcess, sipp: Sipp, peers: list[RtpPeer], uases: list[RunningUas]
) -> None:
    advisor_phone = RtpPeer()
    peers.append(advisor_phone)
    advisor = sipp.start_uas("advisor_hangup.xml", rtp_sink=advisor_phone.port, hold_ms=800)
    uases.append(advisor)
    result = sipp.run(
        "wait_bye.xml", service=f"xfer-{advisor.port}-5000", call_id="advbye", timeout=8
    )
    assert result.returncode == 0, result.describe()  # the caller got the worker's BYE
    assert advisor.wait().returncode == 0
    done = worker.wait_for(lambda e: e["event"] == "transfer" and e["call"].startswith("advbye"))
    assert done["status"] == "answered"
    assert not events_of(worker, "advbye", "fallback")
    worker.wait_idle()


def test_unanswered_transfer_times_out_cancels_and_falls_back(
    worker: WorkerProcess, sipp: Sipp, uases: list[RunningUas]
) -> None:
    advisor = sipp.start_uas("advisor_ring.xml")
    uases.append(advisor)
    result = sipp.run("wait_bye.xml", service=f"xfer-{advisor.port}-1500", call_id="noans")
    assert result.returncode == 0, result.describe()  # the fallback ended with our BYE
    far = advisor.wait()
    assert far.returncode == 0, far.describe()  # CANCEL, 200, 487, ACK
    assert "\nCANCEL sip:" in far.messages
    done = worker.wait_for(lambda e: e["event"] == "transfer" and e["call"].startswith("noans"))
    assert done["status"] == "no_answer"
    assert 1400 <= done["after_ms"] < 2500
    worker.wait_for(lambda e: e["event"] == "fallback" and e["call"].startswith("noans"))
    worker.wait_idle()


def test_busy_advisor_returns_busy_then_falls_back(
    worker: WorkerProcess, sipp: Sipp, uases: list[RunningUas]
) -> None:
    advisor = sipp.start_uas("advisor_busy.xml")
    uases.append(advisor)
    result = sipp.run("wait_bye.xml", service=f"xfer-{advisor.port}-5000", call_id="busy")
    assert result.returncode == 0, result.describe()  # the fallback ended with our BYE
    assert advisor.wait().returncode == 0
    done = worker.wait_for(lambda e: e["event"] == "transfer" and e["call"].startswith("busy"))
    assert done["status"] == "busy"
    assert done["after_ms"] < 1500
    worker.wait_for(lambda e: e["event"] == "fallback" and e["call"].startswith("busy"))
    worker.wait_idle()


def test_first_to_answer_wins_and_the_other_leg_is_cancelled(
    worker: WorkerProcess, sipp: Sipp, peers: list[RtpPeer], uases: list[RunningUas]
) -> None:
    advisor_phone = RtpPeer()
    peers.append(advisor_phone)
    ringing = sipp.start_uas("advisor_ring.xml")
    answering = sipp.start_uas("advisor_answer.xml", rtp_sink=advisor_phone.port, hold_ms=300)
    uases += [ringing, answering]
    result = sipp.run("hold.xml", service=f"xfer-{ringing.port}.{answering.port}-5000",
                      call_id="race", hold_ms=1500)  # fmt: skip
    assert result.returncode == 0, result.describe()
    assert ringing.wait().returncode == 0  # it was cancelled
    assert answering.wait().returncode == 0
    done = worker.wait_for(lambda e: e["event"] == "transfer" and e["call"].startswith("race"))
    assert done == {**done, "status": "answered", "contact": answering.uri}
    worker.wait_idle()


def test_caller_hanging_up_while_it_rings_cancels_the_advisor(
    worker: WorkerProcess, sipp: Sipp, uases: list[RunningUas]
) -> None:
    advisor = sipp.start_uas("advisor_ring.xml")
    uases.append(advisor)
    result = sipp.run("hold.xml", service=f"xfer-{advisor.port}-10000", call_id="gone",
                      hold_ms=1000)  # fmt: skip
    assert result.returncode == 0, result.describe()
    far = advisor.wait()
    assert far.returncode == 0, far.describe()
    assert "\nCANCEL sip:" in far.messages
    done = worker.wait_for(lambda e: e["event"] == "transfer" and e["call"].startswith("gone"))
    assert done["status"] == "caller_hung_up"
    assert done["after_ms"] < 2000
    stats = worker.wait_idle()  # no Call object, channel or leg left behind
    assert stats["free_slots"] == 4
    assert not events_of(worker, "gone", "fallback")


def test_the_flow_engines_transfer_step_bridges_a_real_call(
    worker: WorkerProcess, sipp: Sipp, peers: list[RtpPeer], uases: list[RunningUas]
) -> None:
    """`transfer:` in a YAML flow: answered → the flow ends as a transfer when the call ends."""
    advisor_phone = RtpPeer()
    peers.append(advisor_phone)
    advisor = sipp.start_uas("advisor_answer.xml", rtp_sink=advisor_phone.port, hold_ms=200)
    uases.append(advisor)
    result = sipp.run("hold.xml", service=f"flowxfer-{advisor.port}", call_id="flowok",
                      hold_ms=2500)  # fmt: skip
    assert result.returncode == 0, result.describe()  # the caller hung up on a bridged call
    assert advisor.wait().returncode == 0  # and the advisor got the BYE
    done = worker.wait_for(lambda e: e["event"] == "flow_result" and e["call"].startswith("flowok"))
    assert done == {**done, "outcome": "transfer", "contact": advisor.uri}
    assert done["said"] == ["Connecting."]
    (recs,) = [e["recordings"] for e in worker.wait_for_all(
        lambda e: e["event"] == "recordings", "flowok", 1)]  # fmt: skip
    assert sorted(r["role"] for r in recs) == ["advisor", "caller"]
    worker.wait_idle()


def test_the_flow_engines_transfer_step_falls_back_when_nobody_answers(
    worker: WorkerProcess, sipp: Sipp, uases: list[RunningUas]
) -> None:
    advisor = sipp.start_uas("advisor_ring.xml")
    uases.append(advisor)
    result = sipp.run("wait_bye.xml", service=f"flowxfer-{advisor.port}", call_id="flowna")
    assert result.returncode == 0, result.describe()  # the flow's hangup step sent the BYE
    assert advisor.wait().returncode == 0  # cancelled after the ring time
    done = worker.wait_for(lambda e: e["event"] == "flow_result" and e["call"].startswith("flowna"))
    assert done["outcome"] == "hangup"
    assert done["said"] == ["Connecting.", "Nobody is free. Goodbye."]
    assert any(note.endswith(": no_answer") for note in done["notes"]), done["notes"]
    worker.wait_idle()


def test_no_free_slot_fails_the_transfer_cleanly(worker: WorkerProcess, sipp: Sipp) -> None:
    """Three callers hold three slots, the fourth caller's transfer finds none: `failed`, the
    fallback runs, the process lives on."""
    holding = sipp.start("hold.xml", service=HOLD, call_id="full", calls=3, concurrent=3,
                         rate=100, hold_ms=3000)  # fmt: skip
    worker.wait_for_all(lambda e: e["event"] == "greeted", "full-", 3)
    nobody = free_udp_port()  # never dialled
    result = sipp.run("wait_bye.xml", service=f"xfer-{nobody}-5000", call_id="noslot")
    assert result.returncode == 0, result.describe()
    done = worker.wait_for(lambda e: e["event"] == "transfer" and e["call"].startswith("noslot"))
    assert done["status"] == "failed"
    assert done["after_ms"] < 1500
    worker.wait_for(lambda e: e["event"] == "fallback" and e["call"].startswith("noslot"))
    assert holding.wait().returncode == 0
    assert worker.alive
    assert worker.wait_idle()["free_slots"] == 4


@pytest.fixture
def reserving_worker(tmp_path: Path) -> Iterator[WorkerProcess]:
    require_tools()
    process = WorkerProcess(tmp_path, "--outbound-reserve", "1")
    try:
        yield process
    finally:
        process.close()


def test_outbound_reserve_keeps_a_slot_from_inbound_calls(
    reserving_worker: WorkerProcess, tmp_path: Path
) -> None:
    sipp = Sipp(tmp_path, f"127.0.0.1:{reserving_worker.port}")
    result = sipp.run("hold.xml", service=HOLD, call_id="resv", calls=4, concurrent=4, rate=100,
                      hold_ms=1200)  # fmt: skip
    assert result.returncode == 0, result.describe()
    assert result.count("GenericCounter3") == 3  # answered
    assert result.count("GenericCounter1") == 1  # 486: the last slot is for an advisor leg
    assert reserving_worker.wait_idle()["free_slots"] == 4
