"""Under CI a missing tool fails the run; nothing else in the suite may skip on its own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import needs

TESTS = Path(__file__).resolve().parent


def test_a_missing_tool_skips_locally_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    needs.require(True, "present")  # nothing happens
    monkeypatch.setattr(needs, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="sox"):
        needs.require(False, "sox is not installed")
    monkeypatch.setattr(needs, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="sox"):
        needs.require(False, "sox is not installed")


def test_tests_skip_only_through_require() -> None:
    """A `pytest.skip`, `skipif` or `importorskip` elsewhere would skip silently under CI."""
    pattern = re.compile(r"pytest\.(skip\(|mark\.skip|importorskip)")
    offenders = [
        f"{path.relative_to(TESTS)}:{number}"
        for path in TESTS.rglob("*.py")
        if path.name != "needs.py" and path.name != Path(__file__).name
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_ci_runs_the_readme_test_command_with_ci_set() -> None:
    script = (TESTS.parent / ".ci" / "run").read_text()
    assert "export CI=true" in script and "exec ./run test" in script
