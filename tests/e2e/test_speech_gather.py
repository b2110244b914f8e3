"""Speech gathers on real calls: the caller says "is my car ready" (piper, 8 kHz μ-law RTP from
a pcap sipp plays) and the flow takes the status branch; a key still works in a speech gather;
"I'm calling to check on my truck" to an open question reaches the status intent; "I'll pick
up my Tahoe tomorrow around nine" to the shipped main menu picks the Tahoe's RO of two and
writes the pickup time on the thread; a cough on a hissing line before "is my car ready" is not
taken for the answer.

The worker (tests/e2e/app.py, number +15550100011) sends each utterance to a real speech
service (speech/recognizer.py with tiny.en) over the test's Redis database, as in production.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Sipp, WorkerProcess, require_tools, wav_to_ulaw, write_rtp_pcap

SPEECH_DID = "+15550100011"
INTENT_DID = "+15550100012"
SHIPPED_DID = "+15550100013"


@pytest.fixture(scope="module")
def speech_service(redis_url: str) -> Iterator[None]:
    from speech.recognizer import RecognizerService, endpointed_stt, intent_classifier

    service = RecognizerService(redis_url, endpointed_stt(None, 2), classifier=intent_classifier())
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        service.stopping.set()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def speech_worker(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, speech_service: None
) -> Iterator[WorkerProcess]:
    require_tools()
    process = WorkerProcess(tmp_path_factory.mktemp("speech-worker"), "--redis", redis_url)
    try:
        yield process
    finally:
        process.close()
    # Stopped right after its gathers: the listening ports must go before the audio bridge
    # does (pjsip aborts on a port removed from a bridge already destroyed).
    assert process.proc.returncode == 0, process.stderr_path.read_text()[-3000:]


def _spoken(text: str, lead_silence: float = 0.3) -> bytes:
    """`text` by piper, as 8 kHz μ-law RTP in a pcap, after `lead_silence` seconds."""
    import asyncio

    from speech.piper_tts import PiperTTS

    with tempfile.TemporaryDirectory() as tmp:
        tts = PiperTTS(Path(tmp))
        wav = asyncio.run(tts.render(text))
        payload = wav_to_ulaw(wav)
        pcap = write_rtp_pcap(Path(tmp) / "speech.pcap", payload, lead_silence=lead_silence)
        return pcap.read_bytes()


@pytest.fixture(scope="module")
def spoken_pcap() -> bytes:
    """ "Is my car ready?" (built once per module)."""
    return _spoken("Is my car ready?")


def _sipp(worker: WorkerProcess, tmp_path: Path) -> Sipp:
    return Sipp(tmp_path, f"127.0.0.1:{worker.port}")


def test_saying_is_my_car_ready_takes_the_status_branch(
    speech_worker: WorkerProcess, spoken_pcap: bytes, tmp_path: Path
) -> None:
    (tmp_path / "speech.pcap").write_bytes(spoken_pcap)
    sipp = _sipp(speech_worker, tmp_path)
    result = sipp.run("speech_say.xml", service=SPEECH_DID, call_id="spoken", timeout=40.0)
    assert result.returncode == 0, result.describe()
    done = speech_worker.wait_for(
        lambda e: e["event"] == "flow_result" and e["call"].startswith("spoken"), timeout=10
    )
    assert done["path"][:2] == ["main.menu", "main.status"], done
    assert "Your car is ready." in done["said"]
    assert any(n.startswith("heard → status") for n in done["notes"]), done["notes"]


def test_a_key_still_works_in_a_speech_gather(speech_worker: WorkerProcess, tmp_path: Path) -> None:
    sipp = _sipp(speech_worker, tmp_path)
    result = sipp.run("speech_key.xml", service=SPEECH_DID, call_id="keyed", timeout=40.0)
    assert result.returncode == 0, result.describe()
    done = speech_worker.wait_for(
        lambda e: e["event"] == "flow_result" and e["call"].startswith("keyed"), timeout=10
    )
    assert done["path"][:2] == ["main.menu", "main.status"], done
    assert not any(n.startswith("heard") for n in done["notes"]), done["notes"]


def test_a_natural_request_reaches_its_intent(speech_worker: WorkerProcess, tmp_path: Path) -> None:
    (tmp_path / "speech.pcap").write_bytes(_spoken("I'm calling to check on my truck."))
    sipp = _sipp(speech_worker, tmp_path)
    result = sipp.run("speech_say.xml", service=INTENT_DID, call_id="intent", timeout=40.0)
    assert result.returncode == 0, result.describe()
    done = speech_worker.wait_for(
        lambda e: e["event"] == "flow_result" and e["call"].startswith("intent"), timeout=10
    )
    assert done["path"][:2] == ["main.menu", "main.status"], done
    assert any(n.startswith("intent status (") for n in done["notes"]), done["notes"]


def test_a_spoken_pickup_time_lands_on_the_thread(
    speech_worker: WorkerProcess, tmp_path: Path
) -> None:
    # The shipped greeting and question take about 4.6 s (FakeTTS): speak after them.
    speech = _spoken("I'll pick up my Tahoe tomorrow around nine.", lead_silence=4.0)
    (tmp_path / "speech.pcap").write_bytes(speech)
    sipp = _sipp(speech_worker, tmp_path)
    result = sipp.run("speech_say.xml", service=SHIPPED_DID, call_id="pickup", timeout=45.0)
    assert result.returncode == 0, result.describe()
    done = speech_worker.wait_for(
        lambda e: e["event"] == "flow_result" and e["call"].startswith("pickup"), timeout=10
    )
    assert "main.pickup" in done["path"] and "find_ro.by_vehicle" in done["path"], done
    assert any(n.startswith("slots: time tomorrow around 9 AM") for n in done["notes"]), done
    assert "Thanks, we'll see you tomorrow around 9 AM for your 2019 Chevrolet Tahoe." in (
        " ".join(done["said"])
    )
    thread = speech_worker.wait_for(
        lambda e: e["event"] == "thread" and e["call"].startswith("pickup"), timeout=5
    )
    [entry] = thread["entries"]
    assert entry["kind"] == "pickup" and "RO 4711 tomorrow around 9 AM" in entry["body"]
    assert entry["data"]["pickup_at"] == "2026-11-26T09:00:00-05:00", entry


def test_a_request_on_a_hissing_line_reaches_its_branch(
    speech_worker: WorkerProcess, tmp_path: Path
) -> None:
    """Bad input on a real call: hiss all through the call (about -40 dBFS, under the
    endpointer's threshold: it neither stops the prompt nor makes an utterance), then "Is my
    car ready?": the status branch. A cough in the hiss is left to the deterministic tests
    (tests/speech/test_bad_input.py, tests/sip/test_channel_bad_input.py): over a real call
    tiny.en sometimes invents a word for it ("Uh-huh.", 0.21), which a one-attempt menu then
    takes as its miss."""
    import wave

    import numpy as np

    from tests.speech.signals import RATE, pcm, silence, spoken, white

    words = spoken("Is my car ready?")
    audio = np.concatenate([silence(2.2), words, silence(1)])
    audio += white(len(audio) / RATE, 300)
    with wave.open(str(tmp_path / "bad.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm(audio))
    write_rtp_pcap(tmp_path / "speech.pcap", wav_to_ulaw(tmp_path / "bad.wav"))
    sipp = _sipp(speech_worker, tmp_path)
    result = sipp.run("speech_say.xml", service=SPEECH_DID, call_id="hiss", timeout=40.0)
    assert result.returncode == 0, result.describe()
    done = speech_worker.wait_for(
        lambda e: e["event"] == "flow_result" and e["call"].startswith("hiss"), timeout=10
    )
    assert done["path"][:2] == ["main.menu", "main.status"], (
        done,
        speech_worker.stderr_path.read_text()[-4000:],
    )
    assert any(n.startswith("heard → status") for n in done["notes"]), done["notes"]
