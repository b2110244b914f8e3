"""Who called which number: URI parsing and E.164 normalisation of an INVITE."""

from __future__ import annotations

import pytest

from ivr.phone import uri_user
from sip.endpoint import EndpointConfig
from sip.events import CallOffered
from sip.worker import inbound_from, parse_bind


@pytest.mark.parametrize(
    ("uri", "user"),
    [
        ("sip:+15550100001@10.0.0.1:5060", "+15550100001"),
        ('"Bob" <sip:5552010001@trunk.example;transport=udp>;tag=x', "5552010001"),
        ("<sip:+15550100001;npdi@host;user=phone>", "+15550100001"),
        ("tel:+15550100001", "+15550100001"),
        ("sip:host.example", ""),
        ("garbage", ""),
    ],
)
def test_uri_user(uri: str, user: str) -> None:
    assert uri_user(uri) == user


def offer(request_uri: str, to_uri: str, from_uri: str) -> CallOffered:
    return CallOffered(1, "abc@host", request_uri, from_uri, to_uri, "10.0.0.9:5060", 0.0)


def test_did_from_request_uri_and_caller_from_from_header() -> None:
    call = inbound_from(
        offer("sip:5550100001@w1:5080", "<sip:+15550100009@store>", '"X" <sip:(555) 201-0001@t>')
    )
    assert call.did == "+15550100001"  # the Request-URI wins over To
    assert call.caller == "+15552010001"


def test_did_falls_back_to_to_when_request_uri_is_not_a_number() -> None:
    call = inbound_from(offer("sip:worker@w1:5080", "<sip:5550100001@store>", "<sip:anonymous@x>"))
    assert call.did == "+15550100001"
    assert call.caller is None  # withheld
    assert call.caller_raw == "anonymous"


def test_max_calls_cannot_exceed_the_wheel() -> None:
    with pytest.raises(ValueError, match="max_calls"):
        EndpointConfig(max_calls=5)


def test_parse_bind() -> None:
    assert parse_bind("127.0.0.1:5080") == ("127.0.0.1", 5080)
