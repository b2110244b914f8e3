"""Word error rate and spoken-menu routing on phone audio, with and without the measures.

    .venv/bin/python -m bench.speech_eval [--cache var/cache/speech-eval] [--voices piper,espeak]

The utterances are `bench/speech_eval.txt` (menu answers with the branch they must reach, and
sentences with store words: Chevrolet models, the demo advisors, "repair order"). Each is
rendered with piper and with espeak-ng and sent through a phone line: sox to 8 kHz μ-law and
back to 16-bit PCM (so the audio has the band limit and companding noise of a real call). The
renders are cached (`--cache`); nothing is committed but the text list.

Measures compared (WER over all utterances, per voice and overall):
- resampling 8 → 16 kHz for Whisper: soxr's band-limited resampler (`pcm_to_whisper`) versus
  naive sample repetition (what a quick `np.repeat` does: images above 4 kHz stay in);
- initial prompt: the store's vocabulary (store, advisors, models, "repair order") versus none.
Routing: each menu utterance is recognized the way a speech gather does it (soxr, the menu's
hints as prompt) and classified among flows/main.yaml's menu intents with the gather's own
thresholds; the share that reaches its branch is reported (target ≥ 90 %).
`--text` runs only the text-level intent evaluation (bench/intent_eval.py, bench/intents.txt).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import tempfile
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import jiwer
import numpy as np

REPO = Path(__file__).resolve().parents[1]
UTTERANCES = Path(__file__).with_suffix(".txt")
DEFAULT_CACHE = Path(os.environ.get("DRIVELINE_SPEECH_EVAL_CACHE", REPO / "var/cache/speech-eval"))
VOICES = ("piper", "espeak")


@dataclass(frozen=True)
class Utterance:
    branch: str | None  # the main menu choice it must reach; None: a store-words sentence
    text: str


def utterances(path: Path = UTTERANCES) -> list[Utterance]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        branch, _, text = line.partition("|")
        out.append(Utterance(None if branch.strip() == "-" else branch.strip(), text.strip()))
    return out


# --- rendering: TTS, then a phone line --------------------------------------------------------


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())


def phone_line(source: Path, target: Path) -> None:
    """Any WAV → 8 kHz μ-law (sox's resampler) → back to 8 kHz 16-bit PCM, like a call leg."""
    with tempfile.TemporaryDirectory() as tmp:
        ulaw = Path(tmp) / "line.wav"
        subprocess.run(["sox", str(source), "-r", "8000", "-c", "1", "-e", "mu-law", str(ulaw)],
                       check=True, capture_output=True)  # fmt: skip
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part.wav")
        subprocess.run(["sox", str(ulaw), "-e", "signed-integer", "-b", "16", str(partial)],
                       check=True, capture_output=True)  # fmt: skip
        partial.replace(target)


_piper = None


def _seed(text: str) -> int:
    """A seed of the text alone: a clip does not depend on which clips were cached before."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def render(text: str, voice: str, cache: Path = DEFAULT_CACHE) -> Path:
    """The phone-line WAV of `text` in `voice` (piper or espeak), rendered once into `cache`;
    the same clip on every machine, so the evaluation's figures are too."""
    from ivr.speech import cache_key

    target = cache / f"{voice}-seeded" / f"{cache_key(voice, text)}.wav"
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        wide = Path(tmp) / "tts.wav"
        if voice == "piper":
            global _piper
            if _piper is None:
                from speech.piper_tts import PiperTTS

                _piper = PiperTTS(Path(tmp))
            _write_wav(wide, _piper.synthesize(text, seed=_seed(text)), _piper.sample_rate)
        elif voice == "espeak":
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "165", "-w", str(wide), text],
                           check=True, capture_output=True)  # fmt: skip
        else:
            raise ValueError(f"unknown voice {voice!r}")
        phone_line(wide, target)
    return target


def read_pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as wav:
        assert wav.getframerate() == 8000 and wav.getsampwidth() == 2
        return wav.readframes(wav.getnframes())


def naive_upsample(pcm: bytes) -> bytes:
    """8 → 16 kHz by repeating each sample: no low-pass, so the spectrum's mirror stays in."""
    return np.repeat(np.frombuffer(pcm, dtype="<i2"), 2).astype("<i2").tobytes()


# --- the prompts the measures use ---------------------------------------------------------------


def demo_vocabulary() -> str:
    """The demo store's words in the form records.transcripts.store_vocabulary gives them."""
    from records.demo import DEMO_STORE_NAME, DEMO_USERS, MODELS

    advisors = ", ".join(u.name for u in DEMO_USERS if u.role.value == "advisor")
    models = ", ".join(f"Chevrolet {m[0]}" for m in MODELS)
    return (
        f"Service department call at {DEMO_STORE_NAME}. Repair order, RO number, oil change, "
        f"brakes, tires, pickup, loaner. Advisors: {advisors}. Vehicles: {models}."
    )


def menu_step():  # type: ignore[no-untyped-def]
    """The shipped main menu's gather spec (choices, threshold)."""
    from ivr.flow import load_flows

    return load_flows(REPO / "flows")["main"].steps["menu"].spec


# --- running ----------------------------------------------------------------------------------


def transcribe(stt, pcm: bytes, *, naive: bool, prompt: str | None) -> str:  # type: ignore[no-untyped-def]
    if naive:
        segments = stt.transcribe(naive_upsample(pcm), sample_rate=16000, prompt=prompt)
    else:
        segments = stt.transcribe(pcm, sample_rate=8000, prompt=prompt)
    return " ".join(s.text for s in segments).strip()


_WER_CLEAN = jiwer.Compose(
    [
        jiwer.ToLowerCase(),
        jiwer.SubstituteRegexes({r"\bpick-up\b": "pickup", r"-": " ", r"'s\b": "s"}),
        jiwer.RemovePunctuation(),
        jiwer.RemoveMultipleSpaces(),
        jiwer.Strip(),
        jiwer.ReduceToListOfListOfWords(),
    ]
)


def wer(references: list[str], hypotheses: list[str]) -> float:
    return jiwer.wer(
        references,
        [h or "<empty>" for h in hypotheses],
        reference_transform=_WER_CLEAN,
        hypothesis_transform=_WER_CLEAN,
    )


@dataclass
class Routed:
    text: str
    voice: str
    want: str
    heard: str
    got: str | None
    score: float

    @property
    def ok(self) -> bool:
        return self.got == self.want


def route_menu(stt, items: list[Utterance], voices: tuple[str, ...], cache: Path) -> list[Routed]:  # type: ignore[no-untyped-def]
    """Menu utterances recognized and understood exactly as a speech gather on a call does:
    the gather's hints as prompt, the intent scores of the speech service's model, the gather's
    thresholds; an unsure answer counts as routed when the intent asked back is the right one
    (the caller says yes)."""
    from ivr.flow.steps.gather import hints
    from ivr.flow.steps.understand import decide
    from ivr.speech import hint_prompt
    from speech.recognizer import intent_classifier

    spec = menu_step()
    prompt = hint_prompt(hints(spec))
    classifier = intent_classifier()
    out = []
    for item in items:
        if item.branch is None:
            continue
        for voice in voices:
            heard = transcribe(stt, read_pcm(render(item.text, voice, cache)), naive=False,
                               prompt=prompt)  # fmt: skip
            decision = decide(classifier.scores(heard, spec.intents), spec.accept_at,
                              spec.confirm_at)  # fmt: skip
            right = decision.kind == "accept" or decision.intent == item.branch
            got = decision.intent if decision.kind != "miss" and right else None
            out.append(Routed(item.text, voice, item.branch, heard, got, decision.score))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--voices", default=",".join(VOICES))
    parser.add_argument(
        "--text",
        action="store_true",
        help="Only the text-level intent evaluation (bench/intents.txt).",
    )
    args = parser.parse_args()
    if args.text:
        from bench.intent_eval import run_text

        run_text()
        return
    voices = tuple(v.strip() for v in args.voices.split(",") if v.strip())

    from speech.recognizer import endpointed_stt

    items = utterances()
    started = time.monotonic()
    clips = {(u.text, v): read_pcm(render(u.text, v, args.cache)) for u in items for v in voices}
    print(f"{len(items)} utterances × {len(voices)} voices rendered "
          f"in {time.monotonic() - started:.1f}s (cache {args.cache})")  # fmt: skip
    audio_s = sum(len(p) for p in clips.values()) / 16000
    stt = endpointed_stt(None, 2)  # as the speech service runs it: VAD done by the channel
    vocabulary = demo_vocabulary()
    configs = [
        ("naive resampling, no prompt", True, None),
        ("naive resampling, vocabulary prompt", True, vocabulary),
        ("soxr resampling, no prompt", False, None),
        ("soxr resampling, vocabulary prompt", False, vocabulary),
    ]
    print(f"\nWER on {len(clips)} clips ({audio_s:.0f} s of 8 kHz μ-law audio), tiny.en int8:")
    header = "| configuration | " + " | ".join(voices) + " | all | wall s |"
    print(header)
    print("|" + "---|" * (len(voices) + 3))
    for name, naive, prompt in configs:
        t0 = time.monotonic()
        refs: dict[str, list[str]] = {v: [] for v in voices}
        hyps: dict[str, list[str]] = {v: [] for v in voices}
        for u in items:
            for v in voices:
                refs[v].append(u.text)
                hyps[v].append(transcribe(stt, clips[(u.text, v)], naive=naive, prompt=prompt))
        per_voice = [wer(refs[v], hyps[v]) for v in voices]
        overall = wer(sum(refs.values(), []), sum(hyps.values(), []))
        cells = " | ".join(f"{w:.1%}" for w in per_voice)
        print(f"| {name} | {cells} | {overall:.1%} | {time.monotonic() - t0:.1f} |")

    routed = route_menu(stt, items, voices, args.cache)
    right = sum(r.ok for r in routed)
    print(f"\nmenu routing (flows/main.yaml menu intents, hints as prompt, thresholds "
          f"{menu_step().accept_at}/{menu_step().confirm_at}): {right}/{len(routed)} = "
          f"{right / len(routed):.1%} "
          "(target ≥ 90 %)")  # fmt: skip
    for voice in voices:
        mine = [r for r in routed if r.voice == voice]
        print(f"  {voice}: {sum(r.ok for r in mine)}/{len(mine)}")
    wrong = [r for r in routed if r.got is not None and not r.ok]
    print(f"  sent to a wrong branch: {len(wrong)} (the rest of the misses are reprompted)")
    for r in routed:
        if not r.ok:
            print(f"  miss [{r.voice}] {r.text!r} heard {r.heard!r} → {r.got} ({r.score:.2f})")


if __name__ == "__main__":
    main()
