"""Card numbers and other long digit runs are masked, keyed or spoken; short numbers stay."""

from __future__ import annotations

import pytest

from ivr.redact import MASK, redact

MASKED = [
    ("my card is 4111111111111111 thanks", f"my card is {MASK} thanks"),
    ("4111 1111 1111 1111", MASK),
    ("4111-1111-1111-1111.", f"{MASK}."),
    ("card 3782 822463 10005 exp", f"card {MASK} exp"),  # Amex, 15 digits
    ("it's 6011,0009,9013,9424", f"it's {MASK}"),
    (
        "four one one one one one one one one one one one one one one one",
        MASK,
    ),
    (
        "Sure, it's four one one one, one one one one, one one one one, one one one one. Okay?",
        f"Sure, it's {MASK}. Okay?",
    ),
    ("Four-one-one-one one-one-one-one one-one-one-one one-one-one-one", MASK),
    ("forty one eleven, double one eleven, eleven eleven, one one one one", MASK),
    ("4111 1111 1111 one one one one", MASK),  # Whisper mixing digits and words
    ("five five five five triple four four four four four four four four", MASK),
    ("1234567890123", MASK),  # 13 digits: not a card by Luhn, still masked
    ("1234567890123456789", MASK),  # 19 digits
    ("4111 1111 1111 1111 exp 0427 code 123", f"{MASK} exp 0427 code 123"),
    ("4111 1111 1111 1111 0427 123", MASK),  # card, expiry and code in one breath
    ("Caller: 4111111111111111\nAdvisor: got it", f"Caller: {MASK}\nAdvisor: got it"),
    ("two cards: 4111111111111111 and 5500 0000 0000 0004", f"two cards: {MASK} and {MASK}"),
]

KEPT = [
    "call me at 555-020-0001",
    "my number is +1 (555) 020-0001",
    "my number is five five five, zero two zero, zero zero zero one",
    "repair order 100234",
    "R O number one zero zero two three four",
    "the VIN is 1HGCM82633A004352",
    "it has 45,000 miles and the bill was 1,234.56",
    "I'll be there at 4 o'clock on 2026-11-25",
    "oh one more thing, is it ready?",
    "twenty twenty four Honda Civic",
    "one two three four five six seven eight nine zero one two",  # 12 digits
    "123456789012",
    "",
    "no numbers here at all",
    "double check the oil",
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_long_digit_runs_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", KEPT)
def test_short_numbers_and_words_are_kept(text: str) -> None:
    assert redact(text) == text


def test_masking_is_idempotent() -> None:
    once = redact("card 4111 1111 1111 1111 please")
    assert redact(once) == once
