"""An advisor or a vehicle the caller names, among the few this call knows about.

The candidates come from the call (the store's advisors, the customer's vehicles), so matching
is a choice among a handful of names, loose enough for a recogniser's spelling ("Lynda" for
Linda, "Taho" for Tahoe, "CRV" for CR-V) and for nicknames ("Dave" for David). A name that
is also an everyday word ("Will", "Bill", "Mark") counts only when the transcript capitalises
it inside the sentence or it follows "to", "with", "for" or "from". Two candidates matching
equally is no answer: better to ask than to ring the wrong Dave.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rapidfuzz import fuzz

from ivr.domain import AdvisorInfo, VehicleInfo

NICKNAMES: dict[str, set[str]] = {
    "david": {"dave", "davey"},
    "michael": {"mike", "mikey"},
    "robert": {"rob", "bob", "bobby", "robbie"},
    "william": {"will", "bill", "billy", "liam"},
    "james": {"jim", "jimmy", "jamie"},
    "thomas": {"tom", "tommy"},
    "christopher": {"chris"},
    "christine": {"chris", "chrissy"},
    "elizabeth": {"liz", "beth", "betty", "lizzie"},
    "katherine": {"kate", "katie", "kathy"},
    "catherine": {"kate", "katie", "cathy"},
    "steven": {"steve"},
    "stephen": {"steve"},
    "daniel": {"dan", "danny"},
    "joseph": {"joe", "joey"},
    "anthony": {"tony"},
    "richard": {"rick", "rich", "dick", "ricky"},
    "matthew": {"matt"},
    "nicholas": {"nick"},
    "samuel": {"sam"},
    "samantha": {"sam"},
    "alexander": {"alex"},
    "alexandra": {"alex"},
    "benjamin": {"ben"},
    "jennifer": {"jen", "jenny"},
    "patricia": {"pat", "patty", "trish"},
    "patrick": {"pat"},
    "susan": {"sue", "susie"},
    "andrew": {"andy", "drew"},
    "gregory": {"greg"},
    "jeffrey": {"jeff"},
    "kenneth": {"ken", "kenny"},
    "ronald": {"ron"},
    "donald": {"don"},
    "edward": {"ed", "eddie", "ted"},
    "margaret": {"maggie", "peggy", "meg"},
    "jonathan": {"jon"},
    "timothy": {"tim"},
    "zachary": {"zach", "zack"},
    "deborah": {"deb", "debbie"},
    "rebecca": {"becky"},
    "victoria": {"vicky", "tori"},
}
# First names that are also everyday words: they need a cue (see the module docstring).
COMMON_WORDS = {
    "will", "bill", "mark", "pat", "sue", "rob", "jack", "art", "grant", "frank", "may",
    "june", "rose", "hope", "joy", "faith", "dawn", "chase", "drew", "gene", "ray", "dean",
    "page", "miles", "cliff", "don", "guy", "sunny", "summer", "april", "august", "sam",
    "ed", "al", "max", "chip", "buck", "rich", "bob", "penny", "ken", "jean", "carol",
}  # fmt: skip
CUES = {"to", "with", "for", "from", "ask", "is", "was", "wants"}
MAKE_ALIASES = {
    "chevrolet": {"chevy", "chev"},
    "volkswagen": {"vw"},
    "mercedes": {"merc", "benz"},
    "mercedes-benz": {"mercedes", "benz", "merc"},
    "gmc": {"gmc", "jimmy"},
    "toyota": {"yota"},
}
# Kinds of vehicle a caller says instead of the model ("my truck").
KINDS: dict[str, set[str]] = {
    "truck": {
        "silverado", "sierra", "f150", "f250", "f350", "ram", "1500", "2500", "tacoma",
        "tundra", "colorado", "canyon", "ranger", "frontier", "ridgeline", "titan",
        "gladiator", "maverick", "santa cruz",
    },
    "van": {"odyssey", "sienna", "pacifica", "transit", "express", "promaster", "sprinter",
            "carnival", "caravan", "savana"},
}  # fmt: skip
# Makes and models callers name, whether or not this customer owns one: the intent model hears
# them as "car" (ivr/slots/generalize.py), since its examples say "my car", "my truck".
MAKES = {
    "chevy",
    "chevrolet",
    "ford",
    "toyota",
    "honda",
    "nissan",
    "gmc",
    "buick",
    "cadillac",
    "dodge",
    "jeep",
    "ram",
    "chrysler",
    "hyundai",
    "kia",
    "subaru",
    "mazda",
    "volkswagen",
    "vw",
    "bmw",
    "audi",
    "mercedes",
    "lexus",
    "acura",
    "infiniti",
    "tesla",
    "volvo",
    "lincoln",
}
MODELS = {
    "tahoe", "suburban", "equinox", "traverse", "malibu", "camaro", "corvette", "blazer",
    "trailblazer", "trax", "bolt", "colorado", "silverado", "impala", "cruze", "sonic", "spark",
    "yukon", "sierra", "acadia", "terrain", "canyon", "enclave", "encore", "envision",
    "escalade", "f150", "f250", "explorer", "escape", "expedition", "edge", "mustang", "bronco",
    "ranger", "maverick", "fusion", "focus", "camry", "corolla", "rav4", "highlander",
    "tacoma", "tundra", "sienna", "prius", "4runner", "civic", "accord", "crv", "pilot",
    "odyssey", "hrv", "altima", "sentra", "rogue", "pathfinder", "frontier", "wrangler",
    "cherokee", "grand", "durango", "charger", "challenger", "pacifica", "elantra", "sonata",
    "tucson", "santa", "sorento", "sportage", "telluride", "outback", "forester", "crosstrek",
    "cx5", "jetta", "passat", "tiguan", "atlas",
}  # fmt: skip
OWNED = {"my", "the", "our", "his", "her", "their"}  # ... Tahoe: one the caller has
NAME_SCORE = 0.8  # a heard word this close to a name (rapidfuzz ratio) is that name


def _nicknames(first: str) -> set[str]:
    """Every other form of a first name: "bob" → robert, rob, bobby, robbie."""
    forms: set[str] = set()
    for canonical, nicks in NICKNAMES.items():
        group = {canonical, *nicks}
        if first in group:
            forms |= group
    return forms - {first}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower().replace("'s", ""))


def _cased(text: str) -> list[str]:
    """The words as the recogniser wrote them (for capitals), aligned with `_words`."""
    return re.findall(r"[A-Za-z0-9]+", text.replace("'s", "").replace("\u2019s", ""))


def _close(word: str, name: str) -> float:
    if word == name:
        return 1.0
    if len(name) < 4 or len(word) < 3 or word[0] != name[0]:
        return 0.0  # short names are matched exactly; recognisers rarely miss a first sound
    return fuzz.ratio(word, name) / 100


def _name_score(words: list[str], cased: list[str], first: str, last: str) -> float:
    """How well the words name this person (0: not at all). Full name > first name > nickname."""
    forms = {**{n: 0.95 for n in _nicknames(first)}, first: 1.0}
    best = 0.0
    for i, word in enumerate(words):
        for form, weight in forms.items():
            score = _close(word, form) * weight
            if score < NAME_SCORE:
                continue
            if (word in COMMON_WORDS or form in COMMON_WORDS) and not _cued(words, cased, i):
                continue
            if last and i + 1 < len(words) and _close(words[i + 1], last) >= NAME_SCORE:
                score += 0.5
            best = max(best, score)
        if last and len(last) >= 4 and _close(word, last) >= 0.9:
            best = max(best, 0.9)  # "Mr. Jones"
    return best


def _cued(words: list[str], cased: list[str], i: int) -> bool:
    if i > 0 and words[i - 1] in CUES:
        return True
    capital = i < len(cased) and cased[i][:1].isupper()
    return capital and i > 0


def advisor_named(text: str, advisors: Sequence[AdvisorInfo]) -> AdvisorInfo | None:
    """The one advisor the caller named ("can I talk to Linda", "Dave left me a message")."""
    words, cased = _words(text), _cased(text)
    scored: list[tuple[float, AdvisorInfo]] = []
    seen: set[int] = set()
    for advisor in advisors:
        if advisor.id in seen:
            continue
        seen.add(advisor.id)
        parts = _words(advisor.name) or _words(advisor.username)
        first, last = parts[0], parts[-1] if len(parts) > 1 else ""
        score = _name_score(words, cased, first, last)
        if score > 0:
            scored.append((score, advisor))
    if not scored:
        return None
    scored.sort(key=lambda s: -s[0])
    if len(scored) > 1 and scored[1][0] >= scored[0][0]:
        return None  # two equally good: ambiguous
    return scored[0][1]


def _compact(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _vehicle_score(words: list[str], vehicle: VehicleInfo) -> float:
    """2 for its model heard ("Tahoe", "CRV", "F 150"), 1 for its make or kind ("the Chevy",
    "my truck"), plus 0.5 for its year; 0 when nothing of it was heard."""
    grams = {w for w in words} | {a + b for a, b in zip(words, words[1:], strict=False)}
    grams |= {a + b + c for a, b, c in zip(words, words[1:], words[2:], strict=False)}
    model = _compact(vehicle.model)
    score = 0.0
    if model:
        first_model_word = _compact(vehicle.model.split()[0])
        for form in {model, first_model_word}:
            if len(form) < 2:
                continue
            if form in grams or (
                len(form) >= 5 and any(_close(g, form) >= NAME_SCORE for g in grams)
            ):
                score = 2.0
    make = _compact(vehicle.make)
    if score == 0 and make:
        forms = {make} | MAKE_ALIASES.get(vehicle.make.lower(), set())
        if forms & grams:
            score = 1.0
    if score == 0:
        for kind, models in KINDS.items():
            if kind in words and (model in models or _compact(vehicle.model.split()[0]) in models):
                score = 1.0
    if vehicle.year and str(vehicle.year) in words:
        score += 0.5
    return score


def vehicle_named(text: str, vehicles: Sequence[VehicleInfo]) -> VehicleInfo | None:
    """The one vehicle of these the caller named ("my Tahoe", "the Silverado", "the 2019")."""
    words = _words(text)
    scored = [(s, v) for v in vehicles if (s := _vehicle_score(words, v)) > 0]
    if not scored:
        return None
    scored.sort(key=lambda s: -s[0])
    if len(scored) > 1 and scored[1][0] >= scored[0][0] and scored[1][1] != scored[0][1]:
        return None
    return scored[0][1]


def advisor_words(words: Sequence[str], advisor: AdvisorInfo) -> set[int]:
    """Indexes of `words` (lower-case) that name `advisor`: first name, nickname, last name."""
    parts = _words(advisor.name) or _words(advisor.username)
    forms = {parts[0], *_nicknames(parts[0]), *(parts[1:] if len(parts) > 1 else ())}
    return {i for i, w in enumerate(words) if any(_close(w, f) >= NAME_SCORE for f in forms)}


def vehicle_words(words: Sequence[str], vehicle: VehicleInfo) -> set[int]:
    """Indexes of `words` (lower-case) that name `vehicle`: its model (also spelled out, "c r
    v"), make, or year."""
    forms = {_compact(vehicle.model), _compact(vehicle.model.split()[0]) if vehicle.model else ""}
    forms |= {_compact(vehicle.make), *MAKE_ALIASES.get(vehicle.make.lower(), set())}
    forms |= {str(vehicle.year)} if vehicle.year else set()
    forms.discard("")
    found: set[int] = set()
    for size in (3, 2, 1):
        for i in range(len(words) - size + 1):
            gram = "".join(words[i : i + size])
            if gram in forms or (
                size == 1 and any(len(f) >= 5 and _close(gram, f) >= NAME_SCORE for f in forms)
            ):
                found |= set(range(i, i + size))
    return found


def vehicle_vocabulary(words: Sequence[str]) -> set[int]:
    """Indexes of `words` that are a make or model (any customer's) owned: "my Tahoe", "the
    F 150", "my 2019 Chevy Bolt"; not a vehicle for sale ("a new Silverado", "the new Trax")."""
    found: set[int] = set()
    i = 0
    while i < len(words):
        size = next(
            (
                n
                for n in (2, 1)
                if "".join(words[i : i + n]) in MODELS | (MAKES if n == 1 else set())
            ),
            0,
        )
        before = words[i - 1] if i else ""
        owned = before in OWNED or (i - 1) in found
        if size and owned:
            found |= set(range(i, i + size))
            i += size
        elif before.isdigit() and len(before) == 4 and i > 1 and words[i - 2] in OWNED and size:
            found |= set(range(i - 1, i + size))  # "my 2019 Tahoe"
            i += size
        else:
            i += 1
    return found
