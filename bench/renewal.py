"""``univers bench renewal --services N --database URL [--profile]``

Builds N active services due today (set-based, ten services per billing account, every
account able to pay from its prepaid balance) in a schema or database of its own, runs the
renewal, checks the result, prints one JSON line and appends it to the results file. The
target is left clean: the PostgreSQL schema is dropped, the SQLite file deleted.

Right before the run, on the same data and engine, the **bare reference** (:func:`bare_reference`)
writes what a renewal writes with nothing else, in the run's chunks and on as many connections,
then undoes it: its rate
(``reference_per_s``) is the limit of this machine and engine at that moment, and ``ratio`` =
``services_per_s / reference_per_s`` says how close the run gets to it, whatever the machine.
``--profile`` adds the time of each statement of the run (:mod:`bench.profile`; on PostgreSQL
with ``EXPLAIN (ANALYZE, BUFFERS)`` of its writes) and marks the line ``profiled``: its rate is
then not comparable.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import resource
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import and_, delete, func, insert, literal, select, text, update
from sqlalchemy.engine import Connection, Engine

from bench import report, scratch_database

SERVICES_PER_ACCOUNT = 10
PLAN = "bm-rise-1-p1m"
SERIES = "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < :count) "


def populate(conn: Connection, rt, services: int, today: dt.date, *, per_account: int = SERVICES_PER_ACCOUNT,
             storefront: str = "FR", plan_code: str = PLAN) -> None:
    """N active monthly services expiring today, in accounts with enough balance. Set-based."""
    price = rt.catalog.price(storefront, plan_code, today).amount_minor
    accounts = max(1, -(-services // per_account))
    base = insert_accounts(conn, rt, accounts, storefront=storefront, balance_minor=price * 2 * per_account * 2)
    owner = f"{base} + 1 + (n - 1) / {int(per_account)}"
    insert_services(conn, rt, services, owner, today, storefront=storefront, plan_code=plan_code,
                    start=today - dt.timedelta(days=31), expires=today)
    analyze(conn, "account", "service")


def insert_accounts(conn: Connection, rt, count: int, *, storefront: str = "FR", balance_minor: int = 0) -> int:
    """``count`` company accounts paying from their prepaid balance, ids ``base + 1 .. base + count``;
    returns ``base``. One statement."""
    sub = rt.storefronts[storefront]
    base = conn.execute(select(func.coalesce(func.max(text("id")), 0)).select_from(text("account"))).scalar_one()
    conn.execute(text(SERIES + """
        INSERT INTO account (id, handle, subsidiary, kind, name, email, language, country, vat_verified, tax_zone, is_staff,
                             balance_minor, payment_method, created_at)
        SELECT :base + n, 'bench' || CAST(:base + n AS TEXT) || '-univers', :sub, 'company', 'Bench customer', 'bench@example.com',
               :lang, :country, false, :zone, false, :balance, 'balance', :now FROM seq"""),
        dict(count=count, base=base, sub=storefront, lang=sub.default_locale, country=sub.country, zone=sub.tax_zone,
             balance=balance_minor, now=rt.clock.now()))
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT setval(pg_get_serial_sequence('account', 'id'), (SELECT max(id) FROM account))"))
    return base


def insert_keys(conn: Connection, rt, account_base: int, count: int, prefix: str) -> None:
    """An API key ``<prefix><account id>`` for accounts ``account_base + 1 .. + count``, stored as
    core.customers.accounts hashes it (SQLite: through a deterministic SQL function). One statement."""
    if conn.dialect.name == "postgresql":
        digest = "encode(sha256(convert_to(k, 'UTF8')), 'hex')"
    else:
        from core.customers.accounts import hash_key

        conn.connection.driver_connection.create_function("bench_hash_key", 1, hash_key, deterministic=True)
        digest = "bench_hash_key(k)"
    conn.execute(text(f"""
        INSERT INTO api_key (account_id, key_hash, prefix, created_at)
        SELECT id, {digest}, substr(k, 1, 10), :now
        FROM (SELECT id, :prefix || CAST(id AS TEXT) AS k FROM account WHERE id > :base AND id <= :top) AS keyed"""),
        dict(prefix=prefix, base=account_base, top=account_base + count, now=rt.clock.now()))


def insert_services(conn: Connection, rt, count: int, owner: str, today: dt.date, *, storefront: str = "FR",
                    plan_code: str = PLAN, start: dt.date, expires: dt.date, ids_from: int | None = None) -> None:
    """``count`` active monthly services; ``owner`` is an SQL expression of ``n`` (1 .. count) giving
    the account that owns the n-th (and is its admin, tech and billing contact). With ``ids_from``
    the n-th service gets the id ``ids_from + n``. One statement."""
    plan = rt.catalog.plans[plan_code]
    sub = rt.storefronts[storefront]
    price = rt.catalog.price(storefront, plan_code, today).amount_minor
    now = rt.clock.now()
    id_col, id_val = ("id, ", ":ids_from + n, ") if ids_from is not None else ("", "")
    conn.execute(text(SERIES + f"""
        INSERT INTO service ({id_col}account_id, admin_account_id, tech_account_id, billing_account_id, universe, product_code,
                             plan_code, kind, subsidiary, currency, state, renewal_mode, period_months, quantity, price_minor,
                             start_on, expires_on, billed_until, options, created_at, updated_at)
        SELECT {id_val}{owner}, {owner}, {owner}, {owner},
               :universe, :product, :plan, :kind, :sub, :cur, 'active', 'automatic', 1, 1, :price,
               :start, :expires, :expires, '{{}}', :now, :now FROM seq"""),
        dict(count=count, universe=plan.universe, product=plan.product_code, plan=plan.code, kind=plan.kind, sub=storefront,
             cur=sub.currency, price=price, start=start, expires=expires, now=now,
             **({"ids_from": ids_from} if ids_from is not None else {})))
    if conn.dialect.name == "postgresql" and ids_from is not None:
        conn.execute(text("SELECT setval(pg_get_serial_sequence('service', 'id'), (SELECT max(id) FROM service))"))


def analyze(conn: Connection, *tables: str) -> None:
    """Fresh planner statistics after a bulk load (PostgreSQL; SQLite is left as the app leaves it)."""
    if conn.dialect.name == "postgresql":
        for table in tables:
            conn.execute(text(f"ANALYZE {table}"))


REFERENCE_SERIES = "REF"  # the reference's invoices, deleted after it
USER_TRIGGERS = ("invoice", "invoice_line", "service")


@contextlib.contextmanager
def _triggers_aside(engine: Engine) -> Iterator[None]:
    """The tables' own triggers (the immutability checks) off for the reference, committed (its
    chunks commit as the run's do), and back as they were whatever happens. Constraints stay."""
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        if postgres:
            for table in USER_TRIGGERS:
                conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        else:
            saved = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN "
                                      "('invoice', 'invoice_line', 'service') ORDER BY name")).all()
            for name, _sql in saved:
                conn.execute(text(f'DROP TRIGGER "{name}"'))
    try:
        yield
    finally:
        with engine.begin() as conn:
            if postgres:
                for table in USER_TRIGGERS:
                    conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
            else:
                for _name, sql in saved:
                    conn.exec_driver_sql(sql)


def _reference_chunk(conn: Connection, rt, horizon: dt.date, after: int) -> tuple[int, int]:
    """The bare writes for the next chunk of billing accounts, picked as the run picks them:
    (last account, lines written); (0, 0) when nothing is due."""
    from core.db import sql_add_months
    from core.models import Invoice, InvoiceLine, Service
    from core.renewal.run import next_accounts

    svc, inv, line = Service.__table__, Invoice.__table__, InvoiceLine.__table__
    accounts, mine, _ = next_accounts(conn, horizon, after, rt.settings.renewal_chunk, lock=True, count=False)
    if not accounts:
        return 0, 0
    batch = -1 - secrets.randbits(62)  # this chunk's invoices (a run's batches are positive)
    conn.execute(insert(inv).from_select(
        ["account_id", "run_id", "subsidiary", "currency", "kind", "status", "series", "due_on", "net_minor",
         "tax_minor", "total_minor", "created_at"],
        select(svc.c.billing_account_id, literal(batch), svc.c.subsidiary, svc.c.currency,
               literal("renewal"), literal("draft"), literal(REFERENCE_SERIES), svc.c.billed_until, literal(0), literal(0),
               literal(0), literal(rt.clock.now(), type_=inv.c.created_at.type))
        .where(mine).group_by(svc.c.billing_account_id, svc.c.subsidiary, svc.c.currency, svc.c.billed_until)))
    postgres = conn.dialect.name == "postgresql"
    if postgres:  # as the run does: the new invoices have no statistics, a hash join is right
        conn.exec_driver_sql("SET LOCAL enable_nestloop = off")
    lines = conn.execute(insert(line).execution_options(preserve_rowcount=True).from_select(
        ["invoice_id", "service_id", "kind", "universe", "product_code", "plan_code", "period_start", "period_end",
         "quantity", "unit_price_minor", "net_minor", "tax_category", "tax_rate_ppm"],
        select(inv.c.id, svc.c.id, literal("recurring"), svc.c.universe, svc.c.product_code, svc.c.plan_code,
               svc.c.billed_until, sql_add_months(svc.c.billed_until, svc.c.period_months), svc.c.quantity,
               svc.c.price_minor, svc.c.price_minor, literal("S"), literal(0))
        .join(inv, and_(inv.c.run_id == batch, inv.c.account_id == svc.c.billing_account_id,
                        inv.c.due_on == svc.c.billed_until, inv.c.subsidiary == svc.c.subsidiary,
                        inv.c.currency == svc.c.currency))
        .where(mine))).rowcount
    if postgres:
        conn.exec_driver_sql("SET LOCAL enable_nestloop = on")
    period_end = sql_add_months(svc.c.billed_until, svc.c.period_months)
    conn.execute(update(svc).where(mine).values(billed_until=period_end, expires_on=period_end))
    return accounts[-1], lines


def _undo_reference(engine: Engine) -> None:
    """Put the services back where the reference found them (billed until, and expiring, the
    start of the period it wrote: the bench's services expire the day they are billed until),
    and delete its invoices and lines."""
    from core.models import Invoice, InvoiceLine, Service

    svc, inv, line = Service.__table__, Invoice.__table__, InvoiceLine.__table__
    ref = select(inv.c.id).where(inv.c.series == REFERENCE_SERIES)
    written = select(line.c.service_id, line.c.period_start).where(line.c.invoice_id.in_(ref)).subquery()
    with engine.begin() as conn:
        conn.execute(update(svc).where(svc.c.id == written.c.service_id)
                     .values(billed_until=written.c.period_start, expires_on=written.c.period_start))
        conn.execute(delete(line).where(line.c.invoice_id.in_(ref)))
        conn.execute(delete(inv).where(inv.c.series == REFERENCE_SERIES))


def bare_reference(engine: Engine, rt, today: dt.date) -> tuple[int, float]:
    """What a renewal writes, and nothing else, on the services due, in the run's own chunks
    (``renewal_chunk`` billing accounts, picked as it picks them, each chunk a transaction that
    commits) and on as many connections at once (``renewal_workers``): per chunk, one statement
    per table: an invoice per (billing account, storefront, currency, period start), a line per
    service, the update moving ``billed_until`` and ``expires_on``. No tax, price lookup,
    numbering, payment, ledger, audit or trigger; the tables keep their indexes, keys and
    foreign keys. Then undone, so the data is as it was (PostgreSQL: the dead row versions are
    vacuumed away, ``VACUUM FULL``, so the run gets tables as compact as the seeding left them).
    Returns (services, seconds)."""
    from core.renewal.run import renewal_workers

    horizon = today + dt.timedelta(days=rt.settings.renewal_lead_days)
    lines, lock = [0], threading.Lock()

    def sweep() -> None:
        cursor = 0
        while True:
            with engine.begin() as conn:
                cursor, written = _reference_chunk(conn, rt, horizon, cursor)
            if not cursor:
                return
            with lock:
                lines[0] += written

    workers = renewal_workers(rt)
    with _triggers_aside(engine):
        try:
            t0 = time.perf_counter()
            if workers == 1:
                sweep()
            else:
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    for done in [pool.submit(sweep) for _ in range(workers)]:
                        done.result()
            seconds = time.perf_counter() - t0
        finally:
            _undo_reference(engine)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in ("service", "invoice", "invoice_line"):
                conn.exec_driver_sql(f"VACUUM FULL ANALYZE {table}")
    return lines[0], seconds


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run(services: int, database: str, *, chunk: int | None = None, profile: bool = False) -> dict:
    from bench.profile import statement_profile
    from core.boot import build_runtime
    from core.clock import FrozenClock
    from core.config import Settings
    from core.renewal.run import run_renewal
    from core.uow import unit_of_work

    today = dt.date(2026, 3, 1)
    with scratch_database(database) as (engine, url):
        settings = Settings.from_env(data_dir=Path("var"), database_url=url, **({"renewal_chunk": chunk} if chunk else {}))
        rt = build_runtime(settings, FrozenClock(today), engine=engine)
        t0 = time.perf_counter()
        with unit_of_work(rt) as conn:
            populate(conn, rt, services, today)
        build_s = time.perf_counter() - t0
        with (statement_profile(engine, explain=False) if profile else contextlib.nullcontext()) as ref_prof:
            ref_services, ref_seconds = bare_reference(engine, rt, today)
        if ref_services != services:
            raise SystemExit(f"benchmark reference is wrong: {ref_services} lines for {services} services")
        profiler = statement_profile(engine) if profile else contextlib.nullcontext()
        with profiler as prof:
            t0 = time.perf_counter()
            summary = run_renewal(rt, today, dunning=False)
            seconds = time.perf_counter() - t0
        with engine.connect() as conn:
            lines = conn.execute(text("SELECT count(*) FROM invoice_line")).scalar_one()
            max_seq = conn.execute(text("SELECT max(seq) FROM invoice")).scalar_one()
        if summary.services != services or lines != services or summary.paid != summary.invoices or max_seq != summary.invoices:
            raise SystemExit(f"benchmark result is wrong: {summary.as_dict()} lines={lines} max_seq={max_seq}")
        rate, reference = services / seconds, services / ref_seconds
        result = {
            "bench": "renewal", "engine": engine.dialect.name, "services": services, "seconds": round(seconds, 3),
            "services_per_s": round(rate), "reference_seconds": round(ref_seconds, 3),
            "reference_per_s": round(reference), "ratio": round(rate / reference, 3),
            "invoices": summary.invoices, "chunk_accounts": settings.renewal_chunk,
            "workers": settings.renewal_workers or (os.cpu_count() if engine.dialect.name == "postgresql" else 1),
            "build_seconds": round(build_s, 2), "peak_rss_mb": _peak_rss_mb(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        if profile:
            print("== the bare reference", file=sys.stderr)
            ref_prof.print()
            print("== the run", file=sys.stderr)
            prof.print()
            result["profiled"] = True
            result["profile"] = {r["statement"]: r["seconds"] for r in prof.summary(40)}
        return result


def main(services: int, database: str, output: str | None = "bench/results.jsonl", *, profile: bool = False,
         chunk: int | None = None) -> int:
    report([run(services, database, profile=profile, chunk=chunk)], output)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), sys.argv[2]))
