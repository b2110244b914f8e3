"""Run every benchmark, compare with the targets, write bench/results/latest.{json,md}.

    .venv/bin/python -m bench [--quick] [--only sip_load,api_lookup,...] [--profile]

Each benchmark runs as its own `python -m bench.NAME` process with a time limit, so one that
hangs or fails is reported as such and the others still run; its JSON (or `key  value` lines)
is kept whole in latest.json, and the figures that have a target in ../shared/DESIGN.md go in
the markdown table, misses included. bench/transcription.py and bench/speech_latency.py run
when they are present. Loopback only; `--quick` is a small, fast run for development.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import REDIS_URL, RESULTS, commit, machine

BENCH = Path(__file__).resolve().parent

# name: (full args, quick args, time limit s)
PLAN: dict[str, tuple[list[str], list[str], float]] = {
    "sip_load": (["--max-time", "900", "--keep-going"], ["--quick"], 1200),
    "answer_latency": (["--calls", "20"], ["--quick"], 300),
    "screen_pop": (["--calls", "30"], ["--quick"], 300),
    "api_lookup": ([], ["--quick"], 900),
    "transcription": (
        ["--calls", "3", "--minutes", "3", "--redis-url", REDIS_URL],
        ["--calls", "1", "--minutes", "0.5", "--redis-url", REDIS_URL],
        900,
    ),
    "speech_latency": (
        ["--calls", "10", "--redis", REDIS_URL],
        ["--calls", "3", "--redis", REDIS_URL],
        600,
    ),
}


def parse_output(text: str) -> dict[str, Any]:
    """The last JSON object printed (at the start of a line), else `key  value` lines."""
    lines = text.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("{"):
            try:
                found = json.loads("\n".join(lines[i:]))
            except json.JSONDecodeError:
                continue
            if isinstance(found, dict):
                return found
    rows = {}
    for line in lines:
        key, sep, value = line.partition("  ")
        if sep and key.strip():
            rows[key.strip()] = value.strip()
    return {"rows": rows} if rows else {"output": text[-2000:]}


def run_one(name: str, args: list[str], limit: float) -> dict[str, Any]:
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", f"bench.{name}", *args],
            capture_output=True, text=True, timeout=limit, cwd=BENCH.parent,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"error": f"over its {limit:.0f} s limit", "elapsed_s": limit}
    result = parse_output(done.stdout)
    if done.returncode != 0:
        result["error"] = f"exit {done.returncode}: {done.stderr.strip()[-600:]}"
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    return result


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


Row = tuple[str, str, str, bool | None]  # what, target, measured, met (None: not measured)


def _ms(value: Any, limit: float) -> tuple[str, bool | None]:
    return _at_most(value, limit, "{:.1f} ms")


def _at_most(value: Any, limit: float, fmt: str) -> tuple[str, bool | None]:
    if not isinstance(value, int | float):
        return "not measured", None
    return fmt.format(value), value <= limit


def rows(results: dict[str, Any]) -> list[Row]:
    out: list[Row] = []

    def add(what: str, target: str, measured: tuple[str, bool | None]) -> None:
        out.append((what, target, *measured))

    pop = results.get("screen_pop", {})
    add("screen-pop: INVITE → `call.ringing` at an SSE client, p99", "≤ 100 ms",
        _ms(_get(pop, "invite_to_sse_ms", "p99"), 100))  # fmt: skip
    answer = results.get("answer_latency", {})
    add("INVITE → 200 OK, personalized greeting, one call at a time, p95", "≤ 400 ms",
        _ms(_get(answer, "invite_to_200_ms", "p95"), 400))  # fmt: skip
    add("first prompt audio after the ACK, p95", "≤ 100 ms",
        _ms(_get(answer, "ack_to_first_audio_ms", "p95"), 100))  # fmt: skip
    load = results.get("sip_load", {})
    steps = _get(load, "steps") or [{}]
    best = _get(load, "best") or steps[-1]  # no step passed: the figures of the one that failed
    ok = _get(load, "max_concurrent_ok")
    calls = (f"{ok} ({load.get('stopped', '')})", ok >= 200) if isinstance(ok, int) else None
    add("concurrent recorded status-flow calls, 0 failed, no audio gaps", "≥ 200",
        calls or ("not measured", None))  # fmt: skip
    add(f"INVITE → 200 OK at {best.get('calls', '?')} concurrent calls, p99", "≤ 400 ms (p95)",
        _ms(_get(best, "invite_to_200_ms", "p99"), 400))  # fmt: skip
    cpu = best.get("cpu_per_call_pct")
    add(f"CPU per call at {best.get('calls', '?')} calls", "≤ 0.7 % of a core",
        _at_most(cpu, 0.7, "{:.2f} %"))  # fmt: skip
    rss = _get(best, "rss_mb_per_worker", "max")
    add("memory per SIP worker process (RSS)", "≤ 80 MB", _at_most(rss, 80, "{:.0f} MB"))
    speech = results.get("speech_latency", {})
    add("end of caller speech → next prompt, p95", "≤ 800 ms",
        _ms(_get(speech, "speech_end_to_next_prompt_ms", "p95"), 800))  # fmt: skip
    transcription = _get(results, "transcription", "rows") or {}
    mean = transcription.get("hangup → transcript, mean")
    ratio = None
    if isinstance(mean, str) and "×" in mean:
        try:
            ratio = float(mean.split("(")[1].split("×")[0])
        except (IndexError, ValueError):
            ratio = None
    met = ratio <= 0.1 if ratio is not None else None
    add("transcript on the thread after hangup (mean)", "≤ 0.1 × call length",
        (mean, met) if mean else ("not measured", None))  # fmt: skip
    api = results.get("api_lookup", {})
    for kind in ("sqlite", "postgresql"):
        clients = api.get("clients", "?")
        add(f"customer lookup by phone at {api.get('customers', '?')} customers, {kind}, "
            f"{clients} concurrent clients, p99", "≤ 20 ms",
            _ms(_get(api, kind, "latency_ms", "p99"), 20))  # fmt: skip
        add("the same, one client, p99", "≤ 20 ms",
            _ms(_get(api, kind, "one_client_latency_ms", "p99"), 20))  # fmt: skip
    return out


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"Commit `{report['commit']}`, {report['date']}, {m['cores']} cores, {m['memory_gb']} GB"
        f" ({m['cpu']}), load {m['load_1m']} at start{' — quick run' if report['quick'] else ''}.",
        "",
        "| what | target | measured | |",
        "| --- | --- | --- | --- |",
    ]
    for what, target, measured, met in report["table"]:
        mark = {True: "met", False: "**missed**", None: "—"}[met]
        lines.append(f"| {what} | {target} | {measured} | {mark} |")
    failed = [f"`{n}`: {r['error'][:200]}" for n, r in report["results"].items() if "error" in r]
    if failed:
        lines += ["", "Errors: " + "; ".join(failed).replace("\n", " ")]
    if report.get("rerun"):
        lines += [
            "",
            f"Rerun at that date: {', '.join(report['rerun'])}; the rest from the run before.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None, echo: Callable[[str], None] = print) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small, fast runs of each")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated names, rerun into the last results: " + ",".join(PLAN),
    )
    parser.add_argument(
        "--profile", action="store_true", help="pyinstrument: API lookup, one SIP worker"
    )
    args = parser.parse_args(argv)
    names = [n for n in (args.only.split(",") if args.only else PLAN) if n]
    unknown = set(names) - PLAN.keys()
    if unknown:
        parser.error(f"unknown benchmarks: {sorted(unknown)}")
    report: dict[str, Any] = {
        "commit": commit(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "quick": args.quick,
        "results": {},
    }
    latest = RESULTS / "latest.json"
    if args.only and latest.exists():  # rerun some: keep the others' last figures
        previous = json.loads(latest.read_text())
        if previous.get("quick") == args.quick:
            report["results"] = {**previous.get("results", {})}
            report["rerun"] = names
    for name in names:
        if not (BENCH / f"{name}.py").exists():
            report["results"][name] = {"error": "not present"}
            continue
        full, quick, limit = PLAN[name]
        extra = ["--profile"] if args.profile and name in ("api_lookup", "sip_load") else []
        echo(f"running {name} ...")
        report["results"][name] = run_one(name, (quick if args.quick else full) + extra, limit)
        echo(json.dumps(report["results"][name])[:400])
    report["table"] = rows(report["results"])
    RESULTS.mkdir(exist_ok=True)
    latest.write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report)
    (RESULTS / "latest.md").write_text(table)
    echo(table)
    return report


if __name__ == "__main__":
    main()
