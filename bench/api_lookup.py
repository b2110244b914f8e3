"""Customer lookup by phone (`GET /api/v1/customers?phone=`) at 100k customers, under load.

    .venv/bin/python -m bench.api_lookup [--customers 100000] [--clients 8] [--requests 2000]
                                         [--db sqlite,postgresql] [--quick] [--profile]

For each database: migrate a scratch one (SQLite file; PostgreSQL: a schema of its own in
database `test`, dropped after), seed the demo store, bulk-insert the customers with one phone
each (`seed_customers`: Core executemany, seconds for 100k instead of minutes through the ORM),
start the real API under uvicorn on a free loopback port, and have `--clients` threads, each
with its own keep-alive HTTP client, look up random customers by phone written the way people
type it ("(556) 010-0042"), as the demo store's advisor. Reports p50/p99 of the whole request
as the client sees it, under that load and (`one_client_latency_ms`) with a single client.
`--profile` also runs lookups in-process under pyinstrument and writes the profile to
bench/results/profile-api-lookup-{sqlite,postgresql}.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.orm import Session

from bench.common import PG_BASE, REDIS_URL, RESULTS, free_tcp_port, summary
from records.db import make_engine, session_factory, upgrade
from records.demo import DEMO_DMS_ID, seed_demo
from records.models import Customer, PhoneNumber, Store, User

TARGET_P99_MS = 20.0
PHONE_BASE = 5_560_000_000  # +1 556 000 0000 …: outside the demo's +1 555 numbers
FIRST = ["Ana", "Ben", "Chloe", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivan", "Jo"]
LAST = ["Lopez", "Smith", "Nguyen", "Okafor", "Brown", "Garcia", "Kim", "Patel", "Rossi"]


def phone(n: int) -> str:
    return f"+1{PHONE_BASE + n}"


def typed(n: int) -> str:
    digits = str(PHONE_BASE + n)
    return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"


def seed_customers(engine: Engine, store_id: int, count: int, *, batch: int = 10_000) -> float:
    """Insert `count` customers with a mobile number each into `store_id`, in batches of
    executemany (no ORM objects); returns the seconds it took."""
    started = time.perf_counter()
    with Session(engine) as session:
        first_id = (session.scalar(select(func.max(Customer.id))) or 0) + 1
        for start in range(0, count, batch):
            numbers = range(start, min(count, start + batch))
            session.execute(
                insert(Customer),
                [
                    {
                        "id": first_id + n,
                        "store_id": store_id,
                        "dms_id": f"BENCH-{n}",
                        "first_name": FIRST[n % len(FIRST)],
                        "last_name": f"{LAST[n % len(LAST)]}{n}",
                    }
                    for n in numbers
                ],
            )
            session.execute(
                insert(PhoneNumber),
                [
                    {"store_id": store_id, "customer_id": first_id + n, "e164": phone(n)}
                    for n in numbers
                ],
            )
        session.commit()
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    return time.perf_counter() - started


@contextmanager
def scratch_database(kind: str, workdir: Path) -> Iterator[str]:
    """A migrated, empty database URL; a PostgreSQL schema is dropped afterwards."""
    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'lookup.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_BASE)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = f"{PG_BASE}?options=-csearch_path%3D{schema}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def prepare(url: str, customers: int) -> tuple[str, float]:
    """Demo store + `customers` more; returns an advisor's token and the seeding seconds."""
    from api.auth import issue_token

    engine = make_engine(url)
    try:
        seed_demo(engine)
        sessions = session_factory(engine)
        with sessions() as session:
            store_id = session.scalars(select(Store.id).where(Store.dms_id == DEMO_DMS_ID)).one()
        seconds = seed_customers(engine, store_id, customers)
        with sessions() as session:
            alice = session.scalars(select(User).where(User.username == "alice")).one()
            token = issue_token(session, alice, "bench")
            session.commit()
    finally:
        engine.dispose()
    return token, seconds


@contextmanager
def api_server(url: str, workdir: Path) -> Iterator[str]:
    port = free_tcp_port()
    env = {
        **os.environ,
        "DRIVELINE_DATABASE_URL": url,
        "DRIVELINE_REDIS_URL": REDIS_URL,
    }
    log = (workdir / f"uvicorn-{port}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code in (200, 503):
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def load(base: str, token: str, customers: int, clients: int, requests: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    per_client = max(1, requests // clients)

    def client(seed: int) -> None:
        rng = random.Random(seed)
        mine: list[float] = []
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
            http.get("/api/v1/me")  # connect and authenticate once before timing
            for _ in range(per_client):
                n = rng.randrange(customers)
                started = time.perf_counter()
                response = http.get("/api/v1/customers", params={"phone": typed(n)})
                mine.append((time.perf_counter() - started) * 1000)
                items = response.json().get("items") if response.status_code == 200 else None
                if not items or items[0]["id"] is None:
                    with lock:
                        errors.append(f"{response.status_code} for {typed(n)}")
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "error_sample": errors[:3],
        "per_second": round(len(latencies) / elapsed, 1),
        "latency_ms": summary(latencies, 50, 99),
    }


def profile_lookups(url: str, token: str, customers: int, out: Path, count: int = 500) -> None:
    """One request's own work, in this thread under pyinstrument: authenticate the token,
    resolve the scope, run the route (phone parsing, query, response model). The HTTP and
    threadpool hops around it are what the load figures add on top."""
    from pyinstrument import Profiler

    from api.auth import authenticate
    from api.deps import get_scope
    from api.routes.customers import find_customers

    engine = make_engine(url)
    sessions = session_factory(engine)
    rng = random.Random(7)
    profiler = Profiler(interval=0.0002)
    started = time.perf_counter()
    profiler.start()
    for _ in range(count):
        with sessions() as session:
            user = authenticate(session, token)
            assert user is not None
            scope = get_scope(user)
            found = find_customers(session, scope, phone=typed(rng.randrange(customers)))
            assert found.items
    profiler.stop()
    per_request = (time.perf_counter() - started) / count * 1000
    engine.dispose()
    header = f"{count} lookups in-process: {per_request:.2f} ms each (profiler overhead included)\n"
    out.write_text(header + profiler.output_text(unicode=False, color=False, show_all=False))


def run(
    *,
    customers: int = 100_000,
    clients: int = 8,
    requests: int = 2000,
    databases: tuple[str, ...] = ("sqlite", "postgresql"),
    profile: bool = False,
) -> dict[str, Any]:
    results: dict[str, Any] = {"customers": customers, "clients": clients}
    with tempfile.TemporaryDirectory(prefix="driveline-bench-api-") as tmp:
        for kind in databases:
            try:
                with scratch_database(kind, Path(tmp)) as url:
                    token, seed_s = prepare(url, customers)
                    with api_server(url, Path(tmp)) as base:
                        # One client first: the service time without queueing behind others.
                        alone = load(base, token, customers, 1, max(50, requests // 10))
                        figures = load(base, token, customers, clients, requests)
                        figures["one_client_latency_ms"] = alone["latency_ms"]
                    if profile:
                        RESULTS.mkdir(exist_ok=True)
                        profile_lookups(url, token, customers,
                                        RESULTS / f"profile-api-lookup-{kind}.txt")  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - PostgreSQL absent: report, go on
                results[kind] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            results[kind] = {"seed_s": round(seed_s, 1), **figures}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--quick", action="store_true", help="10k customers, 400 requests")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.customers, args.requests = 10_000, 400
    report = run(
        customers=args.customers,
        clients=args.clients,
        requests=args.requests,
        databases=tuple(args.db.split(",")),
        profile=args.profile,
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
