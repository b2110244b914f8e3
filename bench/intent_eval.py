"""Text-level intent routing on bench/intents.txt against the shipped main menu's intents.

    .venv/bin/python -m bench.speech_eval --text

Each utterance is scored against flows/main.yaml's menu intents the way the gather does it, by
each approach compared: embeddings with the nearest example (shipped), embeddings with each
intent's centroid, and rapidfuzz phrase matching with the same examples as phrases (how the
menu matched before intents). A decision is simulated with the gather's own `decide`: accepted
at `threshold`; between `confirm_threshold` and `threshold` the caller is asked back and is
taken to answer truthfully (yes when it is their intent, so it routes right; no otherwise, a
miss); below, out of scope. Reported: routing accuracy (in scope: reached its intent; out of
scope: reached none), per-intent precision/recall, out-of-scope false accepts (accepted an
intent without asking), how many were asked back, and classification latency.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ivr.flow.steps.gather import Choice, Gather, best_choice
from ivr.flow.steps.understand import decide, normalize
from ivr.slots import Facts, extract
from ivr.slots.generalize import generalize

SET = Path(__file__).with_name("intents.txt")
HOLDOUT = Path(__file__).with_name("intents_holdout.txt")
MAX_ASKED = 0.25  # a sweep keeps thresholds that ask back at most a quarter of callers
NONE = "none"
Scorer = Callable[[str, dict[str, list[str]]], dict[str, float]]


@dataclass(frozen=True)
class Item:
    want: str  # an intent of the menu, or NONE
    text: str


def items(path: Path = SET) -> list[Item]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            want, _, text = line.partition("|")
            out.append(Item(want.strip(), text.strip()))
    return out


@dataclass(frozen=True)
class Routed:
    item: Item
    kind: str  # accept | confirm | miss
    intent: str | None
    score: float
    scores: dict[str, float]

    @property
    def reached(self) -> str:
        """Where the call ends up: an accepted intent, a confirmed one if it is the caller's."""
        if self.kind == "accept" or (self.kind == "confirm" and self.intent == self.item.want):
            return self.intent or NONE
        return NONE

    @property
    def ok(self) -> bool:
        return self.reached == self.item.want


@dataclass
class Report:
    name: str
    accept: float
    confirm: float
    routed: list[Routed]
    latencies_ms: list[float]

    def _share(self, rows: list[Routed]) -> float:
        return sum(r.ok for r in rows) / max(len(rows), 1)

    @property
    def in_scope(self) -> list[Routed]:
        return [r for r in self.routed if r.item.want != NONE]

    @property
    def out_of_scope(self) -> list[Routed]:
        return [r for r in self.routed if r.item.want == NONE]

    @property
    def accuracy(self) -> float:
        return self._share(self.routed)

    @property
    def false_accepts(self) -> float:
        oos = self.out_of_scope
        return sum(r.kind == "accept" for r in oos) / max(len(oos), 1)

    @property
    def wrong_branch(self) -> int:
        return sum(r.kind == "accept" and r.intent != r.item.want for r in self.in_scope)

    @property
    def asked(self) -> float:
        return sum(r.kind == "confirm" for r in self.routed) / max(len(self.routed), 1)

    def per_intent(self) -> dict[str, tuple[float, float, int]]:
        """intent → (precision, recall, support) over where calls end up."""
        out = {}
        for intent in sorted({r.item.want for r in self.routed} - {NONE}):
            got = [r for r in self.routed if r.reached == intent]
            want = [r for r in self.routed if r.item.want == intent]
            precision = sum(r.ok for r in got) / len(got) if got else 0.0
            recall = sum(r.ok for r in want) / len(want) if want else 0.0
            out[intent] = (precision, recall, len(want))
        return out

    def latency(self) -> str:
        """'p50 / p95' ms of the first (uncached) scoring of each utterance; '–' for a sweep."""
        if not self.latencies_ms:
            return "–"
        ordered = sorted(self.latencies_ms)
        p95 = ordered[int(0.95 * (len(ordered) - 1))]
        return f"{statistics.median(ordered):.1f} / {p95:.1f}"


def menu() -> Gather:
    """The shipped main menu (flows/main.yaml `menu`), whose intents are evaluated."""
    from bench.speech_eval import menu_step

    return menu_step()


def embedding_scorer(method: str) -> Scorer:
    from speech.embedder import load_embedder
    from speech.intents import IntentClassifier

    classifier = IntentClassifier(load_embedder(), method=method)  # type: ignore[arg-type]
    return classifier.scores


def caller_facts() -> Facts:
    """A caller of a demo-like store on a weekday morning who owns every vehicle the set names
    and whose store has the advisors it names: what the gather's slots read the words against."""
    from datetime import datetime

    from ivr.domain import AdvisorInfo, StoreInfo, VehicleInfo
    from ivr.hours import Hours

    week = {day: [["08:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat")}
    store = StoreInfo(id=1, name="Demo Chevrolet", timezone="America/New_York", hours=week)
    models = ("Equinox", "Tahoe", "Silverado", "Malibu", "Trax", "Traverse", "Suburban",
              "Colorado", "Camaro", "Blazer")  # fmt: skip
    return Facts(
        now=datetime(2026, 11, 25, 10, 0, tzinfo=store.tz),
        hours=Hours.of(store),
        advisors=[
            AdvisorInfo(1, "Dave Brown", "dbrown"),
            AdvisorInfo(2, "Bob Stone", "bstone"),
            AdvisorInfo(3, "Alice Ng", "alice"),
        ],
        vehicles=[VehicleInfo(i, 2021, "Chevrolet", m) for i, m in enumerate(models, 1)],
    )


def as_the_gather_hears(scorer: Scorer) -> Scorer:
    """`scorer` on what the menu gather classifies: the words with the slots they fill said the
    way the examples say them ("my car" for "my Tahoe": ivr/slots/generalize.py)."""
    facts = caller_facts()
    kinds = menu().slots

    def scored(text: str, intents: dict[str, list[str]]) -> dict[str, float]:
        return scorer(generalize(text, extract(kinds, text, facts)), intents)

    return scored


def phrase_scorer(text: str, intents: dict[str, list[str]]) -> dict[str, float]:
    """rapidfuzz phrase matching (the gather's matcher before intents), examples as phrases."""
    choices = {name: Choice(phrases=examples) for name, examples in intents.items()}
    best, score = best_choice(text, choices)
    return {best: score} if best else {}


def evaluate(name: str, scorer: Scorer, accept: float, confirm: float, data: list[Item]) -> Report:
    intents = menu().intents
    scorer("warm up", intents)  # the examples' vectors are cached, as in the service
    routed, latencies = [], []
    for item in data:
        started = time.perf_counter()
        scores = scorer(item.text, intents)
        latencies.append((time.perf_counter() - started) * 1000)
        decision = decide(scores, accept, confirm)
        routed.append(Routed(item, decision.kind, decision.intent, decision.score, scores))
    return Report(name, accept, confirm, routed, latencies)


def overlap(data: list[Item]) -> list[str]:
    """Utterances that are also one of the flow's examples (the set must test, not repeat)."""
    examples = {normalize(e) for es in menu().intents.values() for e in es}
    return [i.text for i in data if normalize(i.text) in examples]


def sweep(scorer: Scorer, data: list[Item], name: str) -> Report:
    """The thresholds with the best accuracy at ≤ 5 % out-of-scope false accepts, asking back
    at most MAX_ASKED of the callers (asking everyone would route well and annoy all)."""
    scored = evaluate(name, scorer, 1.01, 1.01, data)  # scores once; decisions re-cut below
    best: Report | None = None
    for accept in [x / 100 for x in range(40, 91, 2)]:
        for confirm in [x / 100 for x in range(30, int(accept * 100) + 1, 2)]:
            routed = []
            for r in scored.routed:
                d = decide(r.scores, accept, confirm)
                routed.append(Routed(r.item, d.kind, d.intent, d.score, r.scores))
            report = Report(name, accept, confirm, routed, [])  # scores reused: no latency
            if report.false_accepts > 0.05 or report.asked > MAX_ASKED:
                continue
            if best is None or (report.accuracy, -report.asked) > (best.accuracy, -best.asked):
                best = report
    assert best is not None
    return best


def table(reports: list[Report]) -> str:
    lines = [
        "| approach | accept / confirm | routing accuracy | in scope | out of scope rejected "
        "| OOS false accepts | wrong branch | asked back | latency p50 / p95 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        lines.append(
            f"| {r.name} | {r.accept:.2f} / {r.confirm:.2f} | {r.accuracy:.1%} "
            f"| {r._share(r.in_scope):.1%} | {r._share(r.out_of_scope):.1%} "
            f"| {r.false_accepts:.1%} | {r.wrong_branch} | {r.asked:.1%} | {r.latency()} |"
        )
    return "\n".join(lines)


def run_text() -> None:
    """Print the comparison on both sets, the shipped approach's per-intent figures, misses."""
    from ivr.flow.steps.gather import INTENT_ACCEPT, INTENT_CONFIRM

    spec = menu()
    scorers = {m: embedding_scorer(m) for m in ("blend", "nearest", "centroid")}
    print(
        f"shipped: blend scores, INTENT_ACCEPT {INTENT_ACCEPT}, INTENT_CONFIRM {INTENT_CONFIRM}; "
        f"{len(spec.intents)} intents, {sum(map(len, spec.intents.values()))} examples"
    )
    for path in (SET, HOLDOUT):
        data = items(path)
        repeats = overlap(data)
        print(
            f"\n## {path.name}: {len(data)} utterances "
            f"({sum(i.want == NONE for i in data)} out of scope); "
            f"{len(repeats)} also an example of the flow {repeats}"
        )
        shipped = evaluate(
            "embeddings, blend, slots generalized (shipped)",
            as_the_gather_hears(scorers["blend"]),
            spec.accept_at,
            spec.confirm_at,
            data,
        )
        raw = evaluate(
            "embeddings, blend, raw words", scorers["blend"], spec.accept_at, spec.confirm_at, data
        )
        reports = [shipped, raw]
        for method, scorer in scorers.items():
            reports.append(sweep(scorer, data, f"embeddings, {method} (best thresholds)"))
        reports.append(
            evaluate("rapidfuzz, examples as phrases (0.75)", phrase_scorer, 0.75, 0.75, data)
        )
        reports.append(sweep(phrase_scorer, data, "rapidfuzz, examples as phrases (best)"))
        print(table(reports))
        print(f"\nper intent ({shipped.name}):")
        print("| intent | precision | recall | n |\n|---|---|---|---|")
        for intent, (precision, recall, n) in shipped.per_intent().items():
            print(f"| {intent} | {precision:.0%} | {recall:.0%} | {n} |")
        print("\nmisses:")
        for r in shipped.routed:
            if not r.ok:
                print(
                    f"  {r.item.want:>11} → {r.reached:<11} ({r.kind} {r.intent} "
                    f"{r.score:.2f}) {r.item.text!r}"
                )
