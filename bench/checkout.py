"""``univers bench checkout --database URL --workers N --clients C --seconds S``

Checkout under load. In a PostgreSQL schema (or an SQLite file) of its own: C company
customers of the French storefront, each with an API key and a prepaid balance (set-based).
Starts the real server (``python -m core.cli serve``, scheduler off, N API worker processes)
on a free port; each of C client threads (one keep-alive connection each) asks the dry run
once for the contract versions to accept, then, for S seconds, places one-click orders of a
month of web hosting paid from the balance, each with a new ``Idempotency-Key``; one request
in ten is a replay of one of its earlier orders (same key, same body), which must answer
``200`` with the same order and charge nothing more.

Reports ``orders_per_s`` (new orders / S), ``p50_ms``/``p99_ms`` of every request (replays
included), ``errors`` (any other answer, or a replay answered with another order) and
``replays``. Afterwards it checks, in the tables: one order per key answered 201, one invoice
per order, paid, one debit from the balance per invoice, and every account's balance equal
to its starting balance plus its ledger. Prints one JSON line and appends it to the results
file; the schema or file is dropped and the server stopped, whatever happens.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import platform
import random
import secrets
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import text

from bench import report, scratch_database
from bench.api import serving
from bench.renewal import analyze, insert_accounts, insert_keys

PLAN = "web-hosting-starter-p1m"
STOREFRONT = "FR"
BALANCE_MINOR = 10**12  # enough for any run
REPLAY_SHARE = 0.1


def _client(base_url: str, key: str, deadline_box: list, out: dict, lock: threading.Lock, seed: int) -> None:
    import httpx

    rnd = random.Random(seed)
    headers = {"Authorization": f"Bearer {key}"}
    body = {"items": [{"plan": PLAN}], "payment": {"method": "balance"}}
    latencies, created, errors, replays = [], {}, [], 0
    with httpx.Client(base_url=base_url, timeout=60) as client:
        r = client.post("/v1/orders/dry-run", json={**body, "accept": []}, headers=headers)
        if r.status_code != 200:
            errors.append(f"dry run: HTTP {r.status_code} {r.text[:300]}")
        else:
            body["accept"] = [c["content_hash"] for c in r.json()["contracts"]]
        out["ready"].wait()
        while len(errors) < 20:
            deadline = deadline_box[0]
            if time.perf_counter() >= deadline:
                break
            replay = created and rnd.random() < REPLAY_SHARE
            key = rnd.choice(list(created)) if replay else f"co-{secrets.token_hex(8)}"
            t0 = time.perf_counter()
            try:
                r = client.post("/v1/orders", json=body, headers={**headers, "Idempotency-Key": key})
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append(time.perf_counter() - t0)
            if replay:
                replays += 1
                if r.status_code != 200 or r.json().get("id") != created[key]:
                    errors.append(f"replay of {key}: HTTP {r.status_code} {r.text[:300]}")
            elif r.status_code == 201:
                created[key] = r.json()["id"]
            else:
                errors.append(f"HTTP {r.status_code}: {r.text[:300]}")
    with lock:
        out["latencies"] += latencies
        out["created"].update(created)
        out["errors"] += errors
        out["replays"] += replays


def check_books(conn, account_base: int, customers: int, orders: dict[str, int]) -> dict:
    """Each order charged once, and the balances add up. Raises on the first broken rule."""
    ids = list(orders.values())
    stored = conn.execute(text("SELECT count(*) FROM orders WHERE account_id > :b AND account_id <= :t"),
                          dict(b=account_base, t=account_base + customers)).scalar_one()
    if stored != len(ids):
        raise RuntimeError(f"{stored} orders stored, {len(ids)} answered 201")
    per_order = dict(conn.execute(text(
        "SELECT order_id, count(*) FROM invoice WHERE account_id > :b AND account_id <= :t AND status = 'paid' GROUP BY order_id"),
        dict(b=account_base, t=account_base + customers)).all())
    if len(per_order) != len(ids) or any(n != 1 for n in per_order.values()):
        raise RuntimeError(f"{len(per_order)} orders with a paid invoice of {len(ids)}; twice: "
                           f"{[o for o, n in per_order.items() if n != 1][:5]}")
    debits = conn.execute(text("""
        SELECT count(*), count(DISTINCT e.invoice_id), coalesce(-sum(e.amount_minor), 0), coalesce(sum(i.total_minor), 0)
        FROM balance_entry e JOIN invoice i ON i.id = e.invoice_id
        WHERE e.account_id > :b AND e.account_id <= :t AND e.reason = 'invoice'"""),
        dict(b=account_base, t=account_base + customers)).one()
    if not (debits[0] == debits[1] == len(ids) and debits[2] == debits[3]):
        raise RuntimeError(f"debits {tuple(debits)} for {len(ids)} orders")
    drift = conn.execute(text("""
        SELECT count(*) FROM account a
        WHERE a.id > :b AND a.id <= :t
          AND a.balance_minor <> :start + (SELECT coalesce(sum(amount_minor), 0) FROM balance_entry e WHERE e.account_id = a.id)"""),
        dict(b=account_base, t=account_base + customers, start=BALANCE_MINOR)).scalar_one()
    if drift:
        raise RuntimeError(f"{drift} accounts whose balance is not their start plus their ledger")
    return {"invoices": len(per_order), "charged": int(debits[2])}


def run(database: str, *, workers: int = 2, clients: int = 8, seconds: float = 10.0) -> dict:
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from core.boot import build_runtime
    from core.clock import Clock
    from core.config import Settings

    work = Path(tempfile.mkdtemp(prefix="univers-bench-checkout-"))
    token = secrets.token_hex(4)
    try:
        with scratch_database(database) as (engine, server_url):
            rt = build_runtime(Settings(data_dir=work, database_url=server_url), Clock(), engine=engine)
            with rt.engine.begin() as conn:
                base = insert_accounts(conn, rt, clients, storefront=STOREFRONT, balance_minor=BALANCE_MINOR)
                insert_keys(conn, rt, base, clients, f"uk_co_{token}_")
                analyze(conn, "account", "api_key")
            with serving(server_url, work / f"server-{token}.log", workers=workers) as server:
                out = {"latencies": [], "created": {}, "errors": [], "replays": 0, "ready": threading.Event()}
                lock, deadline = threading.Lock(), [0.0]
                threads = [threading.Thread(target=_client, args=(server.base_url, f"uk_co_{token}_{base + 1 + i}", deadline, out,
                                                                  lock, i)) for i in range(clients)]
                for t in threads:
                    t.start()
                time.sleep(0.5)  # the dry runs
                t0 = time.perf_counter()
                deadline[0] = t0 + seconds
                out["ready"].set()
                for t in threads:
                    t.join()
                wall = time.perf_counter() - t0
                peak = server.peak_rss_mb()
            with rt.engine.connect() as conn:
                books = check_books(conn, base, clients, out["created"])
            lat = sorted(out["latencies"])
            pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1) if lat else None  # noqa: E731
            return {
                "bench": "checkout", "engine": rt.engine.dialect.name, "workers": workers, "clients": clients,
                "seconds": round(wall, 2), "orders": len(out["created"]), "replays": out["replays"],
                "orders_per_s": round(len(out["created"]) / wall, 1),
                "requests_per_s": round(len(lat) / wall, 1), "p50_ms": pick(0.5), "p99_ms": pick(0.99),
                "errors": len(out["errors"]), "first_errors": out["errors"][:3], "books": "ok", **books,
                "server_peak_rss_mb": peak, "cpus": os.cpu_count(), "python": platform.python_version(),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared",
                "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(database: str, output: str | None = "bench/results.jsonl", **options) -> int:
    result = run(database, **options)
    report([result], output)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
