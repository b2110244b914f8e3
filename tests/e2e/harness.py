"""The pieces the end-to-end tests are built from: the worker process, sipp runs, an RTP sink.

Everything is bounded: the worker must say `ready` within 10 s, every sipp run has `-timeout`
and a subprocess timeout on top, every wait for an event has a deadline, and teardown ends
the processes it started (quit, then terminate, then kill).
"""

from __future__ import annotations

import array
import hashlib
import json
import os
import queue
import random
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
SIPP_MEDIA = Path("/usr/share/sip-tester")

Event = dict[str, Any]


def require_tools() -> None:
    """Skip without sipp or pjsua2, except under CI, where a missing tool fails the run."""
    from tests.needs import require

    missing = []
    if shutil.which("sipp") is None or not (SIPP_MEDIA / "dtmf_2833_1.pcap").exists():
        missing.append("sipp with its pcap files (apt install sip-tester)")
    try:
        import pjsua2  # noqa: F401
    except ImportError:
        missing.append("pjsua2")
    require(not missing, "end-to-end SIP tests need " + ", ".join(missing))


# Ports handed to a process that binds them later come from below the kernel's ephemeral
# range (32768-60999): the workers' RTP sockets take ephemeral ports all through a run, and
# one could take a probed-free ephemeral port before the process that was given it binds it.
# Test processes running side by side (pytest-xdist) each get a slice of that range, so two of
# them never hand out the same port between its probe and its bind.
_PORTS_LOW, _PORTS_HIGH = 20000, 32760


def _port_slice() -> tuple[int, int]:
    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    index = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0) % workers
    width = ((_PORTS_HIGH - _PORTS_LOW) // workers) & ~1
    return _PORTS_LOW + index * width, _PORTS_LOW + (index + 1) * width


_SLICE_LOW, _SLICE_HIGH = _port_slice()
_next_port = (_SLICE_LOW + (os.getpid() * 97) % (_SLICE_HIGH - _SLICE_LOW)) & ~1  # even: RTP


def _free_ports(kind: socket.SocketKind, count: int) -> int:
    global _next_port
    for _ in range(500):
        base = _next_port
        _next_port += max(2, count + count % 2)
        if _next_port + count >= _SLICE_HIGH:
            _next_port = _SLICE_LOW
        held = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, kind)
                held.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise RuntimeError(f"no free {kind.name} ports between {_SLICE_LOW} and {_SLICE_HIGH}")


def free_udp_port(count: int = 1) -> int:
    """A port with `count` free consecutive UDP ports from it (sipp's RTP uses mp, mp+2)."""
    return _free_ports(socket.SOCK_DGRAM, count)


def free_tcp_port() -> int:
    """A free TCP port for a server a test starts (`serve`'s API, a private Redis), from the
    same range."""
    return _free_ports(socket.SOCK_STREAM, 1)


class WorkerProcess:
    """`tests.e2e.app` in a subprocess, with its JSON events collected by a reader thread."""

    def __init__(self, directory: Path, *extra: str) -> None:
        self.directory = directory
        self.stderr_path = directory / "worker.stderr"
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.app", "--dir", str(directory), *extra],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.events: list[Event] = []
        self._lock = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        ready = self.wait_for(lambda e: e["event"] == "ready", timeout=10.0)
        self.port: int = ready["port"]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # pjlib's banner and other chatter
            if isinstance(event, dict) and "event" in event:
                with self._lock:
                    self.events.append(event)
                    self._lock.notify_all()
        with self._lock:
            self._lock.notify_all()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for(
        self, match: Callable[[Event], bool], timeout: float = 5.0, start: int = 0
    ) -> Event:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for event in self.events[start:]:
                    if match(event):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (not self.alive and not self._reader.is_alive()):
                    raise AssertionError(
                        f"no matching worker event in {timeout}s; got {self.events[start:]}"
                        f"\nstderr: {self.stderr_path.read_text()[-2000:]}"
                    )
                self._lock.wait(remaining)

    def wait_for_all(
        self, match: Callable[[Event], bool], call_prefix: str, count: int, timeout: float = 5.0
    ) -> list[Event]:
        """Wait until `count` events of calls starting with `call_prefix` match; return them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.of_call(call_prefix) if match(e)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)}/{count} events for {call_prefix}: {found}")
            time.sleep(0.05)

    def of_call(self, call_prefix: str) -> list[Event]:
        with self._lock:
            return [e for e in self.events if str(e.get("call", "")).startswith(call_prefix)]

    def stats(self, timeout: float = 5.0) -> Event:
        start = len(self.events)
        self._send("stats")
        return self.wait_for(lambda e: e["event"] == "stats", timeout, start)

    def wait_idle(self, timeout: float = 5.0) -> Event:
        """Poll `stats` until no pjsua2 Call object and no channel is left."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if stats["live_calls"] == 0 and stats["channels"] == 0:
                return stats
            if time.monotonic() > deadline:
                raise AssertionError(f"calls leaked: {stats}")
            time.sleep(0.05)

    def _send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.alive:
            try:
                self._send("quit")
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=3)
        self._reader.join(timeout=2)
        self._stderr.close()


@dataclass
class SippResult:
    returncode: int
    counters: dict[str, int]
    messages: str
    stderr: str

    def count(self, name: str) -> int:
        return self.counters.get(f"{name}(C)", 0)

    def message_times(self, first_line_start: str) -> list[float]:
        """Wall-clock times (epoch seconds) of traced messages whose first line starts so."""
        times = []
        for block in self.messages.split("-" * 47 + " ")[1:]:
            stamp, _, rest = block.partition("\n")
            body = rest.split("\n\n", 1)[1] if "\n\n" in rest else ""
            if body.lstrip().startswith(first_line_start):
                times.append(datetime.strptime(stamp.strip(), "%Y-%m-%d %H:%M:%S.%f").timestamp())
        return times

    def describe(self) -> str:
        interesting = {k: v for k, v in self.counters.items() if k.endswith("(C)") and v}
        return f"sipp rc={self.returncode} {interesting}\n{self.stderr[-1500:]}"


@dataclass
class Sipp:
    """Runs sipp against the worker from a scratch directory holding the `pcap` link."""

    workdir: Path
    target: str
    runs: int = field(default=0)

    def __post_init__(self) -> None:
        link = self.workdir / "pcap"
        if not link.exists():
            link.symlink_to(SIPP_MEDIA)

    def run(self, scenario: str, **options: Any) -> SippResult:
        """Place the calls and wait for sipp to finish (see `start` for the options)."""
        return self.start(scenario, **options).wait()

    def start(
        self,
        scenario: str,
        *,
        service: str,
        call_id: str,
        caller: str = "+15552010001",
        calls: int = 1,
        concurrent: int = 1,
        rate: int = 10,
        hold_ms: int = 1000,
        rtp_sink: int | None = None,
        transport: str = "u1",
        timeout: float = 12.0,
        keys: dict[str, str] | None = None,
        source: str = "127.0.0.1",
    ) -> RunningSipp:
        """Start sipp in the background. `hold_ms` is `-d` (the `<pause/>` in hold.xml),
        `call_id` prefixes every Call-ID so the worker's events can be told apart, `keys` are
        extra `-key NAME VALUE` substitutions for the scenario, `source` the local address
        sipp sends from (any 127.x address is this host's)."""
        self.runs += 1
        tag = f"{Path(scenario).stem}-{self.runs}"
        stat_file = self.workdir / f"{tag}.csv"
        message_file = self.workdir / f"{tag}.messages"
        media_port = free_udp_port(4)
        command = [
            "sipp", self.target,
            "-sf", str(SCENARIOS / scenario),
            "-s", service,
            "-key", "caller", caller,
            "-key", "rtp_sink", str(rtp_sink or media_port),
            "-t", transport,
            "-i", source,
            "-p", str(free_udp_port()),
            "-mp", str(media_port),
            "-m", str(calls), "-l", str(concurrent), "-r", str(rate),
            "-d", str(hold_ms),
            "-cid_str", f"{call_id}-%u@%s",
            "-timeout", f"{timeout}s", "-timeout_error",
            "-trace_stat", "-stf", str(stat_file),
            "-trace_msg", "-message_file", str(message_file),
            "-nostdin",
        ]  # fmt: skip
        for name, value in (keys or {}).items():
            command += ["-key", name, value]
        proc = subprocess.Popen(
            command,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        return RunningSipp(proc, stat_file, message_file, timeout + 10)

    def start_uas(
        self,
        scenario: str,
        *,
        rtp_sink: int | None = None,
        hold_ms: int = 0,
        calls: int = 1,
        timeout: float = 12.0,
        keys: dict[str, str] | None = None,
    ) -> RunningUas:
        """A sipp UAS (an advisor's phone) on a free loopback port; it exits after `calls`
        calls. `hold_ms` is `-d` (its `<pause/>`); `rtp_sink` goes into its SDP; `keys` are
        extra `-key NAME VALUE` substitutions."""
        self.runs += 1
        tag = f"{Path(scenario).stem}-{self.runs}"
        stat_file = self.workdir / f"{tag}.csv"
        message_file = self.workdir / f"{tag}.messages"
        port = free_udp_port()
        media_port = free_udp_port(4)
        command = [
            "sipp",
            "-sf", str(SCENARIOS / scenario),
            "-key", "rtp_sink", str(rtp_sink or media_port),
            "-t", "u1",
            "-i", "127.0.0.1",
            "-p", str(port),
            "-mp", str(media_port),
            "-m", str(calls),
            "-d", str(hold_ms),
            "-aa",
            "-timeout", f"{timeout}s", "-timeout_error",
            "-trace_stat", "-stf", str(stat_file),
            "-trace_msg", "-message_file", str(message_file),
            "-nostdin",
        ]  # fmt: skip
        for name, value in (keys or {}).items():
            command += ["-key", name, value]
        proc = subprocess.Popen(
            command,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        return RunningUas(proc, stat_file, message_file, timeout + 10, port)


@dataclass
class RunningSipp:
    proc: subprocess.Popen[str]
    stat_file: Path
    message_file: Path
    timeout: float

    def wait(self) -> SippResult:
        try:
            _, stderr = self.proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate(timeout=5)
            raise
        messages = self.message_file
        return SippResult(
            returncode=self.proc.returncode,
            counters=_read_counters(self.stat_file),
            messages=messages.read_text(errors="replace") if messages.exists() else "",
            stderr=stderr,
        )


@dataclass
class RunningUas(RunningSipp):
    port: int = 0

    @property
    def uri(self) -> str:
        return f"sip:advisor@127.0.0.1:{self.port}"

    def stop(self) -> None:
        """For teardown: end a UAS that is still waiting (the test failed before its call)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=5)


def _read_counters(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if len(lines) < 2:
        return {}
    names, values = lines[0].split(";"), lines[-1].split(";")
    counters = {}
    for name, value in zip(names, values, strict=False):
        if value.strip().lstrip("-").isdigit():
            counters[name] = int(value)
    return counters


# --- what the worker sends: an RTP sink -------------------------------------------------------


def alaw_to_linear(byte: int) -> int:
    """G.711 A-law → 16-bit linear (ITU-T G.711), for judging whether a prompt is silence."""
    a = byte ^ 0x55
    magnitude = (a & 0x0F) << 4
    segment = (a & 0x70) >> 4
    if segment == 0:
        magnitude += 8
    elif segment == 1:
        magnitude += 0x108
    else:
        magnitude = (magnitude + 0x108) << (segment - 1)
    return magnitude if a & 0x80 else -magnitude


def ulaw_to_linear(byte: int) -> int:
    u = ~byte & 0xFF
    magnitude = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return (0x84 - magnitude) if u & 0x80 else (magnitude - 0x84)


@dataclass(frozen=True)
class RtpPacket:
    at: float  # time.time() when it arrived
    payload_type: int
    payload: bytes

    def peak(self) -> int:
        decode = alaw_to_linear if self.payload_type == 8 else ulaw_to_linear
        return max((abs(decode(b)) for b in self.payload), default=0)


class RtpSink:
    """A UDP socket the caller's SDP points at: collects every RTP packet the worker sends."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.packets: queue.SimpleQueue[RtpPacket] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(data) > 12 and data[0] >> 6 == 2:
                header_len = 12 + 4 * (data[0] & 0x0F)
                payload_type = data[1] & 0x7F
                self.packets.put(RtpPacket(time.time(), payload_type, data[header_len:]))

    def drain(self) -> list[RtpPacket]:
        out = []
        while True:
            try:
                out.append(self.packets.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def pcap_rtp_payloads(path: Path = SIPP_MEDIA / "g711a.pcap") -> bytes:
    """The RTP payloads of a libpcap capture (Ethernet/IPv4/UDP/RTP), concatenated: for
    g711a.pcap, about 7 s of A-law speech."""
    data = path.read_bytes()
    if struct.unpack("<I", data[:4])[0] != 0xA1B2C3D4 or struct.unpack("<I", data[20:24])[0] != 1:
        raise ValueError(f"{path}: expected a little-endian Ethernet pcap")
    out = bytearray()
    pos = 24
    while pos + 16 <= len(data):
        length = struct.unpack("<I", data[pos + 8 : pos + 12])[0]
        frame = data[pos + 16 : pos + 16 + length]
        pos += 16 + length
        ip = frame[14:]
        udp = ip[4 * (ip[0] & 0x0F) :]
        rtp = udp[8:]
        if len(rtp) > 12 and rtp[0] >> 6 == 2:
            out += rtp[12 + 4 * (rtp[0] & 0x0F) :]
    return bytes(out)


class RtpPeer(RtpSink):
    """An RtpSink that also talks: once the worker's first packet arrives, it sends 20 ms
    A-law frames of `audio` (looped) back to where that packet came from (symmetric RTP, so
    pjsua never re-latches to another port), like a phone with someone speaking into it."""

    def __init__(self, audio: bytes | None = None) -> None:
        self.audio = audio if audio is not None else pcap_rtp_payloads()
        self.sent = 0
        self._peer: tuple[str, int] | None = None
        self._peer_seen = threading.Event()
        super().__init__()
        self._sender = threading.Thread(target=self._send, daemon=True)
        self._sender.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, address = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            if self._peer is None:
                self._peer = address
                self._peer_seen.set()
            if len(data) > 12 and data[0] >> 6 == 2:
                header_len = 12 + 4 * (data[0] & 0x0F)
                payload_type = data[1] & 0x7F
                self.packets.put(RtpPacket(time.time(), payload_type, data[header_len:]))

    def _send(self) -> None:
        while not self._peer_seen.wait(0.1):
            if self._stop.is_set():
                return
        ssrc, seq, stamp = random.getrandbits(32), random.getrandbits(16), random.getrandbits(32)
        frames = [self.audio[i : i + 160] for i in range(0, len(self.audio) - 159, 160)]
        next_at = time.monotonic()
        while not self._stop.is_set() and self._peer is not None:
            frame = frames[self.sent % len(frames)]
            header = struct.pack("!BBHII", 0x80, PCMA, seq & 0xFFFF, stamp & 0xFFFFFFFF, ssrc)
            try:
                self.sock.sendto(header + frame, self._peer)
            except OSError:
                return
            self.sent += 1
            seq, stamp = seq + 1, stamp + 160
            next_at += 0.02
            time.sleep(max(0.0, next_at - time.monotonic()))

    def close(self) -> None:
        super().close()
        self._sender.join(timeout=2)


PCMA = 8


def loud_packets(packets: list[RtpPacket], threshold: int = 2000) -> list[RtpPacket]:
    return [p for p in packets if p.peak() > threshold]


# --- recordings --------------------------------------------------------------------------------


def wav_info(path: str | Path) -> tuple[float, int, str]:
    """(seconds, peak sample, sha256) of a WAV that must be complete: the RIFF size matches the
    file and it is 8 kHz mono 16-bit."""
    file = Path(path)
    raw = file.read_bytes()
    assert raw[:4] == b"RIFF" and struct.unpack("<I", raw[4:8])[0] == len(raw) - 8, (
        f"{file}: WAV header not finalized"
    )
    with wave.open(str(file), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        frames = wav.getnframes()
        samples = array.array("h", wav.readframes(frames))
    peak = max((abs(s) for s in samples), default=0)
    return frames / 8000, peak, hashlib.sha256(raw).hexdigest()


# --- caller audio: synthesized speech as an RTP pcap for sipp's play_pcap_audio ---------------

PCMU = 0


def wav_to_ulaw(wav_path: Path) -> bytes:
    """Any WAV → raw 8 kHz μ-law bytes (sox), the payload of a PCMU call."""
    done = subprocess.run(
        ["sox", str(wav_path), "-t", "raw", "-r", "8000", "-c", "1", "-e", "mu-law", "-"],
        check=True,
        capture_output=True,
    )
    return done.stdout


def write_rtp_pcap(
    path: Path, payload: bytes, *, payload_type: int = PCMU, lead_silence: float = 0.0
) -> Path:
    """A libpcap file (Ethernet/IPv4/UDP/RTP, 20 ms packets of 160 bytes) that sipp's
    `play_pcap_audio` replays, paced by the capture times. `lead_silence` seconds of μ-law
    silence (0xFF) go first; a last short frame is padded with silence."""
    silence = b"\xff" * int(8000 * lead_silence)
    audio = silence + payload
    audio += b"\xff" * (-len(audio) % 160)
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    ssrc = random.getrandbits(32)
    for n, start in enumerate(range(0, len(audio), 160)):
        rtp = struct.pack("!BBHII", 0x80, payload_type, n & 0xFFFF, n * 160, ssrc)
        rtp += audio[start : start + 160]
        udp = struct.pack("!HHHH", 40000, 40002, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n & 0xFFFF, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp  # fmt: skip
        frame = b"\x00" * 12 + b"\x08\x00" + ip
        seconds, micros = divmod(n * 20_000, 1_000_000)
        out += struct.pack("<IIII", seconds, micros, len(frame), len(frame)) + frame
    path.write_bytes(bytes(out))
    return path
