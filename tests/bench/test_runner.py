"""`python -m bench`'s report: outputs parsed, targets compared, misses shown (no timing here:
the benchmarks themselves are not tests)."""

from __future__ import annotations

from bench.__main__ import markdown, parse_output, rows


def test_parse_output_takes_the_last_json_object_or_key_value_lines() -> None:
    text = '{"calls": 4, "passed": true}\nnoise\n{\n  "max_concurrent_ok": 8\n}\n'
    assert parse_output(text) == {"max_concurrent_ok": 8}
    table = (
        "call length               180 s\nhangup → transcript, mean  9.0 s (0.050 × call length)\n"
    )
    assert parse_output(table)["rows"]["hangup → transcript, mean"].startswith("9.0 s")
    assert "output" in parse_output("Traceback: boom")


def test_rows_compare_with_the_targets_and_show_misses() -> None:
    results = {
        "screen_pop": {"invite_to_sse_ms": {"p50": 20.0, "p99": 150.0}},
        "answer_latency": {
            "invite_to_200_ms": {"p95": 35.0},
            "ack_to_first_audio_ms": {"p95": 45.0},
        },
        "sip_load": {
            "max_concurrent_ok": 16,
            "stopped": "32 calls: 2 failures, 0 gaps",
            "best": {
                "calls": 16,
                "invite_to_200_ms": {"p99": 120.0},
                "cpu_per_call_pct": 2.5,
                "rss_mb_per_worker": {"max": 150.0},
            },
        },
        "transcription": {"rows": {"hangup → transcript, mean": "9.0 s (0.050 × call length)"}},
        "api_lookup": {"customers": 100000, "sqlite": {"latency_ms": {"p99": 12.0}}},
    }
    table = {what: (measured, met) for what, _target, measured, met in rows(results)}
    by_start = {what.split(":")[0].split(",")[0]: value for what, value in table.items()}
    assert by_start["screen-pop"] == ("150.0 ms", False)
    assert by_start["first prompt audio after the ACK"] == ("45.0 ms", True)
    concurrent = by_start["concurrent recorded status-flow calls"]
    assert concurrent[0].startswith("16 (32 calls") and concurrent[1] is False
    assert by_start["CPU per call at 16 calls"] == ("2.50 %", False)
    assert by_start["memory per SIP worker process (RSS)"] == ("150 MB", False)
    assert by_start["transcript on the thread after hangup (mean)"][1] is True
    assert by_start["end of caller speech → next prompt"] == ("not measured", None)
    lookups = [v for w, v in table.items() if w.startswith("customer lookup")]
    assert lookups == [("12.0 ms", True), ("not measured", None)]

    report = {
        "commit": "abc1234",
        "date": "2026-11-25 20:00 UTC",
        "machine": {"cores": 2, "memory_gb": 23.5, "cpu": "x", "load_1m": 3.0},
        "quick": False,
        "results": {**results, "speech_latency": {"error": "not present"}},
        "table": rows(results),
    }
    text = markdown(report)
    assert "Commit `abc1234`" in text and "2 cores" in text
    assert "| 150.0 ms | **missed** |" in text
    assert "`speech_latency`: not present" in text
