"""``univers bench logs --records N --services 10000,100000 --database URL [--clients K]``

Infrastructure logs (core/infralogs), through the real server (``python -m core.cli serve``,
scheduler off) on a scratch PostgreSQL schema or SQLite file:

1. **Ingestion**: K client threads post N entries through ``POST /v1/services/{id}/logs`` in
   batches of 10,000 (each batch to one of 20 baremetal servers, with an administrator's key),
   over keep-alive connections; bodies are encoded before the clock starts. ``entries_per_s`` =
   N / wall time; every batch must come back all accepted.
2. **A page at several sizes**: for each size S, one more server gets S entries (loaded
   set-based, spread over 30 days, 6 severities and 4 sources), then its admin contact's first
   page (``GET /v1/services/{id}/logs``, 50 entries) and a filtered one (``severity=error``,
   ``source=hardware``) are timed R times, the sizes interleaved. ``p99_ratio``: the largest
   size's p99 over the smallest's (flat is ≤ 1.2).

Prints one JSON line per figure and appends them to the results file.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import platform
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import msgspec
from sqlalchemy import text

from bench import report, scratch_database
from bench.api import _percentile, post_all, serving
from bench.renewal import SERIES, analyze, insert_accounts, insert_keys, insert_services

BATCH = 10_000
PLAN = "bm-ks-1-p1m"
SERVERS = 20  # the ingestion's targets
SOURCES = ("hardware", "network", "ddos", "intervention")
SEVERITIES = ("debug", "info", "notice", "warning", "error", "critical")


def _bodies(records: int, base: int, token: str, now: dt.datetime, headers: dict) -> list[tuple[str, dict, bytes, int]]:
    out = []
    for b, first in enumerate(range(0, records, BATCH)):
        service = base + 1 + b % SERVERS
        batch = [{"id": f"{token}-{i}", "at": (now - dt.timedelta(seconds=records - i)).isoformat().replace("+00:00", "Z"),
                  "severity": SEVERITIES[i % 6], "source": SOURCES[i % 4],
                  "message": f"Sensor {i % 97} read {i % 1000} on port {i % 48}", "fields": {"port": i % 48}}
                 for i in range(first, min(first + BATCH, records))]
        out.append((f"/v1/services/{service}/logs", headers, msgspec.json.encode({"entries": batch}), len(batch)))
    return out


def _load(conn, service_id: int, count: int, now: dt.datetime) -> None:
    """``count`` entries for one service, over the 30 days before ``now``, in one statement."""
    postgres = conn.dialect.name == "postgresql"
    at = ("CAST(:now AS timestamptz) - n * interval '1 second' * (2592000.0 / :count)" if postgres
          else "strftime('%Y-%m-%d %H:%M:%f', :now_text, '-' || CAST(n * 2592000.0 / :count AS TEXT) || ' seconds')")
    severity = "CAST(n % 6 AS smallint)" if postgres else "n % 6"
    conn.execute(text(SERIES + f"""
        INSERT INTO infra_log (service_id, entry_id, at, severity, source, message, fields, received_at)
        SELECT :sid, 'bulk-' || CAST(n AS TEXT), {at}, {severity},
               CASE n % 4 WHEN 0 THEN 'hardware' WHEN 1 THEN 'network' WHEN 2 THEN 'ddos' ELSE 'intervention' END,
               'Sensor reading ' || CAST(n AS TEXT), NULL, :now FROM seq"""),
        dict(count=count, sid=service_id, now=now, now_text=now.replace(tzinfo=None).isoformat(" ")))


def run(records: int, sizes: list[int], database: str, *, clients: int = 4, requests: int = 300) -> list[dict]:
    import httpx

    from core.boot import build_runtime
    from core.clock import Clock
    from core.config import Settings

    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="univers-bench-logs-"))
    token = secrets.token_hex(4)
    try:
        with scratch_database(database) as (engine, server_url):
            rt = build_runtime(Settings(data_dir=work, database_url=server_url), Clock(), engine=engine)
            now, today = rt.clock.now(), rt.clock.today()
            t0 = time.perf_counter()
            with rt.engine.begin() as conn:
                base = insert_accounts(conn, rt, 2)  # base + 1: the customer; base + 2: staff
                conn.execute(text("UPDATE account SET is_staff = true, staff_role = 'administrator' WHERE id = :id"),
                             {"id": base + 2})
                insert_keys(conn, rt, base, 2, f"uk_bench_{token}_")
                first = conn.execute(text("SELECT coalesce(max(id), 0) FROM service")).scalar_one()
                insert_services(conn, rt, SERVERS + len(sizes), str(base + 1), today, plan_code=PLAN,
                                start=today - dt.timedelta(days=10), expires=today + dt.timedelta(days=21), ids_from=first)
                for k, size in enumerate(sizes):
                    _load(conn, first + SERVERS + 1 + k, size, now)
                analyze(conn, "account", "service", "api_key", "infra_log")
            build_s = time.perf_counter() - t0
            staff = {"Authorization": f"Bearer uk_bench_{token}_{base + 2}", "Content-Type": "application/json"}
            customer = {"Authorization": f"Bearer uk_bench_{token}_{base + 1}"}
            batches = _bodies(records, first, token, now, staff)
            with serving(server_url, work / f"server-{token}.log") as server:
                wall, accepted, latencies = post_all(server.base_url, batches, clients)
                if accepted != records:
                    raise RuntimeError(f"{accepted} entries accepted, {records} sent")
                latencies.sort()
                common = {"engine": rt.engine.dialect.name, "cpus": os.cpu_count(), "python": platform.python_version(),
                          "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
                out = [{"bench": "logs", "figure": "ingest", "entries": records, "entries_per_s": round(records / wall),
                        "seconds": round(wall, 2), "batch": BATCH, "clients": clients,
                        "p50_batch_ms": round(latencies[len(latencies) // 2] * 1000, 1),
                        "max_batch_ms": round(latencies[-1] * 1000, 1), **common}]
                pages = {"first_page": {"limit": 50}, "filtered_page": {"limit": 50, "severity": "error", "source": "hardware"}}
                timings: dict[str, dict[int, list[float]]] = {p: {s: [] for s in sizes} for p in pages}
                with httpx.Client(base_url=server.base_url, timeout=60, headers=customer) as client:
                    for r in range(requests + 20):  # the first 20 rounds warm up
                        for name, params in pages.items():
                            for k, size in enumerate(sizes):
                                t = time.perf_counter()
                                answer = client.get(f"/v1/services/{first + SERVERS + 1 + k}/logs", params=params)
                                elapsed = time.perf_counter() - t
                                if answer.status_code != 200 or len(answer.json()["entries"]) != 50:
                                    raise RuntimeError(f"GET logs: {answer.status_code} {answer.text[:300]}")
                                if r >= 20:
                                    timings[name][size].append(elapsed)
                for name, by_size in timings.items():
                    in_ns = {str(s): sorted(round(t * 1e9) for t in v) for s, v in by_size.items()}
                    p99 = {s: round(_percentile(v, 0.99), 2) for s, v in in_ns.items()}
                    p50 = {s: round(_percentile(v, 0.50), 2) for s, v in in_ns.items()}
                    out.append({"bench": "logs", "figure": name, "entries_per_service": sizes, "p50_ms": p50, "p99_ms": p99,
                                "p99_ratio": round(p99[str(sizes[-1])] / p99[str(sizes[0])], 3), "requests": requests,
                                "build_seconds": round(build_s, 2), **common})
                return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(records: int, sizes: list[int], database: str, output: str | None = "bench/results.jsonl", **options) -> int:
    report(run(records, sizes, database, **options), output)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), [int(n) for n in sys.argv[2].split(",")], sys.argv[3]))
