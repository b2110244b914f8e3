"""`driveline edge`: Kamailio in front of the SIP workers, configured from Settings.

The configuration is the Jinja2 template deploy/kamailio/kamailio.cfg.j2 (why it is built the
way it is: its header); this module fills it in from Settings and writes, into a run directory,
the config, the dispatcher list (the workers) and the permissions address list (trusted trunks).
`driveline serve --sip-workers N` (N > 1) runs the same Kamailio as one of its parts.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import click
import jinja2

from ivr.config import Settings, get_settings

TEMPLATE_DIRS = [  # the checkout, then the working directory (the Docker image's /app)
    Path(__file__).resolve().parents[1] / "deploy" / "kamailio",
    Path("deploy") / "kamailio",
]
TEMPLATE = "kamailio.cfg.j2"
MODULE_DIR = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"
READY = "driveline edge ready"  # logged by one Kamailio worker once it runs


@dataclass(frozen=True)
class EdgeFiles:
    run_dir: Path
    config: Path

    def argv(self, kamailio: str = "kamailio", memory_mb: int = 64) -> list[str]:
        """Kamailio in the foreground, logging to stderr, its pid and ctl socket in run_dir."""
        return [
            kamailio, "-f", str(self.config), "-DD", "-E",
            "-Y", str(self.run_dir), "-P", str(self.run_dir / "kamailio.pid"),
            "-m", str(memory_mb), "-M", "8",
        ]  # fmt: skip

    @property
    def ctl_socket(self) -> str:
        return f"unix:{self.run_dir / 'kamailio_ctl'}"


def kamailio_binary() -> str:
    """Debian installs it in /usr/sbin, which a non-root PATH often lacks."""
    found = shutil.which("kamailio") or shutil.which("kamailio", path="/usr/sbin:/sbin")
    if found is None:
        raise click.ClickException("kamailio is not installed (Debian: apt install kamailio)")
    return found


def worker_addresses(settings: Settings, count: int | None = None) -> list[str]:
    """The workers behind the edge: `edge_workers`, else `count` (default `sip_workers`) on
    `sip_worker_host` from `sip_worker_base_port`."""
    if settings.edge_workers and count is None:
        return list(settings.edge_workers)
    n = count or settings.sip_workers
    return [f"{settings.sip_worker_host}:{settings.sip_worker_base_port + i}" for i in range(n)]


def render_template(values: dict[str, object]) -> str:
    """The config; a name the template uses and `values` lacks is an error, not a blank."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in TEMPLATE_DIRS]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - a Kamailio config, not HTML
    )
    return env.get_template(TEMPLATE).render(values)


def render(settings: Settings, run_dir: Path, workers: list[str] | None = None) -> EdgeFiles:
    """Write kamailio.cfg, dispatcher.list and address.list into `run_dir`."""
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    host, _, port = (settings.edge_bind or settings.sip_bind).rpartition(":")
    advertise = ""
    if settings.edge_advertise:
        ad_host, _, ad_port = settings.edge_advertise.rpartition(":")
        advertise = f" advertise {ad_host}:{ad_port}"
    values = {
        "log_level": 2,
        "children": 4,
        "listen_host": host,
        "listen_port": port,
        "advertise": advertise,
        "module_dir": MODULE_DIR,
        "run_dir": run_dir,
        "failover_ms": settings.edge_failover_ms,
        "probe_interval_s": settings.edge_probe_interval_s,
        "pike_window_s": settings.edge_pike_window_s,
        "pike_density": settings.edge_pike_density,
        "pike_block_s": settings.edge_pike_block_s,
        "ready": READY,
    }
    config = run_dir / "kamailio.cfg"
    config.write_text(render_template(values))
    # duid: algorithm 10 counts calls per destination id.
    addresses = workers or worker_addresses(settings)
    lines = [f"1 sip:{address} 0 0 duid=w{i}" for i, address in enumerate(addresses, start=1)]
    (run_dir / "dispatcher.list").write_text(
        "# set destination flags priority attrs\n" + "\n".join(lines) + "\n"
    )
    trusted = []
    for entry in settings.sip_trusted:
        net = ipaddress.ip_network(entry, strict=False)
        trusted.append(f"1 {net.network_address} {net.prefixlen} 0")
    (run_dir / "address.list").write_text(
        "# group address mask port: who may send calls\n" + "\n".join(trusted) + "\n"
    )
    return EdgeFiles(run_dir, config)


def check(files: EdgeFiles, kamailio: str = "kamailio") -> subprocess.CompletedProcess[str]:
    """`kamailio -c`: parses the config and loads the modules without starting."""
    return subprocess.run(
        [kamailio, "-c", "-f", str(files.config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@click.command("edge")
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var/edge"),
    show_default=True,
    help="Where the rendered config, the pid file and the ctl socket go.",
)
@click.option("--check", "check_only", is_flag=True, help="Render and check; do not start.")
def edge(run_dir: Path, check_only: bool) -> None:
    """Run Kamailio in front of the SIP workers (dispatcher, OPTIONS probing, allow-list, pike)."""
    kamailio = kamailio_binary()
    try:
        settings = get_settings()  # a bad setting (sip_trusted...) is named in the message
        files = render(settings, run_dir)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    workers = worker_addresses(settings)
    click.echo(f"edge on {settings.edge_bind or settings.sip_bind} -> {', '.join(workers)}")
    click.echo(f"config: {files.config}")
    result = check(files, kamailio)
    if result.returncode != 0:
        raise click.ClickException(f"kamailio -c failed:\n{result.stderr[-3000:]}")
    if check_only:
        click.echo("config OK")
        return
    click.echo(f"kamcmd -s {files.ctl_socket} dispatcher.list")
    os.execv(kamailio, files.argv(kamailio))


def options_ping(address: str, timeout: float = 2.0) -> int | None:
    """The status code a SIP OPTIONS to `HOST:PORT` (UDP) gets, or None without an answer:
    what Kamailio's dispatcher probe asks, for container health checks."""
    host, _, port = address.rpartition(":")
    tag = uuid.uuid4().hex[:12]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((host, int(port)))
        local_host, local_port = sock.getsockname()[:2]
        request = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {local_host}:{local_port};branch=z9hG4bK{tag};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:health@{local_host}>;tag={tag}\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: {tag}@{local_host}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        try:
            sock.send(request.encode())
            while True:
                reply = sock.recv(65535).decode(errors="replace")
                status = reply.split("\r\n", 1)[0].split(" ")
                if len(status) >= 2 and status[0] == "SIP/2.0" and status[1].isdigit():
                    if int(status[1]) >= 200:  # skip a 100 Trying
                        return int(status[1])
        except OSError:  # timeout, or ICMP port unreachable
            return None


@click.command("sip-ping")
@click.argument("addresses", nargs=-1, required=True, metavar="HOST:PORT...")
@click.option("--timeout", type=float, default=2.0, show_default=True)
def sip_ping(addresses: tuple[str, ...], timeout: float) -> None:
    """Exit 0 when every address answers SIP OPTIONS with 200 (container health checks)."""
    failed = []
    for address in addresses:
        code = options_ping(address, timeout)
        click.echo(f"{address}: {code or 'no answer'}")
        if code != 200:
            failed.append(address)
    if failed:
        raise SystemExit(1)
