"""The flow engine must stay free of pjsua2, SQLAlchemy and Redis (DESIGN.md: pure core)."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("pjsua2", "sqlalchemy", "redis", "records", "events", "sip", "api")


def test_importing_the_flow_engine_pulls_in_no_adapters() -> None:
    code = (
        "import json, sys\n"
        "import ivr.flow, ivr.flow.engine, ivr.flow.loader, ivr.flow.fakes, ivr.flow.testing\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    bad = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert "ivr.flow.engine" in loaded
    assert bad == []
