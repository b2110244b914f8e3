"""Numbers a caller speaks, as a recogniser writes them: digits, words, or both mixed.

"R O seven oh one two three", "seventy thousand one twenty three", "70,123", "7-0-1-2-3" and
"five five five, two oh one, double oh oh one" all come out as digit strings. People read long
numbers in groups ("forty seven eleven" is 4711, "one twenty three" is 123), so a run of number
words is read group by group and the groups are joined; only "hundred" and "thousand" multiply.
"oh" and "o" are zero inside a run of numbers, never alone ("oh, it's the Tahoe").
"""

from __future__ import annotations

import re

UNITS = {
    "zero": 0,
    "oh": 0,
    "o": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
TEENS = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fourty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
REPEATS = {"double": 2, "triple": 3}
SCALES = {"hundred": 100, "thousand": 1000}
_ZERO_ALONE = {"oh", "o"}

NUMBER_WORDS = set(UNITS) | set(TEENS) | set(TENS) | set(REPEATS) | set(SCALES)
_LOW = set(UNITS) | set(TEENS) | set(TENS)


def tokens(text: str) -> list[str]:
    """Lower-case words and digit groups: "R.O. #70,123" → ["r", "o", "70", "123"];
    "5:30" stays one token ("5:30"), times are read elsewhere."""
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"(?<=\d)[,.\-/](?=\d)", " ", text)  # 70,123 / 555-0100 / 7.0.1
    text = re.sub(r"(?<=\d) (?=\d)", " ", text)
    return re.findall(r"\d+:\d\d|[a-z0-9']+", text.replace("'s", ""))


def _is_number(token: str, prev: str | None, nxt: str | None) -> bool:
    if token.isdigit():
        return True
    if token in _ZERO_ALONE:  # zero only next to other numbers, and not the O of "R O"
        if prev == "r":
            return False
        return any(t is not None and (t.isdigit() or t in NUMBER_WORDS) for t in (prev, nxt))
    if token == "and":  # "seven hundred and one"
        return prev in SCALES and nxt is not None and (nxt in NUMBER_WORDS or nxt.isdigit())
    if token == "a":  # "a hundred": one hundred
        return nxt in SCALES
    return token in NUMBER_WORDS


def runs(text: str) -> list[list[str]]:
    """The runs of number tokens in `text`, in order."""
    return [run for _, run in located_runs(tokens(text))]


def located_runs(words: list[str]) -> list[tuple[int, list[str]]]:
    """(index of its first token, the run) for each run of number tokens in `words`."""
    found: list[tuple[int, list[str]]] = []
    current: list[str] = []
    for i, word in enumerate(words):
        prev = words[i - 1] if i else None
        nxt = words[i + 1] if i + 1 < len(words) else None
        if _is_number(word, prev, nxt):
            current.append(word)
        elif current:
            found.append((i - len(current), current))
            current = []
    if current:
        found.append((len(words) - len(current), current))
    return found


def _groups(words: list[str]) -> str:
    """Words without "thousand" as digits, group by group: "one twenty three" → "123"."""
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else None
        if word in REPEATS and nxt is not None and (nxt in UNITS or nxt.isdigit()):
            digit = str(UNITS[nxt]) if nxt in UNITS else nxt
            out.append(digit * REPEATS[word])
            i += 2
            continue
        if word == "and":
            i += 1
            continue
        if word in UNITS or word in TEENS or word in TENS:
            value, i = _below_hundred(words, i)
            if i < len(words) and words[i] == "hundred":  # "seven hundred (and) one"
                value, i = value * 100, i + 1
                if i < len(words) and words[i] == "and":
                    i += 1
                if i < len(words) and words[i] in _LOW and UNITS.get(words[i]) != 0:
                    low, i = _below_hundred(words, i)
                    value += low
                out.append(f"{value:03d}")
                continue
            out.append(str(value))
            continue
        out.append(word if word.isdigit() else "")
        i += 1
    return "".join(out)


def _below_hundred(words: list[str], i: int) -> tuple[int, int]:
    """(value, next index) of "twenty three", "twelve" or "seven" at `i`."""
    word = words[i]
    if word in TENS:
        nxt = words[i + 1] if i + 1 < len(words) else None
        if nxt in UNITS and nxt not in _ZERO_ALONE and UNITS[nxt] > 0:
            return TENS[word] + UNITS[nxt], i + 2
        return TENS[word], i + 1
    if word in TEENS:
        return TEENS[word], i + 1
    return UNITS[word], i + 1


def run_digits(words: list[str]) -> str:
    """One run of number tokens as a digit string: "seventy thousand one twenty three" → "70123"."""
    words = ["one" if w == "a" else w for w in words]
    if "thousand" in words:
        at = words.index("thousand")
        high = _groups(words[:at]) or "1"
        low = _groups([w for w in words[at + 1 :] if w != "thousand"])
        if len(low) <= 3:
            return str(int(high) * 1000 + int(low or "0"))
        return high + low
    return _groups(words)


def numbers(text: str) -> list[str]:
    """Every number in `text` as digits, in order: "RO 4711, call 555 0100" → 4711, 5550100."""
    return [d for d in (run_digits(r) for r in runs(text)) if d]


def spoken_digits(text: str) -> str:
    """All the digits a caller said, joined: what a keypad-style gather takes from speech."""
    return "".join(numbers(text))
