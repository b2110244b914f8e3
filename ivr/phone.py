"""Phone numbers are E.164 everywhere inside Driveline; this is the one place that reads them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType


class BadPhoneNumber(ValueError):
    pass


def to_e164(raw: str, region: str = "US") -> str:
    """Any way a person, a DMS or a SIP header writes a number → E.164.

    `(555) 201-0001`, `555.201.0001`, `+1 555 201 0001`, `sip:+15552010001@host` → `+15552010001`.
    """
    text = (raw or "").strip()
    if text.lower().startswith(("sip:", "sips:", "tel:")):
        text = text.split(":", 1)[1].split("@", 1)[0].split(";", 1)[0]
    if not text:
        raise BadPhoneNumber("empty phone number")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise BadPhoneNumber(f"not a phone number: {raw!r} ({exc})") from None
    if not phonenumbers.is_possible_number(number):
        raise BadPhoneNumber(f"not a possible phone number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def try_e164(raw: str | None, region: str = "US") -> str | None:
    """E.164 or None: for caller IDs, which may be 'anonymous' or garbage."""
    try:
        return to_e164(raw or "", region)
    except BadPhoneNumber:
        return None


def spoken(e164: str) -> str:
    """Digits grouped for TTS: +15552010001 → '5 5 5, 2 0 1, 0 0 0 1'."""
    number = phonenumbers.parse(e164)
    national = str(number.national_number)
    groups = [national[:3], national[3:6], national[6:]] if len(national) == 10 else [national]
    return ", ".join(" ".join(g) for g in groups if g)


def uri_user(uri: str) -> str:
    """The user part of a SIP or tel URI: `"Bob" <sip:+15552010001@host;user=phone>` →
    `+15552010001`; '' for anything else."""
    text = uri.strip()
    if "<" in text:
        text = text.split("<", 1)[1].split(">", 1)[0]
    scheme, sep, rest = text.partition(":")
    if not sep or scheme.lower() not in ("sip", "sips", "tel"):
        return ""
    user = rest.split("@", 1)[0] if "@" in rest else ""
    if scheme.lower() == "tel":
        user = rest
    return user.split(";", 1)[0]


# --- which numbers may be dialled -------------------------------------------------------------

# +1 555 XXX XXXX: no such area code, so nobody is ever billed. The demo store and the tests
# use these numbers and allow them explicitly; a real store never needs to.
FICTIONAL = r"^\+1555\d{7}$"

_GEOGRAPHIC_TYPES = {
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE,
}
# Written like a number (digits and the usual separators), whatever the URI's host: a trunk
# would dial it, so it is checked like one.
_NUMERIC = re.compile(r"\+?[\d\-\.\(\) ]{3,}")


def nanp_geographic(e164: str) -> bool:
    """A US or Canadian geographic number (fixed or mobile) by libphonenumber's metadata.

    Not premium-rate (900), toll-free, personal or shared-cost (5XX, 700), nor the Caribbean
    and other NANP countries (+1 876 Jamaica, +1 809 Dominican Republic...), which share +1 but
    bill like international calls: the classic toll-fraud destinations. A 976 exchange (an old
    premium block) is refused too.
    """
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return False
    if number.country_code != 1 or not phonenumbers.is_valid_number(number):
        return False
    if phonenumbers.region_code_for_number(number) not in ("US", "CA"):
        return False
    if str(number.national_number)[3:6] == "976":
        return False
    return phonenumbers.number_type(number) in _GEOGRAPHIC_TYPES


@dataclass(frozen=True)
class DestinationRule:
    """The numbers that may be dialled: US/Canadian geographic ones (unless `geographic` is
    off) and any number fully matching one of `allow` (regular expressions on E.164).

    The one rule for every outbound call: a store's policy checks it before a call is queued
    (usecases/outbound.py), and the SIP worker checks it again before it dials anything, so a
    queued job, a flow's transfer to a number or an advisor's contact cannot reach a premium or
    international number that the store did not allow.
    """

    geographic: bool = True
    allow: tuple[str, ...] = ()

    def allows(self, e164: str) -> bool:
        if self.geographic and nanp_geographic(e164):
            return True
        return any(re.fullmatch(pattern, e164) for pattern in self.allow)

    def describe(self) -> str:
        """For refusals: what this rule lets through."""
        parts = ["US/Canadian geographic numbers"] if self.geographic else []
        parts += list(self.allow)
        return ", ".join(parts) or "none"

    def allows_uri(self, uri: str, region: str = "US") -> bool:
        """A SIP/tel URI: one whose user part is written like a number (`sip:+1900...@trunk`,
        `sip:011...@host`, any `tel:`) must be an allowed number; a named user
        (`sip:advisor@pbx`) is not a phone number and is allowed."""
        user = uri_user(uri)
        if not uri.strip().lower().startswith("tel:") and not _NUMERIC.fullmatch(user):
            return True
        number = try_e164(user, region)
        return number is not None and self.allows(number)


def destination_rule(geographic: bool, allow: Sequence[str]) -> DestinationRule:
    """Settings → rule; a pattern that is not a regular expression is a ValueError naming it."""
    for pattern in allow:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
    return DestinationRule(geographic=geographic, allow=tuple(allow))
