"""Spoken menu answers on phone audio reach their branch (a real-model test: tiny.en).

The menu utterances of bench/speech_eval.txt, rendered with piper and sent through an 8 kHz
μ-law phone line, are recognized the way a speech gather does it (soxr resampling, the menu's
hints as prompt, the service's model without a second VAD) and classified among the shipped
flows/main.yaml menu's intents with the gather's thresholds. DESIGN.md's target: ≥ 90 %
routed right. The espeak-ng renders and the WER with and without the measures are in
`bench.speech_eval`.
"""

from __future__ import annotations

from bench.speech_eval import DEFAULT_CACHE, route_menu, utterances
from speech.recognizer import endpointed_stt


def test_spoken_menu_answers_reach_their_branch() -> None:
    menu = [u for u in utterances() if u.branch]
    assert len(menu) >= 20 and {u.branch for u in menu} == {"status", "pickup", "advisor"}
    routed = route_menu(endpointed_stt(None, 2), menu, ("piper",), DEFAULT_CACHE)
    right = [r for r in routed if r.ok]
    misses = [(r.text, r.heard, r.got, round(r.score, 2)) for r in routed if not r.ok]
    assert len(right) / len(routed) >= 0.9, misses
