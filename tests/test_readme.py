"""The README's promise: it opens with exactly two set-up commands, and CI runs the second."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_opens_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    # Only the title may stand before the commands.
    first_block = re.match(r"# Driveline\n\n```sh\n(.*?)```", text, re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert [c for c in commands if c] == ["./run demo", "./run test"]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./run test" in ci
    run = (ROOT / "run").read_text()
    assert 'demo)  setup; exec "$VENV/bin/driveline" serve --demo' in run
