"""``univers bench api --services N[,N2...] --database URL [--customers C] [--requests K]``

Loads N active services across C customers (default 10,000) set-based, in a PostgreSQL schema or
an SQLite file of its own, each customer with an API key and a prepaid balance. Starts the real
server (``python -m core.cli serve``, scheduler off) on a free port against it, and measures over
one keep-alive connection, sequentially, after a warm-up:

* ``get_service``: ``GET /v1/services/{id}``, a random service asked for by its owner;
* ``list_first_page``: ``GET /v1/services``, the first page (50) of a large customer's services;
* ``list_deep_page``: the same, from a keyset cursor at that customer's last full page;
* ``checkout``: ``POST /v1/orders``, one web hosting plan paid from the balance, a new
  Idempotency-Key each time.

Layout: every tenth service belongs to one of C/1000 "large" customers (1 % of all services each
with 10,000 customers, their ids spread over the whole table), the others are spread evenly over
the other customers.
So a page of the list is always 50 services, at any N, while the list it is taken from grows
with N (100 services per large customer at 10,000, 10,000 at 1,000,000).

The endpoints are measured in interleaved rounds (one request of each per round), so a burst of
noise on a shared machine hits all four alike. Several sizes (``--services 10000,1000000``) are
loaded and served side by side, each in its own database and server, and measured in the same
rounds: the ratio of their latencies, which is what the bar is about, then owes nothing to what
else the machine was doing at the time. ``requests_per_s`` is what one client doing sequential
requests gets: requests / time spent in them. Prints one JSON line per size and appends them to
the results file; the schemas or files are dropped, and the servers stopped, whatever happens.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import os
import platform
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection

from bench import report, scratch_database
from bench.renewal import analyze, insert_accounts, insert_keys, insert_services

ROOT = Path(__file__).resolve().parents[1]
CUSTOMERS = 10_000
PAGE = 50  # the list endpoint's default page size
LARGE_EVERY = 10  # every tenth service belongs to a large customer
ORDER_PLAN = "web-hosting-starter-p1m"
ORDER = {"items": [{"plan": ORDER_PLAN}], "payment": {"method": "balance"}}
STOREFRONT = "FR"
BALANCE_MINOR = 10**12  # enough for every checkout a run can make
ENDPOINTS = ("get_service", "list_first_page", "list_deep_page", "checkout")


class Layout:
    """Who owns which service: a formula, the same in SQL (set-based load) and in Python (requests)."""

    def __init__(self, services: int, customers: int, account_base: int = 0, service_base: int = 0):
        if customers < 2:
            raise ValueError("at least 2 customers")
        self.services, self.customers = services, customers
        self.large = max(1, customers // 1000)
        self.small = customers - self.large
        self.account_base, self.service_base = account_base, service_base

    def owner_sql(self) -> str:
        a, every = self.account_base, LARGE_EVERY
        return (f"(CASE WHEN n % {every} = 0 THEN {a} + 1 + (n / {every} - 1) % {self.large} "
                f"ELSE {a} + {self.large} + 1 + (n - n / {every} - 1) % {self.small} END)")

    def owner(self, n: int) -> int:
        a, every = self.account_base, LARGE_EVERY
        if n % every == 0:
            return a + 1 + (n // every - 1) % self.large
        return a + self.large + 1 + (n - n // every - 1) % self.small

    def large_count(self, j: int) -> int:
        """How many services the j-th large customer (1-based) owns."""
        top = self.services // LARGE_EVERY
        return 0 if top < j else (top - j) // self.large + 1

    def large_service_id(self, j: int, k: int) -> int:
        """The id of the k-th service (1-based, by id) of the j-th large customer."""
        return self.service_base + LARGE_EVERY * ((k - 1) * self.large + j)


def populate(conn: Connection, rt, services: int, customers: int, today: dt.date, token: str) -> Layout:
    """Customers with a key ``uk_bench_<token>_<account id>`` and a balance, and their services. Set-based."""
    account_base = insert_accounts(conn, rt, customers, storefront=STOREFRONT, balance_minor=BALANCE_MINOR)
    service_base = conn.execute(text("SELECT coalesce(max(id), 0) FROM service")).scalar_one()
    layout = Layout(services, customers, account_base, service_base)
    if layout.large_count(1) < 1:
        raise SystemExit(f"too few services: {services} services leave the large customers without any (need {LARGE_EVERY})")
    insert_services(conn, rt, services, layout.owner_sql(), today, storefront=STOREFRONT,
                    start=today - dt.timedelta(days=10), expires=today + dt.timedelta(days=21), ids_from=service_base)
    insert_keys(conn, rt, account_base, customers, f"uk_bench_{token}_")
    analyze(conn, "account", "service", "api_key")
    return layout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss_mb(pid: int) -> float | None:
    try:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("VmHWM:"):
                return round(int(row.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


class Server:
    """``python -m core.cli serve`` in a subprocess, scheduler off; stopped on exit."""

    def __init__(self, database_url: str, log_path: Path, timeout: float = 120, workers: int | None = None):
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        data_dir = log_path.parent / f"data-{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "UNIVERS_DATABASE_URL": database_url, "UNIVERS_DATA_DIR": str(data_dir),
               "UNIVERS_SCHEDULER": "0", "UNIVERS_DEMO": "0", "UNIVERS_RATE_LIMIT": "0",  # the bench is one key, flat out
               "UNIVERS_HOST": "127.0.0.1", "UNIVERS_PORT": str(self.port),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        if workers is not None:
            env["UNIVERS_WORKERS"] = str(workers)  # API worker processes
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - the server's output until stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "core.cli", "serve", "--no-scheduler", "--port", str(self.port)],
                                     cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.timeout = timeout

    def wait_ready(self, client) -> None:
        import httpx

        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if client.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not answer within {self.timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def peak_rss_mb(self) -> float | None:
        return _peak_rss_mb(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # uvicorn shuts down gracefully on SIGTERM
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@contextlib.contextmanager
def serving(database_url: str, log_path: Path, *, workers: int | None = None) -> Iterator[Server]:
    """The real server over ``database_url``, answering; stopped on exit whatever happens (a
    bench may stop it sooner: stopping twice is harmless)."""
    import httpx

    server = Server(database_url, log_path, workers=workers)
    try:
        with httpx.Client(base_url=server.base_url, timeout=60) as probe:
            server.wait_ready(probe)
        yield server
    finally:
        server.stop()


def post_all(base_url: str, batches: list[tuple[str, dict, bytes, int]], clients: int) -> tuple[float, int, list[float]]:
    """K threads, one keep-alive connection each, posting (path, headers, body, size) items taken
    from a queue; each answer must say all ``size`` items were ``accepted`` (usage records, log
    entries). Returns the wall time, the items accepted and each request's latency (seconds)."""
    import queue
    import threading

    import httpx

    todo: queue.Queue = queue.Queue()
    for item in batches:
        todo.put(item)
    accepted, latencies, errors = [0], [], []
    lock = threading.Lock()

    def worker():
        with httpx.Client(base_url=base_url, timeout=300) as client:
            while not errors:
                try:
                    path, headers, body, size = todo.get_nowait()
                except queue.Empty:
                    return
                t0 = time.perf_counter()
                r = client.post(path, content=body, headers=headers)
                elapsed = time.perf_counter() - t0
                if r.status_code != 200 or r.json().get("accepted") != size:
                    errors.append(f"HTTP {r.status_code}, {size} sent: {r.text[:500]}")
                    return
                with lock:
                    accepted[0] += size
                    latencies.append(elapsed)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError(errors[0])
    return wall, accepted[0], latencies


def _percentile(sorted_ns: list[int], q: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    return sorted_ns[max(0, math.ceil(q * len(sorted_ns)) - 1)] / 1e6


class Target:
    """One loaded database and the server over it, with what the requests need to know."""

    def __init__(self, services: int, engine: str, layout: Layout, token: str, server: Server, client, build_s: float):
        self.services, self.engine, self.layout, self.token = services, engine, layout, token
        self.server, self.client, self.build_s = server, client, build_s


@contextlib.contextmanager
def serve_target(services: int, database: str, customers: int, work: Path) -> Iterator[Target]:
    """Load N services in a fresh schema (PostgreSQL) or file (SQLite), start a server on it;
    afterwards stop the server and drop the schema or file, whatever happened."""
    import httpx

    from core.boot import build_runtime
    from core.clock import Clock
    from core.config import Settings
    from core.uow import unit_of_work

    token = secrets.token_hex(6)
    with scratch_database(database) as (engine, server_url):
        rt = build_runtime(Settings(data_dir=work, database_url=server_url), Clock(), engine=engine)  # migrates
        t0 = time.perf_counter()
        with unit_of_work(rt) as conn:
            layout = populate(conn, rt, services, customers, rt.clock.today(), token)
        build_s = time.perf_counter() - t0
        engine.dispose()
        with serving(server_url, work / f"server-{services}-{token}.log") as server, \
                httpx.Client(base_url=server.base_url, timeout=60) as client:
            yield Target(services, engine.dialect.name, layout, token, server, client, build_s)


class Calls:
    """The four requests against one target. Each target has its own random stream from the
    same seed, so targets measured side by side get the same sequence of choices."""

    def __init__(self, target: Target, seed: int):
        self.t, self.rnd = target, random.Random(seed)

    def _key(self, account_id: int) -> dict:
        return {"Authorization": f"Bearer uk_bench_{self.t.token}_{account_id}"}

    def _large_customer(self) -> tuple[int, int]:
        j = self.rnd.randint(1, self.t.layout.large)
        return j, self.t.layout.account_base + j

    def get_service(self):
        layout = self.t.layout
        n = self.rnd.randint(1, layout.services)
        return self.t.client.get(f"/v1/services/{layout.service_base + n}", headers=self._key(layout.owner(n))), 200, None

    def list_first_page(self):
        j, account = self._large_customer()
        return self.t.client.get("/v1/services", headers=self._key(account)), 200, min(PAGE, self.t.layout.large_count(j))

    def list_deep_page(self):
        j, account = self._large_customer()
        count = self.t.layout.large_count(j)
        k = max(1, count - PAGE)  # the cursor: the service before the last full page
        after = self.t.layout.large_service_id(j, k)
        return self.t.client.get(f"/v1/services?after={after}", headers=self._key(account)), 200, min(PAGE, count - k)

    def checkout(self):
        account = self.t.layout.account_base + self.rnd.randint(1, self.t.layout.customers)
        headers = {**self._key(account), "Idempotency-Key": f"bench-{uuid.uuid4().hex}"}
        if not hasattr(self.t, "accept"):  # the terms every bench customer accepts (one storefront, one language)
            quote = self.t.client.post("/v1/orders/dry-run", json=ORDER, headers=self._key(account))
            self.t.accept = [c["content_hash"] for c in quote.json()["contracts"]]
        return self.t.client.post("/v1/orders", json={**ORDER, "accept": self.t.accept}, headers=headers), 201, None


def measure(targets: list[Target], requests: int, warmup: int, seed: int = 1) -> list[dict]:
    """Interleaved rounds: one request of each endpoint on each target per round (targets in
    turns, first one way then the other), so noise on a shared machine falls on all alike."""
    calls = [Calls(t, seed) for t in targets]
    samples: list[dict[str, list[int]]] = [{name: [] for name in ENDPOINTS} for _ in targets]
    for round_no in range(warmup + requests):
        for name in ENDPOINTS:
            order = range(len(targets)) if round_no % 2 == 0 else reversed(range(len(targets)))
            for i in order:
                t0 = time.perf_counter_ns()
                response, status, items = getattr(calls[i], name)()
                elapsed = time.perf_counter_ns() - t0
                if response.status_code != status:
                    raise RuntimeError(f"{name}: HTTP {response.status_code} {response.text[:500]}")
                if items is not None and not items <= len(response.json()["items"]) <= PAGE:  # checkouts may add some
                    raise RuntimeError(f"{name}: expected {items} services or more, got {len(response.json()['items'])}")
                if name == "checkout" and round_no == 0 and response.json()["invoice"]["status"] != "paid":
                    raise RuntimeError(f"checkout not paid: {response.text[:500]}")
                if round_no >= warmup:
                    samples[i][name].append(elapsed)
    out = []
    for per_target in samples:
        figures = {}
        for name, values in per_target.items():
            values.sort()
            figures[name] = {"p50_ms": round(_percentile(values, 0.50), 2), "p99_ms": round(_percentile(values, 0.99), 2),
                             "requests_per_s": round(len(values) / (sum(values) / 1e9), 1)}
        out.append(figures)
    return out


def run_side_by_side(services: list[int], database: str, *, customers: int = CUSTOMERS, requests: int = 1000,
                     warmup: int | None = None) -> list[dict]:
    """Each N in its own database and server, all measured in the same interleaved rounds."""
    warmup = max(20, requests // 10) if warmup is None else warmup
    for name in ("httpx", "httpcore"):  # a log line per request would be timed with it
        logging.getLogger(name).setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="univers-bench-api-"))
    try:
        with contextlib.ExitStack() as stack:
            targets = [stack.enter_context(serve_target(n, database, customers, work)) for n in services]
            figures = measure(targets, requests, warmup)
            at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
            return [{
                "bench": "api", "engine": t.engine, "services": t.services, "customers": customers,
                "requests": requests, "warmup_rounds": warmup, **f,
                **({"alongside": [n for n in services if n != t.services]} if len(services) > 1 else {}),
                "page": PAGE, "large_customer_services": t.layout.large_count(1), "build_seconds": round(t.build_s, 2),
                "server_peak_rss_mb": t.server.peak_rss_mb(), "cpus": os.cpu_count(), "python": platform.python_version(),
                "at": at,
            } for t, f in zip(targets, figures)]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(services: int, database: str, **options) -> dict:
    return run_side_by_side([services], database, **options)[0]


def main(services: int | list[int], database: str, output: str | None = "bench/results.jsonl", *,
         customers: int = CUSTOMERS, requests: int = 1000) -> int:
    sizes = [services] if isinstance(services, int) else list(services)
    if len(set(sizes)) != len(sizes):
        raise SystemExit("each size once")
    report(run_side_by_side(sizes, database, customers=customers, requests=requests), output)
    return 0


if __name__ == "__main__":
    sys.exit(main([int(n) for n in sys.argv[1].split(",")], sys.argv[2]))
