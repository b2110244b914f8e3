"""Each process kind loads only what it runs (issue 17): started for real with
`python -X importtime`, which lists every module the process imported, until it is ready.

A SIP worker must not carry FastAPI, the web pages, Whisper or the language model: they cost
memory in every one of the many workers a store group runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL
from tests.e2e.harness import free_udp_port, require_tools

REPO = Path(__file__).resolve().parent.parent

# Top-level packages (or modules) a process kind must not import.
NOT_IN = {
    "sip": ("fastapi", "starlette", "uvicorn", "api", "transcription", "faster_whisper",
            "ctranslate2", "usecases", "speech.embedder", "speech.intents", "tokenizers"),
    "speech": ("fastapi", "starlette", "uvicorn", "api", "sip", "pjsua2", "usecases"),
    "transcribe": ("fastapi", "starlette", "uvicorn", "api", "sip", "pjsua2", "usecases"),
}  # fmt: skip
READY = {
    "sip": "sip worker ready on",
    "speech": "speech service ready",
    "transcribe": "transcriber ",
}


def loaded_modules(kind: str, argv: list[str], tmp_path: Path, timeout: float = 60) -> set[str]:
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DRIVELINE_DATABASE_URL": f"sqlite:///{tmp_path / 'driveline.db'}",
        "DRIVELINE_REDIS_URL": REDIS_URL,
        "DRIVELINE_RECORDINGS_DIR": str(tmp_path / "recordings"),
        "DRIVELINE_PROMPTS_DIR": str(tmp_path / "prompts"),
        "DRIVELINE_FLOWS_DIR": str(REPO / "flows"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "driveline", *argv],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    modules: set[str] = set()
    ready = False
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("import time:") and "|" in line:
                modules.add(line.rsplit("|", 1)[1].strip())
            elif READY[kind] in line:
                ready = True
                break
            if time.monotonic() > deadline:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert ready, f"{kind} never said it was ready"
    return modules


def _forbidden(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_a_sip_worker_loads_no_api_no_whisper_and_no_language_model(tmp_path: Path) -> None:
    require_tools()
    bind = f"127.0.0.1:{free_udp_port()}"
    modules = loaded_modules("sip", ["sip", "--fake-tts", "--bind", bind], tmp_path)
    assert "pjsua2" in modules and "sip.worker" in modules  # it did start a worker
    assert _forbidden(modules, NOT_IN["sip"]) == []


@pytest.mark.parametrize("kind", ["speech", "transcribe"])
def test_the_speech_and_transcription_services_load_no_web_and_no_sip(
    kind: str, tmp_path: Path
) -> None:
    modules = loaded_modules(kind, [kind], tmp_path)
    assert _forbidden(modules, NOT_IN[kind]) == []
