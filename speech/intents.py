"""Which of a gather's intents a caller's words mean: cosine similarity to the flow's examples.

An intent's score is the blend (mean) of two cosines between the heard text and its examples:
to the nearest example, and to the examples' centroid. `python -m bench.speech_eval --text`
compares the three and rapidfuzz phrase matching on bench/intents.txt: the blend routed best
(README's table). Nearest alone lets one loose example of a wrong intent win ("text me the
status" is near "status"); the centroid alone misses phrasings far from the intent's average;
the blend needs both.

The scores are cosines (-1..1; unrelated requests land around 0.1-0.3), so the gather's
thresholds say what is accepted, what is confirmed and what is out of scope.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from speech.embedder import Embedder, load_embedder

Method = Literal["blend", "nearest", "centroid"]


class IntentClassifier:
    """Scores text against intents' examples with one loaded embedder."""

    def __init__(self, embedder: Embedder, method: Method = "blend") -> None:
        self.embedder = embedder
        self.method = method

    def scores(self, text: str, intents: Mapping[str, Sequence[str]]) -> dict[str, float]:
        """Each intent's score for `text`, best first."""
        names = [n for n, examples in intents.items() if examples]
        if not text.strip() or not names:
            return {}
        examples = [e for n in names for e in intents[n]]
        vectors = self.embedder.embed([text, *examples])
        heard, rest = vectors[0], vectors[1:]
        out: dict[str, float] = {}
        start = 0
        for name in names:
            block = rest[start : start + len(intents[name])]
            start += len(intents[name])
            mean = block.mean(0)
            centroid = float(heard @ (mean / max(float(np.linalg.norm(mean)), 1e-12)))
            nearest = float((block @ heard).max())
            out[name] = {"nearest": nearest, "centroid": centroid}.get(
                self.method, (nearest + centroid) / 2
            )
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))


class LocalUnderstanding:
    """`ivr.speech.Understanding` in this process: for `driveline flows run/test` and tests.

    The SIP workers use the speech service instead (`SpeechClient.classify`), which holds the
    one warm model for all of them."""

    def __init__(self, classifier: IntentClassifier | None = None) -> None:
        self.classifier = classifier or IntentClassifier(load_embedder())

    async def classify(
        self, text: str, intents: Mapping[str, Sequence[str]]
    ) -> dict[str, float] | None:
        return await asyncio.to_thread(self.classifier.scores, text, intents)
