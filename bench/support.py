"""``univers bench support --tickets N[,N2...] --database URL [--job-tickets J] [--requests K]``

Two figures of support at scale, each in databases of its own (a PostgreSQL schema, or an SQLite
file), loaded set-based:

* **the SLA job**: J open tickets (default 100,000), one in a hundred due for a check (its first
  response long past), the others not due for an hour. ``job_seconds`` is one run of the job
  (``core.support.sla.run_sla``): find the due tickets, replay their clocks, record their breaches,
  plan their next check. The bar: under 2 s.
* **a ticket list page at two sizes**: N tickets (default 10,000 and 1,000,000) across
  N / 100 customers, among them one measured customer who holds 10 servers and 200 tickets, their
  ids spread over the whole table. ``GET /v1/support/tickets`` (the customer's first page of 50)
  and ``GET /v1/staff/support/tickets`` (the staff queue's first page, closest deadline first) are asked in
  interleaved rounds at every size through the application in this process, so that noise on a
  shared machine hits every size alike; the bar is the ratio of the p99 latencies of the largest
  size to the smallest: at most 1.2.

Prints one JSON line per figure and appends them to the results file; the schemas or files are
dropped whatever happens.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import platform
import statistics
import sys
import time
from pathlib import Path

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy import text

from bench import report, scratch_database
from bench.renewal import SERIES, analyze, insert_accounts, insert_keys, insert_services

NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.timezone.utc)  # a Monday, 11:00 in Paris
SERVER = "bm-ks-1-p1m"
MEASURED_SERVICES, MEASURED_TICKETS = 10, 200
KEY_PREFIX = "ubench_support_"


def populate(conn, rt, tickets: int, *, due_every: int = 0) -> int:
    """``tickets`` open tickets on one server per customer (``tickets / 100`` customers, at least
    100) and on the measured customer's 10 servers (200 of them, spread over the ids). Each has its
    opening in the log. With ``due_every``, every such ticket is due for a check now, opened a week
    ago; the others were opened an hour ago and are checked in an hour. Returns the measured
    customer's id."""
    others = max(100, tickets // 100)
    base = insert_accounts(conn, rt, others + 1)
    measured = base + others + 1
    insert_keys(conn, rt, measured - 1, 1, KEY_PREFIX)
    svc_base = conn.execute(text("SELECT coalesce(max(id), 0) FROM service")).scalar_one()
    start, expires = NOW.date() - dt.timedelta(days=10), NOW.date() + dt.timedelta(days=20)
    insert_services(conn, rt, others, f"{base} + n", NOW.date(), plan_code=SERVER, start=start, expires=expires,
                    ids_from=svc_base)
    insert_services(conn, rt, MEASURED_SERVICES, str(measured), NOW.date(), plan_code=SERVER, start=start, expires=expires,
                    ids_from=svc_base + others)
    step = max(1, tickets // MEASURED_TICKETS)
    conn.execute(text(SERIES + """
        INSERT INTO support_ticket (id, service_id, account_id, opened_by, universe, storefront, level_code, queue, category,
                                    subject, priority, status, due_at, next_check_at, alert_level, created_at, updated_at)
        SELECT n,
               CASE WHEN n % :step = 0 THEN :measured_svc + (n / :step) % :measured_n ELSE :svc_base + 1 + n % :others END,
               CASE WHEN n % :step = 0 THEN :measured ELSE :base + 1 + n % :others END,
               CASE WHEN n % :step = 0 THEN :measured ELSE :base + 1 + n % :others END,
               'baremetal', 'FR', 'support-baremetal-l1', 'support', 'technical', 'The server does not answer', 'normal',
               'open',
               CASE WHEN :due > 0 AND n % :due = 0 THEN :week_ago ELSE :later END,
               CASE WHEN :due > 0 AND n % :due = 0 THEN :week_ago ELSE :later END,
               0,
               CASE WHEN :due > 0 AND n % :due = 0 THEN :week_ago ELSE :hour_ago END,
               CASE WHEN :due > 0 AND n % :due = 0 THEN :week_ago ELSE :hour_ago END
        FROM seq"""), dict(count=tickets, step=step, measured=measured, measured_svc=svc_base + others + 1,
                           measured_n=MEASURED_SERVICES, svc_base=svc_base, others=others, base=base, due=due_every,
                           week_ago=NOW - dt.timedelta(days=7), later=NOW + dt.timedelta(hours=1),
                           hour_ago=NOW - dt.timedelta(hours=1)))
    open_tickets(conn)
    analyze(conn, "account", "service", "support_ticket", "support_ticket_event", "api_key")
    return measured


def open_tickets(conn) -> None:
    """The opening event of every seeded ticket (its clocks start there), and PostgreSQL's id
    sequence moved past the seeded ids."""
    conn.execute(text("""
        INSERT INTO support_ticket_event (ticket_id, at, kind, value, author_id, author_role, body)
        SELECT id, created_at, 'opened', 'normal', account_id, 'admin+billing+tech', 'It stopped answering.'
        FROM support_ticket"""))
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT setval(pg_get_serial_sequence('support_ticket', 'id'), (SELECT max(id) FROM support_ticket))"))


def _runtime(engine, url):
    from core.boot import build_runtime
    from core.clock import FrozenClock
    from core.config import Settings

    settings = Settings.from_env(data_dir=Path("var"), database_url=url, scheduler=False)
    return build_runtime(settings, FrozenClock(NOW), engine=engine)


def job(tickets: int, database: str) -> dict:
    from core.support.sla import run_sla
    from core.uow import unit_of_work

    with scratch_database(database) as (engine, url):
        rt = _runtime(engine, url)
        t0 = time.perf_counter()
        with unit_of_work(rt) as conn:
            populate(conn, rt, tickets, due_every=100)
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        summary = run_sla(rt)
        seconds = time.perf_counter() - t0
        again = run_sla(rt)  # nothing is due any more: the job only reads the index
        rt.close()
    return {"bench": "support_sla_job", "engine": rt.settings.engine_name, "open_tickets": tickets,
            "due": summary.checked, "breaches": summary.breaches, "job_seconds": round(seconds, 3),
            "tickets_per_s": round(summary.checked / seconds) if seconds else None, "second_run_checked": again.checked,
            "build_seconds": round(build_s, 1), "python": platform.python_version()}


def lists(sizes: list[int], database: str, requests: int) -> list[dict]:
    import logging

    from litestar.testing import TestClient

    from core.api.app import create_app
    from core.uow import unit_of_work

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    with contextlib.ExitStack() as stack:
        clients = {}
        for size in sizes:
            engine, url = stack.enter_context(scratch_database(database))
            rt = _runtime(engine, url)
            stack.callback(rt.close)
            with unit_of_work(rt) as conn:
                measured = populate(conn, rt, size)
                from core.customers.accounts import create_customer

                _, staff_key = create_customer(conn, rt, {"subsidiary": "FR", "name": "Agent", "email": "a@univers.example"},
                                               is_staff=True, staff_role="support_agent")
            client = stack.enter_context(TestClient(app=create_app(rt)))
            clients[size] = (client, {"Authorization": f"Bearer {KEY_PREFIX}{measured}"},
                             {"Authorization": f"Bearer {staff_key}"}, rt.settings.engine_name)
        endpoints = {"customer_first_page": lambda c, mine, staff: c.get("/v1/support/tickets", headers=mine),
                     "staff_queue_first_page": lambda c, mine, staff: c.get("/v1/staff/support/tickets", headers=staff)}
        times = {(size, name): [] for size in sizes for name in endpoints}
        for size, (client, mine, staff, _) in clients.items():  # warm-up, and a check that the pages are what we think
            for name, call in endpoints.items():
                for _ in range(20):
                    r = call(client, mine, staff)
                    assert r.status_code == 200 and len(r.json()["items"]) == 50, (size, name, r.text[:200])
        with Progress(TextColumn("ticket lists"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
            task = bar.add_task("rounds", total=requests)
            for _ in range(requests):
                for size, (client, mine, staff, _) in clients.items():
                    for name, call in endpoints.items():
                        t0 = time.perf_counter()
                        call(client, mine, staff)
                        times[size, name].append(time.perf_counter() - t0)
                bar.advance(task)
    out = []
    small, large = min(sizes), max(sizes)
    for name in endpoints:
        p99 = {size: statistics.quantiles(times[size, name], n=100)[98] * 1000 for size in sizes}
        out.append({"bench": "support_list", "engine": clients[small][3], "endpoint": name, "tickets": sizes,
                    "p50_ms": {str(s): round(statistics.median(times[s, name]) * 1000, 2) for s in sizes},
                    "p99_ms": {str(s): round(p99[s], 2) for s in sizes}, "p99_ratio": round(p99[large] / p99[small], 3),
                    "requests": requests, "python": platform.python_version()})
    return out


def main(sizes: list[int], database: str, output: str | None = "bench/results.jsonl", *, job_tickets: int = 100_000,
         requests: int = 300) -> int:
    results = [job(job_tickets, database)] if job_tickets else []
    if len(sizes) > 1:
        results += lists(sorted(sizes), database, requests)
    report(results, output)
    return 0


if __name__ == "__main__":
    sys.exit(main([int(n) for n in sys.argv[1].split(",")], sys.argv[2]))
