"""``univers bench usage --records N --projects P --database URL [--clients K] [--workers W] [--customers C]``

Creates C customers (default: P / 10, at least 1), each with an API key, and P Public Cloud
projects spread over them (set-based), in a PostgreSQL schema or an SQLite file of its own.
Starts the real server (``python -m core.cli serve``, scheduler off, W worker processes) on a
free port, then K client threads post N records through ``POST /v1/usage`` in batches of
10,000 (each batch from one customer, over its own projects: instance hours of a flavour, block
storage, egress), over keep-alive connections. The request bodies are encoded before the clock
starts, so the figure is the server's. ``records_per_s`` = N / wall time from the first request
to the last answer; every batch must come back with all its records accepted.

Prints one JSON line and appends it to the results file. ``seconds`` is the monthly run
over those records (:func:`core.usage.metering.run_usage_billing`: rated, invoiced, issued and closed,
one invoice per project), run after the server stopped, with a clock on the next month's 1st. The schema or file is dropped, and the
server stopped, whatever happens.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import platform
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
from sqlalchemy import text

from bench import report, scratch_database
from bench.api import post_all, serving
from bench.renewal import analyze, insert_accounts, insert_keys, insert_services

BATCH = 10_000
PLAN = "pci-project-p1m"
STOREFRONT = "FR"
KINDS = (("instance_hours", "b3-8", "1"), ("block_storage_gb_hours", None, "100.5"), ("egress_gb", None, "0.000125"))


def populate(conn, rt, projects: int, customers: int, token: str) -> int:
    """Customers with a key ``uk_bench_<token>_<account id>``, and their projects (project n
    belongs to customer ``base + 1 + (n - 1) % customers``). Returns the first project id - 1."""
    today = rt.clock.today()
    account_base = insert_accounts(conn, rt, customers, storefront=STOREFRONT)
    project_base = conn.execute(text("SELECT coalesce(max(id), 0) FROM service")).scalar_one()
    insert_services(conn, rt, projects, f"({account_base} + 1 + (n - 1) % {customers})", today, storefront=STOREFRONT,
                    plan_code=PLAN, start=today - dt.timedelta(days=10), expires=today + dt.timedelta(days=21),
                    ids_from=project_base)
    insert_keys(conn, rt, account_base, customers, f"uk_bench_{token}_")
    analyze(conn, "account", "service", "api_key")
    return account_base, project_base


def bodies(records: int, projects: int, customers: int, account_base: int, project_base: int, token: str,
           now: dt.datetime) -> list[tuple[str, dict, bytes, int]]:
    """(path, headers, body, size) of each batch, encoded in advance. Batch b is customer b % C's,
    over its projects in turn; timestamps fall in the hour before ``now``."""
    out = []
    start = now - dt.timedelta(hours=1)
    for b, first in enumerate(range(0, records, BATCH)):
        c = b % customers  # its projects: base + 1 + c + k * customers
        mine = max(1, (projects - c + customers - 1) // customers)
        batch = []
        for i in range(first, min(first + BATCH, records)):
            metric, dimension, quantity = KINDS[i % len(KINDS)]
            project = project_base + 1 + c + (i % mine) * customers
            at = start + dt.timedelta(microseconds=i % 3_600_000_000)
            batch.append({"id": f"{token}-{i}", "project": project, "metric": metric, "dimension": dimension,
                          "quantity": quantity, "at": at.isoformat().replace("+00:00", "Z")})
        headers = {"Authorization": f"Bearer uk_bench_{token}_{account_base + 1 + c}", "Content-Type": "application/json"}
        out.append(("/v1/usage", headers, msgspec.json.encode({"records": batch}), len(batch)))
    return out


@contextlib.contextmanager
def target(database: str, work: Path) -> Iterator[tuple]:
    """A fresh schema (PostgreSQL) or file (SQLite), migrated; dropped afterwards."""
    from core.boot import build_runtime
    from core.clock import Clock
    from core.config import Settings

    with scratch_database(database) as (engine, server_url):
        yield build_runtime(Settings(data_dir=work, database_url=server_url), Clock(), engine=engine), server_url


def run(records: int, projects: int, database: str, *, customers: int | None = None, clients: int = 4,
        workers: int = 1) -> dict:
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    customers = customers or max(1, projects // 10)
    if customers > projects:
        raise SystemExit("more customers than projects")
    work = Path(tempfile.mkdtemp(prefix="univers-bench-usage-"))
    token = secrets.token_hex(4)
    try:
        with target(database, work) as (rt, server_url):
            t0 = time.perf_counter()
            with rt.engine.begin() as conn:
                account_base, project_base = populate(conn, rt, projects, customers, token)
            build_s = time.perf_counter() - t0
            batches = bodies(records, projects, customers, account_base, project_base, token, rt.clock.now())
            with serving(server_url, work / f"server-{token}.log", workers=workers) as server:
                wall, accepted, latencies = post_all(server.base_url, batches, clients)
                latencies.sort()
                with rt.engine.connect() as conn:
                    stored = conn.execute(text("SELECT count(*) FROM usage_record")).scalar_one()
                    used = conn.execute(text("SELECT count(DISTINCT service_id) FROM usage_record")).scalar_one()
                if stored != records:
                    raise RuntimeError(f"{stored} records stored, {records} sent; the server's log ends with:\n{server.log_tail()}")
                peak_rss = _tree_peak_rss_mb(server.proc.pid)
            # the server stopped: the monthly run alone on the machine, like the scheduler's job at night
            rating_s, billed = rate_months(rt)
            if billed["projects"] != used or billed["failed"]:
                raise RuntimeError(f"monthly run: {billed}")
            return {
                "bench": "usage", "engine": rt.engine.dialect.name, "records": records, "projects": projects,
                "customers": customers, "records_per_s": round(records / wall), "ingest_seconds": round(wall, 2),
                "seconds": round(rating_s, 2),  # the monthly run: rate, invoice, issue and close every project
                "projects_used": used, "invoices": billed["invoices"], "invoice_lines": billed["lines"],
                "batch": BATCH, "clients": clients, "workers": workers,
                "p50_batch_ms": round(latencies[len(latencies) // 2] * 1000, 1),
                "max_batch_ms": round(latencies[-1] * 1000, 1),
                "peak_rss_mb": peak_rss, "build_seconds": round(build_s, 2),
                "cpus": os.cpu_count(), "python": platform.python_version(),
                "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def rate_months(rt) -> tuple[float, dict]:
    """Run the monthly billing of every month the records fall in, with a clock on the next
    month's 1st at 03:00 (the scheduler's time); its wall time and summed summary."""
    from dataclasses import replace

    from core.clock import FrozenClock
    from core.usage.metering import run_usage_billing
    from core.usage.rating import next_month

    with rt.engine.connect() as conn:
        months = [dt.date.fromisoformat(str(m)[:10])
                  for m in conn.execute(text("SELECT DISTINCT period FROM usage_record ORDER BY period")).scalars()]
    after = next_month(months[-1])
    billing = replace(rt, clock=FrozenClock(dt.datetime(after.year, after.month, 1, 3, tzinfo=dt.timezone.utc)))
    total = {"projects": 0, "invoices": 0, "lines": 0, "failed": 0}
    t0 = time.perf_counter()
    for month in months:
        summary = run_usage_billing(billing, month)
        for k in total:
            total[k] += getattr(summary, k)
    return time.perf_counter() - t0, total


def _tree_peak_rss_mb(pid: int) -> float | None:
    """The server's peak resident memory: the largest of its process and its worker processes."""
    from bench.api import _peak_rss_mb

    pids = [pid]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    peaks = [p for p in (_peak_rss_mb(p) for p in pids) if p is not None]
    return max(peaks) if peaks else None


def main(records: int, projects: int, database: str, output: str | None = "bench/results.jsonl", **options) -> int:
    report([run(records, projects, database, **options)], output)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
