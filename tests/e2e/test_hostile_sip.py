"""A hostile far end: re-INVITE and UPDATE storms, malformed and abusive datagrams. The worker
never crashes, never leaks a call slot, and answers the next honest call.

Datagrams go straight to the worker's UDP port from a raw socket (sipp cannot send malformed
SIP); the storm is a sipp scenario written per test, one re-offer after another.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sip.endpoint import REOFFER_MAX
from tests.e2e.harness import Sipp, WorkerProcess

HOLD = "+15550100003"  # a short greeting, then listen until the caller hangs up
SDP = (
    "v=0\r\no=x 1 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio [media_port] RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
)


def storm_scenario(directory: Path, method: str, count: int) -> Path:
    """A call, then `count` re-offers (re-INVITE or UPDATE with SDP) back to back, each
    answered 200 or 488, then our BYE."""
    head = (
        "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
        "From: <sip:[caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]\n"
        "To: <sip:[service]@[remote_ip]:[remote_port]>{to_tag}\n"
        "Call-ID: [call_id]\nCSeq: {cseq} {method}\n"
        "Contact: sip:[caller]@[local_ip]:[local_port]\nMax-Forwards: 70\n"
    )
    sdp = "\n".join(SDP.format(version="{version}").splitlines())

    def request(method_: str, cseq: int, *, body: bool, to_tag: str = "[peer_tag_param]") -> str:
        lines = f"{method_} sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n" + head.format(
            to_tag=to_tag, cseq=cseq, method=method_
        )
        if body:
            lines += "Content-Type: application/sdp\nContent-Length: [len]\n\n"
            lines += sdp.format(version=cseq) + "\n"
        else:
            lines += "Content-Length: 0\n\n"
        return f"<send><![CDATA[\n\n{lines}\n]]></send>\n"

    parts = [request("INVITE", 1, body=True, to_tag=""),
             '<recv response="100" optional="true"/>', '<recv response="180" optional="true"/>',
             '<recv response="200"/>', request("ACK", 1, body=False)]  # fmt: skip
    for n in range(2, count + 2):
        parts.append(request(method, n, body=True))
        parts.append('<recv response="100" optional="true"/>')
        parts.append(f'<recv response="200" optional="true" next="ok{n}"/>')
        parts.append('<recv response="488"/>')
        parts.append(f'<label id="ok{n}"/>')
        if method == "INVITE":  # both a 2xx and a 488 to an INVITE are ACKed
            ack = request("ACK", n, body=False).replace("branch=[branch]", "branch=[branch-4]")
            parts.append(ack)
    parts += [request("BYE", count + 2, body=False), '<recv response="200"/>']
    path = directory / f"storm_{method.lower()}.xml"
    path.write_text(
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="storm">\n'
        + "\n".join(parts)
        + "\n</scenario>\n"
    )
    return path


@pytest.mark.parametrize("method", ["INVITE", "UPDATE"])
def test_a_reoffer_storm_is_refused_beyond_the_budget(
    worker: WorkerProcess, sipp: Sipp, tmp_path: Path, method: str
) -> None:
    """Hold and resume a few times is normal (200); a storm of re-offers in a few seconds
    gets 488 beyond the budget, costs no media rebuild, and the call goes on to our BYE."""
    count = REOFFER_MAX + 10
    scenario = storm_scenario(tmp_path, method, count)
    result = sipp.run(str(scenario), service=HOLD, call_id=f"storm-{method}", timeout=20)
    assert result.returncode == 0, result.describe()
    refused = result.messages.count("SIP/2.0 488")
    accepted = result.messages.count("SIP/2.0 200") - 2  # the INVITE's and the BYE's
    assert (accepted, refused) == (REOFFER_MAX, count - REOFFER_MAX), result.messages[-3000:]
    worker.wait_idle()


@pytest.fixture
def udp(worker: WorkerProcess) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.connect(("127.0.0.1", worker.port))
    sock.settimeout(0.3)
    yield sock
    sock.close()


TO = f"sip:{HOLD}@127.0.0.1"


def _invite(port: int, *, call_id: str, cseq: str = "1 INVITE", extra: str = "",
            body: str = "", length: int | None = None, uri: str = TO) -> bytes:  # fmt: skip
    length = len(body) if length is None else length
    return (
        f"INVITE {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
        f"From: <sip:+15552010001@127.0.0.1:{port}>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <{uri}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\n"
        f"Contact: <sip:+15552010001@127.0.0.1:{port}>\r\nMax-Forwards: 70\r\n{extra}"
        f"Content-Type: application/sdp\r\nContent-Length: {length}\r\n\r\n{body}"
    ).encode()


def _hostile(port: int) -> dict[str, list[bytes]]:
    """Name → datagrams. Each is something a scanner, a fuzzer or a broken trunk sends."""
    body = SDP.replace("[media_port]", "40000").format(version=1)
    cid = lambda name: f"hostile-{name}-{uuid.uuid4().hex[:6]}@x"  # noqa: E731
    return {
        "garbage": [b"\x00\xff" * 300, b"HELLO\r\n\r\n", b"\r\n\r\n\r\n"],
        "no headers": [b"INVITE sip:x@127.0.0.1 SIP/2.0\r\n\r\n"],
        "malformed headers": [
            _invite(port, call_id=cid("mal"), extra="Via: ;;;\r\nFrom: <<<>>>\r\n: no name\r\n",
                    body=body),
            _invite(port, call_id=cid("hdr"), extra="X-Long: " + "A" * 3000 + "\r\n", body=body),
        ],
        "huge content-length": [_invite(port, call_id=cid("len"), body=body, length=10**9),
                                _invite(port, call_id=cid("neg"), body=body, length=-5)],
        "wrong cseq": [_invite(port, call_id=cid("cseq"), cseq="1 BYE", body=body),
                       _invite(port, call_id=cid("cseq2"), cseq="abc INVITE", body=body),
                       _invite(port, call_id=cid("cseq3"), cseq="99999999999 INVITE", body=body)],
        "unknown schemes": [_invite(port, call_id=cid("scheme"), uri="xyz:+15550100003@h",
                                    body=body),
                            _invite(port, call_id=cid("mailto"), uri="mailto:a@b", body=body)],
        "bad sdp": [_invite(port, call_id=cid("sdp"), body="v=0\r\nm=audio x\r\n"),
                    _invite(port, call_id=cid("sdp2"), body="v=0\r\n" + "a=x\r\n" * 500)],
        "several in one datagram": [
            _invite(port, call_id=cid("two1"), body=body) + _invite(port, call_id=cid("two2"),
                                                                    body=body),
            b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n\r\n" * 5,
        ],
        "abandoned invites": [_invite(port, call_id=cid(f"abandon{n}"), body=body)
                              for n in range(8)],  # answered 180/200/486, never ACKed
        "unknown methods": [_invite(port, call_id=cid("m"), body=body).replace(b"INVITE", b"FOO")],
    }  # fmt: skip


def _read_until(sock: socket.socket, status: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    heard: list[str] = []
    while time.monotonic() < deadline:
        try:
            text = sock.recv(65535).decode(errors="replace")
        except TimeoutError:
            continue
        if text.startswith(f"SIP/2.0 {status}"):
            return text
        heard.append(text.split("\r\n", 1)[0])
    raise AssertionError(f"no {status} within {timeout}s; heard {heard}")


def _header(message: str, name: str) -> str:
    for line in message.split("\r\n"):
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} in {message[:500]}")


def test_an_invite_with_replaces_cannot_take_over_a_live_call(
    worker: WorkerProcess, udp: socket.socket
) -> None:
    """A third party naming a live dialog in Replaces would take the caller's place in it
    (and the flow's next transfer); the worker answers 403 and the call goes on."""
    port = udp.getsockname()[1]
    body = SDP.replace("[media_port]", "40002").format(version=1)
    call_id = f"replaced-{uuid.uuid4().hex[:8]}@x"
    udp.send(_invite(port, call_id=call_id, body=body))
    ok = _read_until(udp, "200")
    to, from_ = _header(ok, "To"), _header(ok, "From")
    to_tag, from_tag = to.split("tag=")[1].split(";")[0], from_.split("tag=")[1].split(";")[0]
    ack = (
        f"ACK sip:{HOLD}@127.0.0.1:{worker.port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
        f"From: {from_}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    udp.send(ack.encode())
    replaces = f"Replaces: {call_id};to-tag={to_tag};from-tag={from_tag}\r\n"
    udp.send(_invite(port, call_id=f"thief-{uuid.uuid4().hex[:8]}@x", extra=replaces, body=body))
    refused = _read_until(udp, "403")
    assert "Replaces not allowed" in refused.split("\r\n", 1)[0]
    bye = ack.replace("ACK sip:", "BYE sip:").replace("CSeq: 1 ACK", "CSeq: 2 BYE")
    udp.send(bye.encode())
    _read_until(udp, "200")
    worker.wait_idle()


def test_hostile_datagrams_never_crash_the_worker_or_leak_a_slot(
    worker: WorkerProcess, sipp: Sipp, udp: socket.socket
) -> None:
    port = udp.getsockname()[1]
    sent = 0
    for name, datagrams in _hostile(port).items():
        for datagram in datagrams:
            udp.send(datagram)
            sent += 1
        while True:  # read whatever it answers; nothing has to be answered
            try:
                udp.recv(65535)
            except (TimeoutError, ConnectionRefusedError):
                break
        assert worker.alive, f"the worker died after {name!r}"
    flood = _invite(port, call_id="flood@x", body=SDP.replace("[media_port]", "40000"))
    for n in range(300):  # a flood: 300 INVITEs as fast as the socket goes
        udp.send(flood.replace(b"flood@x", f"flood-{n}@x".encode()))
        sent += 1
    time.sleep(1.0)
    assert worker.alive, "the worker died under the flood"
    # Abandoned INVITEs hold slots until pjsip's timer gives up on the ACK (32 s, timer H):
    worker.wait_idle(timeout=45)
    honest = sipp.run("hold.xml", service=HOLD, call_id="after-hostile", hold_ms=500)
    assert honest.returncode == 0, honest.describe()
    worker.wait_idle()
    print(f"hostile datagrams sent: {sent}")
