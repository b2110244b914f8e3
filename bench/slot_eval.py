"""Slots from real recognition: spoken requests (piper and espeak-ng on a phone line) through
tiny.en with the shipped menu's hints, then ivr/slots against a fixed Wednesday 10 AM.

    .venv/bin/python -m bench.slot_eval

Prints each transcript, what was extracted, and how many slots came out right per voice.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from bench.speech_eval import DEFAULT_CACHE, menu_step, read_pcm, render, transcribe
from ivr.domain import AdvisorInfo, VehicleInfo
from ivr.flow.fakes import store_from_dict
from ivr.hours import Hours
from ivr.slots import Facts, When, extract

STORE = store_from_dict({})
NOW = datetime(2026, 11, 25, 10, tzinfo=STORE.tz)  # a Wednesday morning
ADVISORS = [
    AdvisorInfo(1, "Alice Moreno", "alice"),
    AdvisorInfo(2, "Dave Okafor", "dave"),
    AdvisorInfo(3, "Linda Park", "linda"),
    AdvisorInfo(4, "Carol Nguyen", "carol"),
]
TAHOE = VehicleInfo(1, 2019, "Chevrolet", "Tahoe")
SILVERADO = VehicleInfo(2, 2020, "Chevrolet", "Silverado")
EQUINOX = VehicleInfo(3, 2022, "Chevrolet", "Equinox")
VEHICLES = [TAHOE, SILVERADO, EQUINOX]
KINDS = ["ro_number", "phone", "time", "advisor", "vehicle"]

# (what the caller says, the slots it must fill: time as "YYYY-MM-DD HH:MM", names as names)
SET: list[tuple[str, dict[str, str]]] = [
    ("I'll pick up my Tahoe tomorrow around nine.",
     {"vehicle": "Tahoe", "time": "2026-11-26 09:00"}),
    ("I can come get it this afternoon.", {"time": "2026-11-25 14:00"}),
    ("I'll be there at five.", {"time": "2026-11-25 17:00"}),
    ("Friday morning works for me.", {"time": "2026-11-27 09:00"}),
    ("Sometime after lunch.", {"time": "2026-11-25 13:00"}),
    ("Tomorrow at four thirty.", {"time": "2026-11-26 16:30"}),
    ("I'll grab the Silverado Saturday around ten.",
     {"vehicle": "Silverado", "time": "2026-11-28 10:00"}),
    ("Can I talk to Linda?", {"advisor": "Linda Park"}),
    ("I'd like to speak with Dave, please.", {"advisor": "Dave Okafor"}),
    ("I'm returning a missed call from Carol.", {"advisor": "Carol Nguyen"}),
    ("Is my Equinox ready yet?", {"vehicle": "Equinox"}),
    ("How's the Silverado coming along?", {"vehicle": "Silverado"}),
    ("My R O number is seven oh one two three.", {"ro_number": "70123"}),
    ("It's repair order four seven one one.", {"ro_number": "4711"}),
    ("Seventy thousand one twenty three.", {"ro_number": "70123"}),
    ("My number is five five five, two oh one, zero zero zero one.", {"phone": "+15552010001"}),
    ("Call me at five five five, three one two, four four five six.", {"phone": "+15553124456"}),
    ("Is the Tahoe done? I need it by noon.", {"vehicle": "Tahoe", "time": "2026-11-25 12:00"}),
]  # fmt: skip


def shown(value: Any) -> str:
    if isinstance(value, When):
        return f"{value.at:%Y-%m-%d %H:%M}"
    if isinstance(value, AdvisorInfo):
        return value.name
    if isinstance(value, VehicleInfo):
        return value.model
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voices", default="piper,espeak")
    parser.add_argument(
        "--no-names",
        action="store_true",
        help="Leave the caller's names out of the recogniser's prompt.",
    )
    args = parser.parse_args()
    voices = [v.strip() for v in args.voices.split(",") if v.strip()]
    from ivr.flow.steps.gather import hints
    from ivr.slots import slot_hints
    from ivr.speech import hint_prompt
    from speech.recognizer import endpointed_stt

    stt = endpointed_stt(None, 2)
    names = [] if args.no_names else slot_hints(ADVISORS, VEHICLES)
    prompt = hint_prompt([*hints(menu_step()), *names])
    facts = Facts(now=NOW, hours=Hours.of(STORE), advisors=ADVISORS, vehicles=VEHICLES)
    totals = {v: [0, 0] for v in voices}
    for text, want in SET:
        for voice in voices:
            heard = transcribe(stt, read_pcm(render(text, voice, DEFAULT_CACHE)), naive=False,
                               prompt=prompt)  # fmt: skip
            got = {k: shown(v) for k, v in extract(KINDS, heard, facts).items()}
            right = sum(got.get(k) == v for k, v in want.items())
            extra = [k for k in got if k not in want]
            totals[voice][0] += right - len(extra)
            totals[voice][1] += len(want)
            mark = "ok " if right == len(want) and not extra else "MISS"
            print(f"{mark} [{voice}] {text!r} heard {heard!r} → {got}")
    for voice, (right, total) in totals.items():
        print(f"{voice}: {right}/{total} slots right (a slot filled that was not said counts -1)")


if __name__ == "__main__":
    main()
