"""The seven end-to-end scenarios of the spine, through the HTTP API with an injected clock.
Each runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time

from sqlalchemy import func, select, text

from core import sim
from core.lifecycle.outbox import run_outbox
from core.models import AuditEvent, Invoice, InvoiceLine, OutboxItem, Payment, Service
from core.renewal.run import run_renewal

D = dt.date


def test_monthly_server_renews_four_times_then_stops_at_expiry(shop, clock):
    acme = shop.signup("FR", "company", top_up="1000.00", vat_number="FR40303265045")
    order = shop.order(acme, "bm-rise-1-p1m")
    assert order["status"] == "paid"
    assert order["invoice"]["number"] == "FR-2026-000001"
    assert order["invoice"]["status"] == "paid"
    shop.deliver()
    server = shop.service(acme, order["services"][0]["id"])
    assert server["state"] == "active" and server["resource"].startswith("ns")
    assert server["expires_on"] == "2026-02-05"

    shop.days(D(2026, 5, 10))  # four monthly expiries pass: Feb 5, Mar 5, Apr 5, May 5
    invoices = shop.invoices(acme)
    renewals = [i for i in invoices if i["kind"] == "renewal"]
    assert len(renewals) == 4
    assert [i["number"] for i in invoices] == [f"FR-2026-{n:06d}" for n in range(1, 6)]
    assert all(i["status"] == "paid" for i in renewals)
    assert [i["lines"][0]["period_start"] for i in renewals] == ["2026-02-05", "2026-03-05", "2026-04-05", "2026-05-05"]
    vat = renewals[0]["taxes"][0]
    assert vat["rate"] == "20" and renewals[0]["total"]["amount_minor"] == renewals[0]["net"]["amount_minor"] + vat["tax"]["amount_minor"]
    server = shop.service(acme, server["id"])
    assert server["state"] == "active" and server["expires_on"] == "2026-06-05"

    r = shop.client.post(f"/v1/services/{server['id']}/stop", headers=acme["headers"])
    assert r.status_code == 200 and r.json()["ends_on"] == "2026-06-05"
    shop.days(D(2026, 6, 20))
    server = shop.service(acme, server["id"])
    assert server["state"] == "terminated"
    assert len(shop.invoices(acme)) == 5  # no further invoice
    with shop.rt.engine.connect() as conn:
        ended = conn.execute(select(AuditEvent.__table__.c.at).where(
            AuditEvent.__table__.c.entity_id == server["id"], AuditEvent.__table__.c.action == "service.ended")).scalar_one()
    assert ended.date() == D(2026, 6, 5)


def _declined_renewal(shop):
    """A server paid at order; its renewals are charged to a card the test gateway declines."""
    bob = shop.signup("FR", "person", name="Bob Martin")
    order = shop.order(bob, "bm-ks-1-p1m", payment={"method": "test", "outcome": "success"})
    shop.deliver()
    r = shop.client.put("/v1/me/payment-method", json={"method": "test", "outcome": "decline"}, headers=bob["headers"])
    assert r.status_code == 200, r.text
    service_id = order["services"][0]["id"]
    shop.days(D(2026, 2, 4))
    renewal = [i for i in shop.invoices(bob) if i["kind"] == "renewal"][0]
    assert renewal["status"] == "issued" and renewal["payments"][0]["status"] == "failed"
    shop.days(D(2026, 2, 10))  # expiry (Feb 5), then the baremetal ladder's retries at D+1, D+3 and D+5
    assert shop.service(bob, service_id)["state"] == "active"
    shop.days(D(2026, 2, 11))  # suspension at expiry + 6 days
    assert shop.service(bob, service_id)["state"] == "suspended"
    return bob, service_id, renewal


def test_declined_renewal_suspends_at_expiry_and_late_payment_reactivates(shop):
    bob, service_id, renewal = _declined_renewal(shop)
    assert [r[3] for r in sim.resources(shop.rt.settings, service_id)] == ["provision", "suspend"]
    shop.days(D(2026, 2, 15))  # ten days later the customer pays
    r = shop.client.post(f"/v1/invoices/{renewal['id']}/payments", json={"method": "test", "outcome": "success"},
                         headers=bob["headers"])
    assert r.status_code == 201 and r.json()["status"] == "succeeded", r.text
    service = shop.service(bob, service_id)
    assert service["state"] == "active"
    # the paid month (Feb 5 - Mar 5) is served in full: the four suspended days are added back
    assert service["expires_on"] == "2026-03-09"
    shop.deliver()
    assert [r[3] for r in sim.resources(shop.rt.settings, service_id)] == ["provision", "suspend", "resume"]
    shop.days(D(2026, 3, 20))
    assert shop.service(bob, service_id)["state"] == "suspended"  # next renewal declined too: suspended again


def test_no_payment_terminates_after_grace_period(shop):
    bob, service_id, _ = _declined_renewal(shop)
    grace = shop.rt.ladder("baremetal").terminate_after
    shop.days(D(2026, 2, 11) + dt.timedelta(days=grace - 1))
    assert shop.service(bob, service_id)["state"] == "suspended"
    shop.days(D(2026, 2, 11) + dt.timedelta(days=grace))
    assert shop.service(bob, service_id)["state"] == "terminated"


def test_pending_payment_blocks_termination_until_it_succeeds(shop):
    bob, service_id, renewal = _declined_renewal(shop)
    staff = shop.staff()
    shop.days(D(2026, 2, 15))
    r = shop.client.post(f"/v1/invoices/{renewal['id']}/payments", json={"method": "test", "outcome": "pending"},
                         headers=bob["headers"])
    assert r.status_code == 201 and r.json()["status"] == "pending"
    ref = r.json()["gateway_ref"]
    shop.days(D(2026, 3, 8))  # three weeks pending, far past the grace period
    assert shop.service(bob, service_id)["state"] == "suspended"
    r = shop.client.post(f"/v1/test-gateway/payments/{ref}/resolve", json={"outcome": "succeeded"}, headers=staff)
    assert r.status_code == 200 and r.json()["status"] == "succeeded", r.text
    service = shop.service(bob, service_id)
    assert service["state"] == "active"
    assert service["expires_on"] == "2026-03-30"  # Mar 5 (the paid month) + 25 suspended days
    # the callback arriving again changes nothing
    again = shop.client.post(f"/v1/test-gateway/payments/{ref}/resolve", json={"outcome": "succeeded"}, headers=staff)
    assert again.status_code == 200
    assert shop.service(bob, service_id)["expires_on"] == "2026-03-30"


def test_same_order_twice_with_one_key_is_one_order_and_one_charge(shop):
    acme = shop.signup("DE", "company", name="Muster GmbH", top_up="500.00")
    first = shop.order(acme, "web-hosting-pro-p1m", key="same-key")
    second = shop.order(acme, "web-hosting-pro-p1m", key="same-key", expect=200)
    assert first["id"] == second["id"]
    assert shop.count(Payment) == 2  # the top-up and one charge
    assert shop.count(Service) == 1
    me = shop.client.get("/v1/me", headers=acme["headers"]).json()
    assert me["balance"]["amount_minor"] == 50000 - first["total"]["amount_minor"]
    other = shop.client.post("/v1/orders", json={"items": [{"plan": "web-hosting-starter-p1m"}]},
                             headers={**acme["headers"], "Idempotency-Key": "same-key"})
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"


def test_provisioning_worker_killed_after_commit_delivers_once(shop, rt, clock, database_url):
    acme = shop.signup("FR", top_up="500.00")
    order = shop.order(acme, "bm-ks-1-p1m")
    service_id = order["services"][0]["id"]
    url, schema = database_url
    env = {**os.environ, "UNIVERS_DATABASE_URL": url + (f"?options=-csearch_path%3D{schema}" if schema else ""),
           "UNIVERS_DATA_DIR": str(rt.settings.data_dir), "UNIVERS_SIM_DELAY": "60", "UNIVERS_SIM_PATH": rt.settings.sim_path}
    worker = subprocess.Popen([sys.executable, "-m", "core.cli", "outbox"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    box = OutboxItem.__table__
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with rt.engine.connect() as conn:
                if conn.execute(select(box.c.attempts).where(box.c.service_id == service_id)).scalar() == 1:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError("the worker never claimed the item")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    assert shop.service(acme, service_id)["state"] == "pending"
    clock.set(dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=rt.settings.outbox_lease_seconds + 1))
    run_outbox(rt)
    run_outbox(rt)
    assert shop.service(acme, service_id)["state"] == "active"
    with rt.engine.connect() as conn:
        row = conn.execute(select(box.c.status, box.c.attempts).where(box.c.service_id == service_id)).one()
        delivered = conn.execute(select(func.count()).where(
            AuditEvent.__table__.c.entity_id == service_id, AuditEvent.__table__.c.action == "service.delivered")).scalar()
    assert tuple(row) == ("done", 2)
    assert delivered == 1
    assert len(sim.resources(rt.settings, service_id)) == 1


def test_two_renewal_runs_at_once_bill_each_service_once(rt, clock):
    from bench.renewal import populate
    from core.uow import unit_of_work

    today = D(2026, 3, 1)
    clock.set(today)
    with unit_of_work(rt) as conn:
        populate(conn, rt, 600, today, per_account=3)
    rt.settings = rt.settings.with_(renewal_chunk=7)
    results, errors = [], []

    def worker():
        try:
            results.append(run_renewal(rt, today, dunning=False))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sum(r.services for r in results) == 600
    with rt.engine.connect() as conn:
        per_service = conn.execute(text(
            "SELECT service_id, count(*) FROM invoice_line GROUP BY service_id HAVING count(*) <> 1")).all()
        seqs = conn.execute(select(Invoice.__table__.c.seq).order_by(Invoice.__table__.c.seq)).scalars().all()
        unpaid = conn.execute(select(func.count()).where(Invoice.__table__.c.status != "paid")).scalar()
        lines = conn.execute(select(func.count()).select_from(InvoiceLine.__table__)).scalar()
    assert per_service == [] and lines == 600
    assert seqs == list(range(1, 201))  # one invoice per account, numbered without gap
    assert unpaid == 0
    assert run_renewal(rt, today, dunning=False).services == 0  # and a third run finds nothing to do
