"""What a test needs from the machine: missing locally, it is skipped; under CI (`CI=true`,
which .ci/run sets itself), it fails the run, so a green CI means every test ran."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(present: object, message: str) -> None:
    """Go on when `present` is true; otherwise skip, or fail under CI."""
    if present:
        return
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)
