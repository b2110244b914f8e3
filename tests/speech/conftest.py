"""Piper fixtures: the model loads once per test session; each test gets an empty cache folder.

Render times measured by `test_render_times` are shown at the end of the run (not asserted:
they depend on the machine and its load).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from speech.piper_tts import PiperTTS, _load_voice, default_model_path

_timings: dict[str, str] = {}


@pytest.fixture(scope="session")
def piper_model() -> Path:
    """Load the shipped voice once; every `PiperTTS` in the session shares it."""
    path = default_model_path().resolve()
    _load_voice(path)
    return path


@pytest.fixture
def tts(piper_model: Path, tmp_path: Path) -> PiperTTS:
    return PiperTTS(tmp_path / "prompts", piper_model)


@pytest.fixture
def report_timing() -> Callable[[str, str], None]:
    return _timings.__setitem__


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _timings:
        terminalreporter.section("piper render times (warm model)")
        for what, value in _timings.items():
            terminalreporter.write_line(f"{what}: {value}")
