import pytest

from ivr.phone import BadPhoneNumber, spoken, to_e164, try_e164


@pytest.mark.parametrize(
    "raw",
    [
        "(555) 020-0001",
        "555.020.0001",
        "555 020 0001",
        "5550200001",
        "1-555-020-0001",
        "+1 555 020 0001",
        "+15550200001",
        "sip:+15550200001@127.0.0.1:5060",
        "tel:+1-555-020-0001",
    ],
)
def test_every_format_reads_as_the_same_e164(raw: str) -> None:
    assert to_e164(raw) == "+15550200001"


def test_region_decides_numbers_without_country_code() -> None:
    assert to_e164("020 7946 0018", region="GB") == "+442079460018"


@pytest.mark.parametrize("raw", ["", "abc", "12", "anonymous"])
def test_garbage_is_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(BadPhoneNumber):
        to_e164(raw)
    assert try_e164(raw) is None


def test_spoken_groups_digits_for_tts() -> None:
    assert spoken("+15550200001") == "5 5 5, 0 2 0, 0 0 0 1"
