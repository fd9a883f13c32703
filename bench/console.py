"""``univers bench console --services 10000,1000000 --database URL [--requests K]``

The console's pages at two sizes side by side: each size loads N active services across 10,000
customers set-based (the layout of ``bench/api.py``: a page is always 50 services of a large
customer, whose list grows with N), adds a staff account, and starts the real server
(``python -m core.cli serve``) on it. Sessions are opened once through the sign-in form; then,
over one keep-alive connection per size, in interleaved rounds (one request of each page on each
size per round, the order flipped every round), after a warm-up:

* ``services_page``: ``GET /manager/``, the first page of a large customer's services, rendered;
* ``services_deep_page``: the same from a keyset cursor at that customer's last full page;
* ``service_page``: ``GET /manager/services/{id}``, a random service, with its history;
* ``backoffice_search``: ``GET /backoffice/?q=<handle>``, a customer found by handle;
* ``customer_360``: ``GET /backoffice/customers/{id}``, a large customer's services, invoices,
  balance and timeline;
* ``support_queue``: ``GET /backoffice/support``, the first page of the support queue, closest
  deadline first (one open ticket for every tenth service: 100,000 at 1M services);
* ``support_queue_deep``: the same from a keyset cursor halfway down its last deadline;
* ``staff_ticket``: ``GET /backoffice/tickets/{id}``, a random ticket as staff read it (its thread,
  its clocks replayed from its log).

Each page's p95 at each size, and the ratio of the large size's p95 to the small one's, go to
the results file (the bar: under 100 ms at 1M, flat from 10k)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import platform
import random
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench import report, scratch_database
from bench.api import CUSTOMERS, PAGE, _percentile, populate, serving
from bench.support import open_tickets

PAGES = ("services_page", "services_deep_page", "service_page", "backoffice_search", "customer_360", "support_queue",
         "support_queue_deep", "staff_ticket")
TICKET_EVERY, DEADLINES = 10, 8
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Site:
    """One loaded database, its server, and the sessions the pages are read with."""

    def __init__(self, services, engine, layout, server, client, staff_key, token, build_s):
        self.services, self.engine, self.layout, self.server, self.client = services, engine, layout, server, client
        self.staff_key, self.token, self.build_s = staff_key, token, build_s
        self.sessions: dict[str, str] = {}
        self.handles: dict[int, str] = {}
        self.deadlines: list[dt.datetime] = []

    def session(self, key: str) -> dict:
        """The cookie of a session signed in with this key, through the sign-in form (once per key)."""
        if key not in self.sessions:
            self.client.cookies.clear()
            form = self.client.get("/manager/sign-in")
            r = self.client.post("/manager/sign-in", data={"csrf": CSRF.search(form.text).group(1), "key": key, "next": ""})
            if r.status_code != 303:
                raise RuntimeError(f"sign-in: HTTP {r.status_code} {r.text[:300]}")
            self.sessions[key] = r.cookies["univers_session"]
            self.client.cookies.clear()
        return {"Cookie": f"univers_session={self.sessions[key]}"}


@contextlib.contextmanager
def serve_site(services: int, database: str, work: Path) -> Iterator[Site]:
    import httpx
    from sqlalchemy import select

    from core.boot import build_runtime
    from core.clock import Clock
    from core.config import Settings
    from core.customers.accounts import create_customer
    from core.models import Account
    from core.uow import unit_of_work

    token = secrets.token_hex(6)
    with scratch_database(database) as (engine, server_url):
        rt = build_runtime(Settings(data_dir=work, database_url=server_url), Clock(), engine=engine)
        t0 = time.perf_counter()
        with unit_of_work(rt) as conn:
            layout = populate(conn, rt, services, CUSTOMERS, rt.clock.today(), token)
            deadlines = add_tickets(conn, layout, rt.clock.now())
            _, staff_key = create_customer(conn, rt, {"subsidiary": "FR", "name": "Bench desk",
                                                      "email": "bench@univers.example"}, is_staff=True)
            acct = Account.__table__
            handles = dict(conn.execute(select(acct.c.id, acct.c.handle).where(
                acct.c.id.between(layout.account_base + 1, layout.account_base + 200))).all())
        build_s = time.perf_counter() - t0
        engine.dispose()
        with serving(server_url, work / f"server-{services}-{token}.log") as server, \
                httpx.Client(base_url=server.base_url, timeout=60) as client:
            site = Site(services, engine.dialect.name, layout, server, client, staff_key, token, build_s)
            site.handles, site.deadlines = handles, deadlines
            yield site


def add_tickets(conn, layout, now: dt.datetime) -> list[dt.datetime]:
    """One open ticket on every ``TICKET_EVERY``-th service (by its admin), its next deadline one of
    ``DEADLINES`` hours ahead, its opening in the log. Set-based; a ticket's id is its service's."""
    from sqlalchemy import text

    from bench.renewal import analyze

    deadlines = [now + dt.timedelta(hours=h + 1) for h in range(DEADLINES)]
    due = "CASE (s.id / :every) % {n} {whens} END".format(
        n=DEADLINES, whens=" ".join(f"WHEN {h} THEN :d{h}" for h in range(DEADLINES)))
    conn.execute(text(f"""
        INSERT INTO support_ticket (id, service_id, account_id, opened_by, universe, storefront, level_code, queue, category,
                                    subject, priority, status, due_at, next_check_at, alert_level, created_at, updated_at)
        SELECT s.id, s.id, s.admin_account_id, s.admin_account_id, 'baremetal', s.subsidiary, 'support-baremetal-l1',
               'support', 'technical', 'The server does not answer', 'normal', 'open', {due}, {due}, 0, :now, :now
        FROM service s WHERE s.id > :base AND s.id % :every = 0"""),
                 dict(base=layout.service_base, every=TICKET_EVERY, now=now, **{f"d{h}": d for h, d in enumerate(deadlines)}))
    open_tickets(conn)
    analyze(conn, "support_ticket", "support_ticket_event")
    return deadlines


class Pages:
    def __init__(self, site: Site, seed: int):
        self.s, self.rnd = site, random.Random(seed)

    def _customer(self, account_id: int) -> dict:
        return self.s.session(f"uk_bench_{self.s.token}_{account_id}")

    def _large(self) -> int:
        return self.s.layout.account_base + self.rnd.randint(1, min(self.s.layout.large, 20))

    def services_page(self):
        return self.s.client.get("/manager/", headers=self._customer(self._large()))

    def services_deep_page(self):
        j = self.rnd.randint(1, min(self.s.layout.large, 20))
        k = max(1, self.s.layout.large_count(j) - PAGE)
        after = self.s.layout.large_service_id(j, k)
        return self.s.client.get(f"/manager/?after={after}", headers=self._customer(self.s.layout.account_base + j))

    def service_page(self):
        n = self.rnd.randint(1, self.s.layout.services)
        owner = self.s.layout.owner(n)
        if owner > self.s.layout.account_base + 200:  # sessions of the first 200 customers only: sign-in is not timed
            j = self.rnd.randint(1, min(self.s.layout.large, 20))
            n, owner = self.s.layout.large_service_id(j, 1) - self.s.layout.service_base, self.s.layout.account_base + j
        return self.s.client.get(f"/manager/services/{self.s.layout.service_base + n}", headers=self._customer(owner))

    def backoffice_search(self):
        account = self.rnd.choice(list(self.s.handles))
        return self.s.client.get("/backoffice/", params={"q": self.s.handles[account]}, headers=self.s.session(self.s.staff_key))

    def customer_360(self):
        return self.s.client.get(f"/backoffice/customers/{self._large()}", headers=self.s.session(self.s.staff_key))


    def support_queue(self):
        return self.s.client.get("/backoffice/support", headers=self.s.session(self.s.staff_key))

    def _tickets(self) -> tuple[int, int]:
        """The range of n whose service n·TICKET_EVERY has a ticket (its id)."""
        base = self.s.layout.service_base
        return base // TICKET_EVERY + 1, (base + self.s.layout.services) // TICKET_EVERY

    def support_queue_deep(self):
        lo, hi = self._tickets()  # halfway down the last deadline's tickets: those with n % DEADLINES = DEADLINES - 1
        middle = (lo + hi) // 2
        n = middle - middle % DEADLINES + DEADLINES - 1
        cursor = f"{self.s.deadlines[-1].isoformat()}|{TICKET_EVERY * n}"
        r = self.s.client.get("/backoffice/support", params={"cursor": cursor}, headers=self.s.session(self.s.staff_key))
        if r.status_code == 200 and r.text.count("/backoffice/tickets/") < 50:  # a full page, not an empty one
            raise RuntimeError(f"support_queue_deep: the page after {cursor} is nearly empty")
        return r

    def staff_ticket(self):
        return self.s.client.get(f"/backoffice/tickets/{TICKET_EVERY * self.rnd.randint(*self._tickets())}",
                                 headers=self.s.session(self.s.staff_key))


def measure(sites: list[Site], requests: int, warmup: int, seed: int = 1) -> list[dict]:
    pages = [Pages(s, seed) for s in sites]
    samples = [{name: [] for name in PAGES} for _ in sites]
    for round_no in range(warmup + requests):
        for name in PAGES:
            order = range(len(sites)) if round_no % 2 == 0 else reversed(range(len(sites)))
            for i in order:
                t0 = time.perf_counter_ns()
                r = getattr(pages[i], name)()
                elapsed = time.perf_counter_ns() - t0
                if r.status_code != 200 or "text/html" not in r.headers.get("content-type", ""):
                    raise RuntimeError(f"{name}: HTTP {r.status_code} {r.text[:300]}")
                if round_no >= warmup:
                    samples[i][name].append(elapsed)
    out = []
    for per_site in samples:
        figures = {}
        for name, values in per_site.items():
            values.sort()
            figures[name] = {"p50_ms": round(_percentile(values, 0.50), 2), "p95_ms": round(_percentile(values, 0.95), 2)}
        out.append(figures)
    return out


def main(services: list[int], database: str, output: str | None = "bench/results.jsonl", *, requests: int = 300) -> int:
    sizes = sorted(services)
    if len(sizes) != 2 or sizes[0] == sizes[1]:
        raise SystemExit("bench console measures two sizes side by side, e.g. --services 10000,1000000")
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="univers-bench-console-"))
    try:
        with contextlib.ExitStack() as stack:
            sites = [stack.enter_context(serve_site(n, database, work)) for n in sizes]
            small, large = measure(sites, requests, max(20, requests // 10))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    results = [{"bench": "console", "engine": sites[0].engine, "page": name, "services": sizes,
                "p50_ms": {str(sizes[0]): small[name]["p50_ms"], str(sizes[1]): large[name]["p50_ms"]},
                "p95_ms": {str(sizes[0]): small[name]["p95_ms"], str(sizes[1]): large[name]["p95_ms"]},
                "p95_ratio": round(large[name]["p95_ms"] / small[name]["p95_ms"], 3), "requests": requests,
                "build_seconds": [round(s.build_s, 1) for s in sites], "cpus": os.cpu_count(),
                "python": platform.python_version(), "at": at} for name in PAGES]
    report(results, output)
    return 0


if __name__ == "__main__":
    sys.exit(main([int(n) for n in sys.argv[1].split(",")], sys.argv[2]))
