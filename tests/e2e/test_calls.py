"""Real SIP calls from sipp to a pjsua2 worker process (tests/e2e/app.py picks handlers by DID).

Each test names its calls with its own Call-ID prefix, so the worker events it asserts on are
its own even though the worker process is shared by the module.
"""

from __future__ import annotations

import array
import wave

from tests.e2e.harness import RtpSink, Sipp, WorkerProcess

ECHO, LONG, HOLD, RECORD, FLOW = (
    "+15550100001",
    "+15550100002",
    "+15550100003",
    "+15550100004",
    "+15550100005",
)
SPEECH, SLOW, TYPEAHEAD = "+15550100006", "+15550100007", "+15550100010"
UNKNOWN = "+15559990000"
PCMA = 8


def test_options_ping_is_answered_200(sipp: Sipp) -> None:
    result = sipp.run("options.xml", service="driveline", call_id="options", timeout=5)
    assert result.returncode == 0, result.describe()
    assert result.count("SuccessfulCall") == 1


def test_answered_call_plays_prompt_audio(
    worker: WorkerProcess, sipp: Sipp, rtp_sink: RtpSink
) -> None:
    result = sipp.run(
        "hold.xml", service=HOLD, call_id="audio", hold_ms=1500, rtp_sink=rtp_sink.port
    )
    assert result.returncode == 0, result.describe()
    assert result.count("GenericCounter3") == 1  # answered
    packets = rtp_sink.drain()
    assert len(packets) >= 40, f"only {len(packets)} RTP packets in 1.5 s"
    assert {p.payload_type for p in packets} == {PCMA}  # the first codec we offered
    loud = [p for p in packets if p.peak() > 2000]
    assert len(loud) >= 10, "the greeting tone did not reach the caller"

    greeted = worker.wait_for(lambda e: e["event"] == "greeted" and e["call"].startswith("audio"))
    (invite_at,) = result.message_times("INVITE")
    (ok_at,) = [t for t in result.message_times("SIP/2.0 200") if t >= invite_at][:1]
    (ack_at,) = result.message_times("ACK")
    first_loud = loud[0].at - ack_at
    print(
        f"\nINVITE→200 OK seen by sipp: {(ok_at - invite_at) * 1000:.1f} ms;"
        f" in the worker: {greeted['invite_to_200_ms']} ms;"
        f" 200 OK→prompt started (worker): {greeted['answer_to_first_audio_ms']} ms;"
        f" ACK→first loud RTP at the caller: {first_loud * 1000:.1f} ms"
    )
    assert ok_at - invite_at < 1.0
    assert first_loud < 1.0


def test_rfc2833_digit_reaches_the_handler(worker: WorkerProcess, sipp: Sipp) -> None:
    result = sipp.run("dtmf_rfc2833.xml", service=ECHO, call_id="rfc2833")
    assert result.returncode == 0, result.describe()
    gathered = worker.wait_for(
        lambda e: e["event"] == "gathered" and e["call"].startswith("rfc2833")
    )
    assert gathered["digits"] == "1"
    assert gathered["methods"] == ["rfc2833"]


def test_sip_info_digit_reaches_the_handler(worker: WorkerProcess, sipp: Sipp) -> None:
    result = sipp.run("dtmf_info.xml", service=ECHO, call_id="info")
    assert result.returncode == 0, result.describe()
    gathered = worker.wait_for(lambda e: e["event"] == "gathered" and e["call"].startswith("info"))
    assert gathered["digits"] == "7"
    assert gathered["methods"] == ["sip_info"]


def test_digit_pressed_during_a_greeting_feeds_the_next_gather(
    worker: WorkerProcess, sipp: Sipp
) -> None:
    """The caller presses 1 at 1 s, during the 1.8 s greeting (a `say`, not a gather)."""
    result = sipp.run("dtmf_rfc2833.xml", service=TYPEAHEAD, call_id="typeahead")
    assert result.returncode == 0, result.describe()
    gathered = worker.wait_for(
        lambda e: e["event"] == "gathered" and e["call"].startswith("typeahead")
    )
    assert gathered["digits"] == "1"
    assert gathered["greeting_interrupted"] is False  # the say played out
    assert gathered["gather_ms"] < 300  # answered from the type-ahead, no prompt, no wait
    worker.wait_idle()


def test_unknown_number_is_refused_404(worker: WorkerProcess, sipp: Sipp) -> None:
    result = sipp.run("hold.xml", service=UNKNOWN, call_id="unknown", timeout=5)
    assert result.returncode == 0, result.describe()
    assert result.count("GenericCounter2") == 1  # 404
    assert result.count("GenericCounter3") == 0  # never answered
    offered = worker.wait_for(lambda e: e["event"] == "offered" and e["call"].startswith("unknown"))
    assert offered == {**offered, "did": UNKNOWN, "caller": "+15552010001", "known": False}
    worker.wait_idle()


def test_fifth_concurrent_call_is_refused_busy(worker: WorkerProcess, sipp: Sipp) -> None:
    result = sipp.run(
        "hold.xml", service=HOLD, call_id="five", calls=5, concurrent=5, rate=100, hold_ms=1500
    )
    assert result.returncode == 0, result.describe()
    assert result.count("SuccessfulCall") == 5
    assert result.count("GenericCounter3") == 4  # answered
    assert result.count("GenericCounter1") == 1  # 486 Busy Here
    assert "SIP/2.0 486 Busy Here" in result.messages
    assert worker.alive
    worker.wait_idle()
    hung_up = [e for e in worker.of_call("five") if e["event"] == "hung_up"]
    assert len(hung_up) == 4
    # and the worker still takes calls
    again = sipp.run("hold.xml", service=HOLD, call_id="after-five", hold_ms=200)
    assert again.returncode == 0 and again.count("GenericCounter3") == 1, again.describe()


def test_caller_hanging_up_mid_prompt_ends_the_call(worker: WorkerProcess, sipp: Sipp) -> None:
    result = sipp.run("hold.xml", service=LONG, call_id="midprompt", hold_ms=500)
    assert result.returncode == 0, result.describe()
    hung_up = worker.wait_for(lambda e: e["event"] == "hung_up" and e["call"].startswith("midp"))
    assert hung_up["after_ms"] < 2000  # the 6 s prompt was cut short, not played out
    assert not [e for e in worker.of_call("midprompt") if e["event"] == "prompt_done"]
    worker.wait_idle()


def test_recording_ends_at_pound(worker: WorkerProcess, sipp: Sipp) -> None:
    result = sipp.run("record.xml", service=RECORD, call_id="record")
    assert result.returncode == 0, result.describe()
    recorded = worker.wait_for(
        lambda e: e["event"] == "recorded" and e["call"].startswith("record")
    )
    assert not recorded["hung_up"]
    assert 1.0 < recorded["duration"] < 3.5  # '#' came about 2 s after the answer, beep first
    with wave.open(recorded["path"], "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        assert wav.getnframes() > 8000
    worker.wait_idle()


def test_recording_runs_while_the_caller_speaks(worker: WorkerProcess, sipp: Sipp) -> None:
    """Speech keeps a 1 s silence timeout from firing: the recording reaches its 3 s maximum."""
    result = sipp.run("record_speech.xml", service=SPEECH, call_id="speech")
    assert result.returncode == 0, result.describe()
    recorded = worker.wait_for(
        lambda e: e["event"] == "recorded" and e["call"].startswith("speech")
    )
    assert 2.7 < recorded["duration"] < 3.5
    with wave.open(recorded["path"], "rb") as wav:
        samples = array.array("h", wav.readframes(wav.getnframes()))
    assert max(abs(s) for s in samples) > 2000  # the caller's voice is in the file
    worker.wait_idle()


def test_a_real_flow_runs_on_a_sip_call(worker: WorkerProcess, sipp: Sipp) -> None:
    result = sipp.run("dtmf_rfc2833.xml", service=FLOW, call_id="flow")
    assert result.returncode == 0, result.describe()  # the flow's hangup step sent the BYE
    done = worker.wait_for(lambda e: e["event"] == "flow_result" and e["call"].startswith("flow"))
    assert done["outcome"] == "hangup"
    assert done["said"] == ["Hello.", "Hometown Motors: press 1.", "Your car is ready.", "Goodbye."]
    worker.wait_idle()


def test_caller_giving_up_while_it_rings_is_never_answered(
    worker: WorkerProcess, sipp: Sipp
) -> None:
    result = sipp.run("cancel.xml", service=SLOW, call_id="cancel", hold_ms=200, timeout=6)
    assert result.returncode == 0, result.describe()  # 180, then 200 to CANCEL, 487
    worker.wait_for(lambda e: e["event"] == "routed" and e["call"].startswith("cancel"))
    worker.wait_idle()
    assert not [e for e in worker.of_call("cancel") if e["event"] == "greeted"]
    assert "SIP/2.0 200 OK" not in result.messages.split("CANCEL sip:")[0]
