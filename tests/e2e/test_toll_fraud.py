"""The far end cannot make the worker dial anything (toll fraud).

pjsua's defaults obey the other party: a REFER inside a call gets 202 Accepted and an INVITE to
whatever the Refer-To names (a premium-rate number, a foreign trunk), and a 3xx answer to our
own INVITE can be followed to its Contact. The worker refuses both. A UDP socket stands in for
the number the far end asked for and must receive nothing.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.e2e.harness import RunningUas, Sipp, WorkerProcess

HOLD = "+15550100003"  # a short greeting, then listen until the caller hangs up


@pytest.fixture
def fraud_target() -> Iterator[socket.socket]:
    """Where the worker would send its INVITE if it obeyed the REFER."""
    target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target.bind(("127.0.0.1", 0))
    target.settimeout(0.5)
    yield target
    target.close()


@pytest.mark.parametrize("scheme", ["sip", "tel"])
def test_a_refer_from_the_caller_is_declined_and_dials_nothing(
    worker: WorkerProcess, sipp: Sipp, fraud_target: socket.socket, scheme: str
) -> None:
    port = fraud_target.getsockname()[1]
    refer_to = f"sip:+19005550199@127.0.0.1:{port}" if scheme == "sip" else "tel:+19005550199"
    result = sipp.run("refer.xml", service=HOLD, call_id=f"refer-{scheme}", keys={
        "refer_to": refer_to,
    })  # fmt: skip
    assert result.returncode == 0, result.describe()  # 603 to the REFER, then our BYE → 200
    assert result.count("SuccessfulCall") == 1
    assert "SIP/2.0 202" not in result.messages
    with pytest.raises(TimeoutError):
        data = fraud_target.recv(4096)
        pytest.fail(f"the worker sent something to the REFER target: {data[:200]!r}")
    worker.wait_idle()


def test_a_redirect_from_the_called_phone_is_not_followed(
    worker: WorkerProcess, sipp: Sipp, fraud_target: socket.socket
) -> None:
    """A transfer leg answered with 302 to a premium number is not answered; the caller falls
    back (here: the test app's fallback) and nothing is dialled."""
    port = fraud_target.getsockname()[1]
    advisor: RunningUas = sipp.start_uas(
        "advisor_redirect.xml", keys={"redirect_to": f"sip:+19005550199@127.0.0.1:{port}"}
    )
    try:
        result = sipp.run("wait_bye.xml", service=f"xfer-{advisor.port}-5000", call_id="redir")
        assert result.returncode == 0, result.describe()
        assert advisor.wait().returncode == 0
    finally:
        advisor.stop()
    done = worker.wait_for(lambda e: e["event"] == "transfer" and e["call"].startswith("redir"))
    assert done["status"] != "answered"
    with pytest.raises(TimeoutError):
        data = fraud_target.recv(4096)
        pytest.fail(f"the worker followed the redirect: {data[:200]!r}")
    worker.wait_for(lambda e: e["event"] == "fallback" and e["call"].startswith("redir"))
    worker.wait_idle()


def test_a_call_from_an_untrusted_address_is_refused_before_it_rings(
    worker: WorkerProcess, sipp: Sipp
) -> None:
    """Anyone who reaches a worker could claim a customer's caller ID and hear their repair
    status: the worker takes calls only from its trusted addresses (the edge, the trunks),
    checked by itself, not only by the edge. 127.0.0.2 is this host, but not trusted."""
    result = sipp.run("refused.xml", service=HOLD, call_id="spoof", source="127.0.0.2")
    assert result.returncode == 0, result.describe()  # 403, nothing rang
    assert "SIP/2.0 180" not in result.messages
    assert not worker.of_call("spoof")  # never reached the router: no call events
    worker.wait_idle()
    trusted = sipp.run("hold.xml", service=HOLD, call_id="trusted", hold_ms=500)
    assert trusted.returncode == 0, trusted.describe()  # from 127.0.0.1 the same call works
