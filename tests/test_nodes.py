"""Issue 22: several nodes on one PostgreSQL. Two ``univers serve`` processes on two ports take
the customers' sign-ups, orders and usage; two scheduler processes then run the daily jobs
(renewal and dunning, the monthly usage run, the queues: provisioning, charges, mail) for a
simulated month, both at once each day, on the same database.

What must hold: every service billed once per period, the usage month invoiced once, each
gateway charge made once, each notification mailed once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from bench.api import Server
from core import sim
from core.models import Invoice, InvoiceLine, Notification, RenewalRun, Service
from tests.conftest import Inbox

ROOT = Path(__file__).resolve().parents[1]
svc, inv, line, note, runs = (Service.__table__, Invoice.__table__, InvoiceLine.__table__, Notification.__table__,
                              RenewalRun.__table__)

# A scheduler on simulated time: each line on stdin is a day; it runs that day's jobs as the
# scheduler does (renewal and dunning, the monthly usage run, the queues) and answers one line.
SCHEDULER = """
import json, sys
from core.boot import build_runtime
from core.clock import FrozenClock
from core.config import Settings
from core.renewal.run import run_renewal
from core.scheduler import run_queues
from core.usage.metering import run_usage_billing

clock = FrozenClock("2000-01-01")
rt = build_runtime(Settings.from_env(), clock)
print("ready", flush=True)
for day in sys.stdin:
    clock.set(day.strip())
    renewal = run_renewal(rt)
    usage = run_usage_billing(rt)
    queues = run_queues(rt)
    print(json.dumps({"day": day.strip(), "renewed": renewal.services, "usage_projects": usage.projects,
                      **{k: vars(v) for k, v in queues.items()}}), flush=True)
"""


def _scheduler(url: str, env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SCHEDULER], cwd=ROOT, env={**os.environ, **env, "UNIVERS_DATABASE_URL": url},
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(log, "wb"), text=True)  # noqa: SIM115


def test_two_servers_and_two_schedulers_on_one_postgresql_bill_and_mail_everything_once(rt, database_url, engine_name,
                                                                                         tmp_path):
    if engine_name != "postgresql":
        pytest.skip("several nodes share one PostgreSQL; SQLite is one process's database")
    url, schema = database_url
    node_url = url + f"?options=-csearch_path%3D{schema}"
    inbox = Inbox()
    env = {"UNIVERS_SMTP_URL": inbox.start(), "UNIVERS_SIM_PATH": rt.settings.sim_path, "UNIVERS_SCHEDULER": "0",
           "UNIVERS_DATA_DIR": str(tmp_path)}
    os.environ.update({"UNIVERS_SIM_PATH": rt.settings.sim_path, "UNIVERS_SMTP_URL": env["UNIVERS_SMTP_URL"]})
    servers, schedulers = [], []
    try:
        servers = [Server(node_url, tmp_path / f"serve-{i}.log") for i in (1, 2)]
        schedulers = [_scheduler(node_url, env, tmp_path / f"scheduler-{i}.log") for i in (1, 2)]
        clients = [httpx.Client(base_url=s.base_url, timeout=60) for s in servers]
        for server, client in zip(servers, clients):
            server.wait_ready(client)
        today = _customers(clients)
        for proc in schedulers:
            assert proc.stdout.readline().strip() == "ready", (tmp_path / "scheduler-1.log").read_text()[-2000:]
        # a month and a day: weekly while nothing is due, then daily over the renewals (a week
        # ahead of the expiry, a month after the order) and the month's end (the usage run)
        days = [today + dt.timedelta(days=n) for n in (1, 8, 15, 22, *range(23, 33))]
        answers = []
        for day in days:
            for proc in schedulers:  # both at once
                proc.stdin.write(day.isoformat() + "\n")
                proc.stdin.flush()
            for proc in schedulers:
                answer = proc.stdout.readline()
                assert answer, next(tmp_path.glob("scheduler-*.log")).read_text()[-3000:]
                answers.append(json.loads(answer))
        for client in clients:
            client.close()
    finally:
        for proc in schedulers:
            if proc.poll() is None:
                proc.stdin.close()
                proc.wait(timeout=30)
        for server in servers:
            server.stop()
        os.environ.pop("UNIVERS_SIM_PATH", None)
        os.environ.pop("UNIVERS_SMTP_URL", None)
        inbox.controller.stop()

    with rt.engine.connect() as conn:
        periods = Counter(conn.execute(select(line.c.service_id, line.c.kind, line.c.period_start)).all())
        recurring = Counter(conn.execute(select(line.c.service_id).where(line.c.kind == "recurring")).scalars())
        hosting = conn.execute(select(svc.c.id, svc.c.state).where(svc.c.plan_code == "web-hosting-starter-p1m")).all()
        usage_invoices = conn.execute(select(func.count()).where(inv.c.kind == "usage")).scalar_one()
        mails = dict(conn.execute(select(note.c.status, func.count()).group_by(note.c.status)).all())
        run_days = Counter(conn.execute(select(runs.c.run_on).where(runs.c.status == "done")).scalars())
    assert all(n == 1 for n in periods.values()), [k for k, n in periods.items() if n > 1]
    # every hosting service: its first month and its renewal, once each (the declined card's too, unpaid)
    assert len(hosting) == 6 and all(recurring[sid] == 2 for sid, _state in hosting), (hosting, recurring)
    assert usage_invoices == 1  # the project's month, once
    assert run_days == Counter({d: 2 for d in days})  # both schedulers ran every day
    gateway = Counter(key.split(":")[0] for key, *_ in sim.charges(rt.settings) if ":" in key)
    assert all(calls == 1 for *_, calls in sim.charges(rt.settings)), sim.charges(rt.settings)  # each charge made once
    assert gateway["renewal"] == 3  # the card customers' renewals, the declined one included
    assert set(mails) == {"sent"}, mails
    ids = [m["Message-ID"] for m in inbox.messages]
    assert len(ids) == len(set(ids)) == mails["sent"] > 0
    assert "payment_failed" in inbox.kinds()  # the declined card's dunning
    shares = Counter((a["day"], a["charges"]["succeeded"] + a["charges"]["failed"]) for a in answers)
    assert shares  # (the work's split between the two is left to the locks)


def _customers(clients: list[httpx.Client]) -> dt.date:
    """Sign-ups and orders through both servers: three customers paying from their balance,
    two by card, one whose card declines at renewal, one pay-as-you-go project with usage.
    Returns the day the servers sold on."""
    made = []

    def signup(client, name, subsidiary="FR"):
        r = client.post("/v1/customers", json={"subsidiary": subsidiary, "kind": "company", "name": name,
                                               "email": "ops@example.com"})
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['api_key']}"}

    def order(client, headers, plan, payment, key):
        body = {"items": [{"plan": plan}], "payment": payment}
        r = client.post("/v1/orders/dry-run", json={**body, "accept": []}, headers=headers)
        body["accept"] = [c["content_hash"] for c in r.json()["contracts"]]
        r = client.post("/v1/orders", json=body, headers={**headers, "Idempotency-Key": key})
        assert r.status_code == 201, r.text
        return r.json()

    for i in range(3):
        client = clients[i % 2]
        headers = signup(client, f"Balance {i}")
        r = client.post("/v1/me/balance/top-ups", json={"amount": "100.00", "outcome": "success"}, headers=headers)
        assert r.status_code == 201, r.text
        made.append(order(client, headers, "web-hosting-starter-p1m", {"method": "balance"}, f"b{i}"))
    for i, outcome in enumerate(("success", "success", "decline")):
        client = clients[i % 2]
        headers = signup(client, f"Card {i}")
        made.append(order(client, headers, "web-hosting-starter-p1m", {"method": "test", "outcome": "success"}, f"c{i}"))
        r = client.put("/v1/me/payment-method", json={"method": "test", "outcome": outcome}, headers=headers)
        assert r.status_code == 200, r.text
    headers = signup(clients[1], "Cloud")
    project = order(clients[1], headers, "pci-project-p1m", {"method": "balance"}, "p")["services"][0]["id"]
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
    records = [{"id": f"u{h}", "project": project, "metric": "instance_hours", "dimension": "b3-8", "quantity": "1",
                "at": (now - dt.timedelta(hours=h)).isoformat().replace("+00:00", "Z")} for h in range(24)]
    for client in clients:  # the same records through both: counted once
        r = client.post("/v1/usage", json={"records": records}, headers=headers)
        assert r.status_code == 200 and not r.json()["rejected"], r.text
    return dt.date.fromisoformat(made[0]["created_at"][:10])
