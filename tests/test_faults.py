"""Issue 22: the fault drills. Each breaks one piece of the infrastructure the way it breaks in
production and checks what an accountant and a customer would check afterwards.

* a worker process killed (``kill -9``) while it holds the lease of the provisioning outbox, of
  the charge queue or of the mail queue: the lease runs out, another process takes the work,
  and nothing is done twice (one resource, one charge applied, one mail per notification);
* the SMTP server down for an hour: the mail waits, and goes once when the server is back;
* the gateway answering in 5 s, beyond the charge timeout, for a whole run: the run is not
  held, the charges wait and are retried later with the same idempotency key, charged once;
* the SQLite database full: a clear error with a stable code (API and CLI), nothing half-written.

Every drill runs on SQLite and on PostgreSQL (the disk-full one on SQLite only), with the
injected clock; each takes a few seconds.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import event, func, inspect, select

from core import sim
from core.lifecycle.outbox import run_outbox
from core.models import Account, AuditEvent, BalanceEntry, Invoice, Notification, OutboxItem, Payment, Service
from core.notify.send import run_mailer
from core.payments.charges import run_charges
from bench.renewal import populate
from core.renewal.run import run_renewal
from core.uow import unit_of_work
from tests.conftest import Inbox

ROOT = Path(__file__).resolve().parents[1]
D = dt.date
RENEW_ON = D(2026, 1, 29)  # a month of web hosting ordered on Jan 5 in Germany renews (a week ahead) today
box, pay, note = OutboxItem.__table__, Payment.__table__, Notification.__table__
inv, ledger, svc = Invoice.__table__, BalanceEntry.__table__, Service.__table__
audit, acct = AuditEvent.__table__, Account.__table__

# One queue's worker, as the scheduler's job runs it, in a process of its own on the test's
# database and the test's time (the clock is frozen at argv[2]).
WORKER = """
import sys
from core.boot import build_runtime
from core.clock import FrozenClock
from core.config import Settings
from core.db import make_engine
from core.lifecycle.outbox import run_outbox
from core.notify.send import run_mailer
from core.payments.charges import run_charges

queue, at, url, schema = sys.argv[1:]
rt = build_runtime(Settings.from_env(), FrozenClock(at), engine=make_engine(url, search_path=schema or None))
print("working", flush=True)
print({"outbox": run_outbox, "charges": run_charges, "mail": run_mailer}[queue](rt), flush=True)
"""


# --- helpers ----------------------------------------------------------------------------------

def _card_customers(shop, n: int, outcome: str, before_renewal=lambda: None) -> list[dict]:
    """n customers of a month of web hosting paid by card; the card now answers ``outcome``;
    (``before_renewal()``, then) the renewal run of RENEW_ON has queued one gateway charge each."""
    customers = []
    for i in range(n):
        customer = shop.signup("DE", "company", name=f"Muster {i} GmbH")
        shop.order(customer, "web-hosting-pro-p1m", payment={"method": "test", "outcome": "success"})
        r = shop.client.put("/v1/me/payment-method", json={"method": "test", "outcome": outcome}, headers=customer["headers"])
        assert r.status_code == 200, r.text
        customers.append(customer)
    shop.deliver()
    shop.clock.set(RENEW_ON)
    before_renewal()
    assert run_renewal(shop.rt, RENEW_ON).invoices == n
    return customers


def _queued_charges(rt) -> list[dict]:
    with rt.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(pay).where(pay.c.purpose == "invoice", pay.c.idempotency_key.is_not(None))
                                              .order_by(pay.c.id)).mappings()]


def _gateway(rt) -> dict[str, tuple[str, int]]:
    """The gateway's books for the renewal charges: key -> (status, calls). (The first months
    were paid by card at the order, under keys of their own.)"""
    return {key: (status, calls) for key, _ref, status, _amount, _cur, calls in sim.charges(rt.settings)
            if key.startswith("renewal:")}


def _applied_once(rt, charges: list[dict]) -> None:
    """Each charge's answer was applied once: one ``payment.succeeded`` event, its invoice paid,
    and no money of it credited to the balance (a second application would credit an overpayment)."""
    ids = [c["id"] for c in charges]
    with rt.engine.connect() as conn:
        events = Counter(conn.execute(select(audit.c.entity_id).where(
            audit.c.entity == "payment", audit.c.entity_id.in_(ids), audit.c.action == "payment.succeeded")).scalars())
        paid = Counter(conn.execute(select(inv.c.status).where(inv.c.id.in_([c["invoice_id"] for c in charges]))).scalars())
        credited = conn.execute(select(func.count()).select_from(ledger).where(ledger.c.payment_id.in_(ids))).scalar_one()
        balances = conn.execute(select(func.sum(acct.c.balance_minor))).scalar_one()
    assert events == Counter({i: 1 for i in ids})
    assert paid == Counter(paid=len(charges))
    assert (credited, balances) == (0, 0)


def _leased(rt, table) -> int:
    with rt.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(
            table.c.locked_until > rt.clock.now(), table.c.status.in_(("pending", "queued")))).scalar_one()


def _start_worker(rt, database_url, tmp_path, queue: str, **env) -> tuple[subprocess.Popen, object]:
    url, schema = database_url
    environ = {**os.environ, "UNIVERS_DATA_DIR": str(rt.settings.data_dir), "UNIVERS_SIM_PATH": rt.settings.sim_path,
               "UNIVERS_DATABASE_URL": url, "UNIVERS_SCHEDULER": "0", **{f"UNIVERS_{k.upper()}": str(v) for k, v in env.items()}}
    log = open(tmp_path / f"{queue}-worker.log", "w+b")  # noqa: SIM115 - closed by the caller
    proc = subprocess.Popen([sys.executable, "-c", WORKER, queue, rt.clock.now().isoformat(), url, schema or ""],
                            env=environ, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    return proc, log


def _kill_once_leased(rt, proc, log, table, expected: int, also=lambda: True) -> None:
    """Wait until the worker holds the lease of ``expected`` rows (and ``also()``), then kill -9 it."""
    try:
        deadline = time.monotonic() + 25
        while proc.poll() is None and time.monotonic() < deadline:
            if _leased(rt, table) >= expected and also():
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        log.flush()
        log.seek(0)
        output = log.read().decode(errors="replace")[-3000:]
        log.close()
    assert proc.returncode == -signal.SIGKILL, f"the worker ended on its own (rc {proc.returncode}):\n{output}"
    assert _leased(rt, table) == expected, output


def _past_the_lease(rt) -> None:
    rt.clock.advance(seconds=rt.settings.outbox_lease_seconds + 1)


# --- 1. a worker killed while it holds a lease ---------------------------------------------------

def test_a_provisioning_worker_killed_mid_call_leaves_its_item_to_the_next_after_the_lease(shop, rt, database_url, tmp_path):
    customer = shop.signup(top_up="100.00")
    order = shop.order(customer, "web-hosting-pro-p1m")
    sid = order["services"][0]["id"]
    proc, log = _start_worker(rt, database_url, tmp_path, "outbox", sim_delay=60)  # the infrastructure hangs
    _kill_once_leased(rt, proc, log, box, 1)
    assert sim.resources(rt.settings) == []  # killed before the infrastructure acted
    assert run_outbox(rt).done == 0  # the lease holds: nobody takes the item meanwhile
    _past_the_lease(rt)
    assert run_outbox(rt).done == 1
    assert [r[2] for r in sim.resources(rt.settings)] == [sid]  # provisioned once
    assert shop.service(customer, sid)["state"] == "active"
    assert run_outbox(rt).done == 0


def test_a_charge_worker_killed_waiting_for_the_gateway_leaves_its_charges_to_the_next_charged_once(
        shop, rt, database_url, tmp_path):
    _card_customers(shop, 3, "success")
    charges = _queued_charges(rt)
    assert [c["status"] for c in charges] == ["queued"] * 3
    proc, log = _start_worker(rt, database_url, tmp_path, "charges", sim_gateway_delay=60, gateway_timeout=120)
    # killed after the gateway took the three charges, before their answers were recorded
    _kill_once_leased(rt, proc, log, pay, 3, also=lambda: len(_gateway(rt)) == 3)
    assert run_charges(rt).succeeded == 0  # the lease holds
    _past_the_lease(rt)
    assert run_charges(rt).succeeded == 3
    after = _queued_charges(rt)
    assert [(c["idempotency_key"], c["status"]) for c in after] == [(c["idempotency_key"], "succeeded") for c in charges]
    gateway = _gateway(rt)
    assert gateway == {c["idempotency_key"]: ("succeeded", 2) for c in charges}  # asked twice, charged once
    _applied_once(rt, charges)


def test_a_mail_worker_killed_while_the_server_stalls_leaves_its_mail_to_the_next_sent_once(shop, rt, database_url, tmp_path):
    _card_customers(shop, 2, "decline")
    assert run_charges(rt).failed == 2  # two "payment failed" mails to send
    with rt.engine.connect() as conn:
        waiting = conn.execute(select(func.count()).where(note.c.status == "pending")).scalar_one()
    assert waiting >= 2
    with socket.socket() as stall:  # a server that takes the connection and never says hello
        stall.bind(("127.0.0.1", 0))
        stall.listen(8)
        proc, log = _start_worker(rt, database_url, tmp_path, "mail", smtp_url=f"smtp://127.0.0.1:{stall.getsockname()[1]}")
        _kill_once_leased(rt, proc, log, note, waiting)
    inbox = Inbox()
    rt.settings = rt.settings.with_(smtp_url=inbox.start())
    try:
        assert run_mailer(rt).sent == 0  # the lease holds
        _past_the_lease(rt)
        assert run_mailer(rt).sent == waiting
        assert run_mailer(rt).sent == 0
    finally:
        inbox.controller.stop()
    ids = [m["Message-ID"] for m in inbox.messages]
    assert len(ids) == len(set(ids)) == waiting
    assert Counter(inbox.kinds())["payment_failed"] == 2


# --- 2. the SMTP server down for an hour --------------------------------------------------------

def test_mail_waits_while_the_smtp_server_is_down_for_an_hour_and_goes_once_when_it_is_back(shop, rt):
    _card_customers(shop, 2, "decline")
    run_charges(rt)
    with rt.engine.connect() as conn:
        waiting = conn.execute(select(func.count()).where(note.c.status == "pending")).scalar_one()
    inbox = Inbox()  # its port, free, nobody listening yet: connections are refused
    rt.settings = rt.settings.with_(smtp_url=f"smtp://127.0.0.1:{inbox.port}")
    back = rt.clock.now() + dt.timedelta(hours=1)
    tries = 0
    while rt.clock.now() < back:  # the mail job every five minutes
        stats = run_mailer(rt)
        assert (stats.sent, stats.parked) == (0, 0)
        tries += stats.retried > 0
        rt.clock.advance(minutes=5)
    assert tries >= 5  # it kept trying
    with rt.engine.connect() as conn:
        assert conn.execute(select(note.c.status, func.count()).group_by(note.c.status)).all() == [("pending", waiting)]
    inbox.start()
    try:
        sent = 0
        for _ in range(13):  # the next hour: every message goes at its next try, once
            sent += run_mailer(rt).sent
            rt.clock.advance(minutes=5)
        assert sent == waiting
    finally:
        inbox.controller.stop()
    assert len(inbox.messages) == waiting
    assert len({m["Message-ID"] for m in inbox.messages}) == waiting
    with rt.engine.connect() as conn:
        assert conn.execute(select(note.c.status, func.count()).group_by(note.c.status)).all() == [("sent", waiting)]


# --- 3. the gateway answering in 5 s for a whole run ---------------------------------------------

def test_a_gateway_slower_than_the_timeout_holds_no_run_and_its_charges_are_retried_with_the_same_key(shop, rt):
    customers = 6
    started = time.monotonic()

    def slow_gateway():
        rt.settings = rt.settings.with_(sim_gateway_delay=5.0, gateway_timeout=0.2, gateway_concurrency=3)

    _card_customers(shop, customers, "success", slow_gateway)  # the renewal run queues the charges, never waits on them
    t0 = time.monotonic()
    stats = run_charges(rt)
    took = time.monotonic() - t0
    assert (stats.retried, stats.succeeded, stats.failed) == (customers, 0, 0)
    assert took < 2.0, f"{took:.1f} s: the run waited for the slow gateway"  # two rounds of 0.2 s, not 6 x 5 s
    charges = _queued_charges(rt)
    assert all(c["status"] == "queued" and c["failure_code"] == "gateway_unavailable" for c in charges)
    assert run_charges(rt).retried == 0  # not before its time
    rt.settings = rt.settings.with_(sim_gateway_delay=0.0)  # the gateway recovers
    rt.clock.advance(seconds=11)
    assert run_charges(rt).succeeded == customers
    after = _queued_charges(rt)
    assert [(c["id"], c["idempotency_key"], c["status"]) for c in after] == [
        (c["id"], c["idempotency_key"], "succeeded") for c in charges]  # the same attempts, the same keys
    gateway = _gateway(rt)
    assert gateway == {c["idempotency_key"]: ("succeeded", 2) for c in charges}  # charged once each, asked twice
    _applied_once(rt, charges)
    assert time.monotonic() - started < 30


def test_an_order_paid_by_card_while_the_gateway_is_too_slow_is_refused_clearly_and_kept_nowhere(shop, rt):
    customer = shop.signup("DE", "company", name="Muster GmbH")
    rt.settings = rt.settings.with_(sim_gateway_delay=5.0, gateway_timeout=0.1)
    before = _snapshot(rt)
    r = shop.client.post("/v1/orders", json={"items": [{"plan": "web-hosting-pro-p1m"}], "accept": [],
                                              "payment": {"method": "test", "outcome": "success"}},
                         headers={**customer["headers"], "Idempotency-Key": "slow-1"})
    if r.status_code == 422:  # the contracts to accept first
        body = {"items": [{"plan": "web-hosting-pro-p1m"}], "payment": {"method": "test", "outcome": "success"}}
        body["accept"] = shop.terms(customer, body)
        r = shop.client.post("/v1/orders", json=body, headers={**customer["headers"], "Idempotency-Key": "slow-1"})
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "gateway_unavailable"
    assert _snapshot(rt) == before
    # the gateway took the charge but its answer was lost: the customer's retry with the same key
    # reaches it under the same gateway key, which answers the first charge again
    rt.settings = rt.settings.with_(sim_gateway_delay=0.0)
    body = {"items": [{"plan": "web-hosting-pro-p1m"}], "payment": {"method": "test", "outcome": "success"},
            "accept": shop.terms(customer, {"items": [{"plan": "web-hosting-pro-p1m"}]})}
    again = shop.client.post("/v1/orders", json=body, headers={**customer["headers"], "Idempotency-Key": "slow-1"})
    assert again.status_code == 201, again.text
    assert [calls for key, _ref, _status, _amount, _cur, calls in sim.charges(rt.settings)
            if key.endswith(":slow-1")] == [2]  # one charge on the gateway's books, asked twice


# --- 4. the SQLite disk full ---------------------------------------------------------------------

def _fill_up(rt) -> None:
    """The database can grow no more: every new connection is capped at its current size
    (SQLite's ``max_page_count``), as a full disk would."""
    with rt.engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()

    @event.listens_for(rt.engine, "connect")
    def _full(dbapi_conn, _record):
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

    rt.engine.dispose()


def _snapshot(rt) -> dict:
    with rt.engine.connect() as conn:
        tables = inspect(conn).get_table_names()
        return {t: conn.exec_driver_sql(f'SELECT count(*) FROM "{t}"').scalar_one() for t in tables}


def test_a_full_sqlite_database_refuses_an_order_clearly_and_keeps_nothing_of_it(shop, rt, engine_name):
    if engine_name != "sqlite":
        pytest.skip("the drill fills an SQLite file (max_page_count); PostgreSQL's disk-full SQLSTATE 53100 maps alike")
    customer = shop.signup(top_up="500.00")
    body = {"items": [{"plan": "web-hosting-pro-p1m"}], "payment": {"method": "balance"}}
    body["accept"] = shop.terms(customer, body)
    for n in range(200):  # the shop's file grows until an order needs a page of its own; then it is full
        _fill_up(rt)
        before = _snapshot(rt)
        r = shop.client.post("/v1/orders", json=body, headers={**customer["headers"], "Idempotency-Key": f"full-{n}",
                                                                "Accept-Language": "fr"})
        if r.status_code != 201:
            break
    assert r.status_code == 507, r.text
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == "storage_full" and "plein" in problem["detail"]
    assert _snapshot(rt) == before  # nothing half-written


def test_a_full_sqlite_database_stops_the_renewal_run_with_a_clear_message(shop, rt, engine_name, monkeypatch, capsys):
    if engine_name != "sqlite":
        pytest.skip("the drill fills an SQLite file (max_page_count)")
    day = D(2026, 3, 1)
    shop.clock.set(day)
    with unit_of_work(rt) as conn:
        populate(conn, rt, 400, day)  # 400 services due today, on 40 accounts that can pay
    with rt.engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
    billing = ("invoice", "invoice_line", "payment", "balance_entry", "service")
    before = {t: n for t, n in _snapshot(rt).items() if t in billing}
    before_services = _services(rt)

    import core.boot
    from core.cli import main

    real = core.boot.make_engine

    def full_engine(url, **kwargs):  # the CLI's own engine, on the same full file
        engine = real(url, **kwargs)
        event.listen(engine, "connect", lambda c, _r: c.execute(f"PRAGMA max_page_count = {pages}"))
        return engine

    monkeypatch.setattr(core.boot, "make_engine", full_engine)
    monkeypatch.setenv("UNIVERS_DATABASE_URL", rt.settings.database_url)
    monkeypatch.setenv("UNIVERS_DATA_DIR", str(rt.settings.data_dir))
    monkeypatch.setenv("UNIVERS_SCHEDULER", "0")
    rt.engine.dispose()
    assert main(["renew", "--at", day.isoformat()]) == 1
    err = capsys.readouterr().err
    assert "storage_full" in err and "database is full" in err and "Traceback" not in err
    assert {t: n for t, n in _snapshot(rt).items() if t in billing} == before
    assert _services(rt) == before_services  # no service half-renewed


def _services(rt) -> list[tuple]:
    with rt.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(svc.c.id, svc.c.billed_until, svc.c.expires_on, svc.c.state)
                                               .order_by(svc.c.id))]
