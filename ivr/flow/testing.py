"""Flow tests a store writes in YAML (`flows/tests/*.yaml`), run by `driveline flows test`.

Each case sets up the world (caller, customer, repair orders, advisors, store hours, the time),
plays the caller's inputs through `FakeChannel` against `FakeRecords`, and checks what the IVR
said and how the call ended. The format is documented in flows/README.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from ivr.flow.engine import CallResult, FlowEngine
from ivr.flow.fakes import FakeChannel, FakeRecords, local_time
from ivr.flow.schema import FlowSet
from ivr.flow.templates import clock, spoken_date
from ivr.phone import to_e164
from ivr.speech import STT, Understanding

CASE_KEYS = {"name", "flow", "given", "inputs", "expect"}
EXPECT_KEYS = {
    "said",
    "not_said",
    "outcome",
    "transfer",
    "voicemail",
    "hangup",
    "caller_hung_up",
    "callback",
    "thread",
    "event",
    "vars",
    "path",
}


@dataclass
class CaseResult:
    file: str
    name: str
    failures: list[str] = field(default_factory=list)
    script: str = ""

    @property
    def passed(self) -> bool:
        return not self.failures


def load_cases(tests_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """(file, case with the file's shared `given` merged in) for every case, in file order."""
    cases = []
    for path in sorted(tests_dir.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        shared = data.get("given") or {}
        for case in data.get("cases") or []:
            merged = {**case, "given": {**shared, **(case.get("given") or {})}}
            cases.append((str(path), merged))
    return cases


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _spoken(at: datetime, now: datetime) -> str:
    return f"{spoken_date(at, now)} at {clock(at.astimezone(now.tzinfo))}"


def _check(
    expect: Mapping[str, Any],
    result: CallResult,
    records: FakeRecords,
    users: dict[str, int],
    now: datetime,
) -> list[str]:
    """Each failure as a short diff: `- expected ...` / `+ got ...`."""
    failures: list[str] = []
    said = result.said
    heard = "\n".join(f'+   "{s}"' for s in said) or "+   (nothing)"

    def fail(expected: str, got: str) -> None:
        failures.append(f"- expected {expected}\n+ got {got}")

    for key in expect:
        if key not in EXPECT_KEYS:
            failures.append(f"unknown expect key {key!r} (known: {', '.join(sorted(EXPECT_KEYS))})")
    for text in _as_list(expect.get("said", [])):
        if not any(str(text).lower() in s.lower() for s in said):
            failures.append(f'- expected the IVR to say "{text}"\n+ it said:\n{heard}')
    for text in _as_list(expect.get("not_said", [])):
        if any(str(text).lower() in s.lower() for s in said):
            failures.append(f'- expected the IVR never to say "{text}"\n+ it said:\n{heard}')
    outcome = result.outcome
    wanted_kind = expect.get("outcome")
    for flag in ("voicemail", "hangup", "caller_hung_up"):
        if expect.get(flag) is True:
            wanted_kind = flag
    if "transfer" in expect:
        wanted_kind = "transfer"
        want = str(expect["transfer"])
        if outcome.kind == "transfer" and want not in (outcome.target, outcome.contact):
            fail(f"transfer to {want}", outcome.describe())
    if wanted_kind and outcome.kind != wanted_kind:
        fail(f"the call to end with {wanted_kind}", outcome.describe())
    if "callback" in expect:
        want = expect["callback"]
        if want is False and records.callbacks:
            fail("no callback task", f"{len(records.callbacks)}")
        elif want and not records.callbacks:
            fail("a callback task", "none")
        if isinstance(want, Mapping) and "due" in want and records.callbacks:
            dues = [_spoken(c["due_at"], now) for c in records.callbacks]
            if want["due"] not in dues:
                fail(f"a callback due {want['due']}", ", ".join(dues))
        if isinstance(want, Mapping) and "owner" in want and records.callbacks:
            owner = want["owner"]
            owner_id = None if owner in (None, "none", "nobody") else users.get(owner, -1)
            got = [c["owner_id"] for c in records.callbacks]
            if owner_id not in got:
                names = {v: k for k, v in users.items()}
                fail(f"a callback owned by {owner}", ", ".join(names.get(g, "nobody") for g in got))
    if "thread" in expect:
        kinds = [e["kind"] for e in records.thread_entries]
        for kind in _as_list(expect["thread"]):
            if kind not in kinds:
                fail(f"a {kind!r} thread entry", ", ".join(kinds) or "none")
    if "event" in expect:
        types = [e["type"] for e in records.events]
        for event in _as_list(expect["event"]):
            if event not in types:
                fail(f"event {event!r} published", ", ".join(types) or "none")
    for name, value in (expect.get("vars") or {}).items():
        if result.vars.get(name) != value:
            fail(f"vars.{name} = {value!r}", repr(result.vars.get(name)))
    for step in _as_list(expect.get("path", [])):
        if step not in result.path:
            fail(f"the call to pass {step}", " → ".join(result.path))
    return failures


def _input(item: Any, folder: Path) -> str:
    """A case's input as `parse_input` reads it; `wav:` paths are relative to the test file."""
    text = str(item)
    if text.strip().lower().startswith("wav:"):
        path = Path(text.strip()[4:].strip())
        return f"wav:{path if path.is_absolute() else folder / path}"
    return text


async def run_case(
    flows: FlowSet,
    file: str,
    case: Mapping[str, Any],
    *,
    stt: STT | None = None,
    understanding: Understanding | None = None,
) -> CaseResult:
    """One case; `stt` hears its `wav:FILE` inputs (none needed without them), `understanding`
    classifies what is said in intent gathers."""
    name = str(case.get("name") or "(unnamed)")
    outcome = CaseResult(file, name)
    unknown = set(case) - CASE_KEYS
    if unknown:
        outcome.failures.append(f"unknown case keys: {', '.join(sorted(unknown))}")
        return outcome
    given = case.get("given") or {}
    try:
        records = FakeRecords.from_dict(given)
        store = records.stores[0]
        caller = to_e164(str(given["caller"])) if given.get("caller") else None
        now = local_time(given.get("now"), store) or datetime(2026, 1, 5, 10, tzinfo=store.tz)
        contacts = {u.username: u.contact for u in records.users}
        transfers = {contacts.get(k) or k: v for k, v in (given.get("transfers") or {}).items()}
        folder = Path(file).parent
        inputs = [_input(i, folder) for i in case.get("inputs") or []]
        channel = FakeChannel(inputs, transfers=transfers, stt=stt)
    except (KeyError, ValueError, TypeError) as exc:
        outcome.failures.append(f"bad given: {exc}")
        return outcome
    department = None
    if given.get("department"):
        department = store.department(str(given["department"]))
        if department is None:
            outcome.failures.append(f"bad given: no department {given['department']!r} in store")
            return outcome
    flow = str(case.get("flow") or (department.flow if department else "main"))
    if flow not in flows:
        outcome.failures.append(f"no flow named {flow!r}")
        return outcome
    result = await FlowEngine(flows, records, understanding=understanding).run(
        channel, store=store, caller=caller, flow=flow, clock=lambda: now, department=department
    )
    outcome.script = result.script(steps=True)
    users = {u.username: u.id for u in records.users}
    outcome.failures = _check(case.get("expect") or {}, result, records, users, now)
    if channel.remaining:
        left = ", ".join(repr(i) for i in channel.remaining)
        outcome.failures.append(f"- expected every input to be used\n+ left over: {left}")
    return outcome
