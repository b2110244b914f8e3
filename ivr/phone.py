"""Phone numbers are E.164 everywhere inside Driveline; this is the one place that reads them."""

from __future__ import annotations

import phonenumbers


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
