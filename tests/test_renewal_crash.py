"""Issue 5: the renewal run killed half-way, and several runs at once.

What is checked is what an accountant would check, in the tables themselves (service,
invoice, invoice_line, payment, balance_entry, renewal_run), never how the run gets there:

* after a ``kill -9`` the books are consistent as they stand (every invoice has its lines,
  no service is billed without a line, numbers are gapless, every payment has its ledger entry);
* the next run finishes the work, and every service ends up billed once for the period;
* two runs at once (two processes, two scheduler jobs) share the work and bill nothing twice,
  and one run's dunning never suspends what the other is renewing.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from bench.renewal import populate
from core.context import DunningPolicy
from core.models import (
    Account,
    BalanceEntry,
    Invoice,
    InvoiceLine,
    Payment,
    RenewalRun,
    Service,
)
from core.renewal.run import run_renewal
from core.scheduler import renewal_job
from core.uow import unit_of_work

TODAY = dt.date(2026, 3, 1)
NEXT = dt.date(2026, 4, 1)  # the monthly period that starts today ends here
ROOT = Path(__file__).resolve().parents[1]  # the subprocesses run this checkout's code

svc, acct, inv = Service.__table__, Account.__table__, Invoice.__table__
line, pay, ledger, runs = InvoiceLine.__table__, Payment.__table__, BalanceEntry.__table__, RenewalRun.__table__


# --- helpers ----------------------------------------------------------------------------------

def _renew_process(rt, database_url, tmp_path, name: str, chunk: int, workers: int = 0) -> tuple[subprocess.Popen, object]:
    """``python -m core.cli renew --at TODAY`` against the test database (PostgreSQL: the test's
    schema, through the URL), ``chunk`` billing accounts per transaction, ``workers``
    connections (0: the default, one per core)."""
    url, schema = database_url
    env = {**os.environ, "UNIVERS_DATABASE_URL": url + (f"?options=-csearch_path%3D{schema}" if schema else ""),
           "UNIVERS_DATA_DIR": str(rt.settings.data_dir), "UNIVERS_SIM_PATH": rt.settings.sim_path,
           "UNIVERS_RENEWAL_CHUNK": str(chunk), "UNIVERS_RENEWAL_WORKERS": str(workers), "UNIVERS_SCHEDULER": "0"}
    log = open(tmp_path / f"{name}.log", "w+b")  # noqa: SIM115 - closed by the caller
    proc = subprocess.Popen([sys.executable, "-m", "core.cli", "renew", "--at", TODAY.isoformat()], env=env,
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    return proc, log


def _output(log) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")[-3000:]


def _balances(rt) -> dict[int, int]:
    with rt.engine.connect() as conn:
        return dict(conn.execute(select(acct.c.id, acct.c.balance_minor)).all())


@dataclass
class Books:
    billed: int  # services with their line for the period starting TODAY
    invoices: int


def check_books(rt, balances_before: dict[int, int], services: int, *, complete: bool) -> Books:
    """The renewal invariants, valid after any committed transaction; ``complete``: and every
    service is billed. Every account can pay from its balance, so every invoice is paid."""
    with rt.engine.connect() as conn:
        services_rows = conn.execute(select(svc.c.id, svc.c.billing_account_id, svc.c.billed_until, svc.c.expires_on,
                                            svc.c.state)).all()
        lines = conn.execute(select(line.c.service_id, line.c.invoice_id, line.c.kind, line.c.period_start,
                                    line.c.period_end, line.c.net_minor)).all()
        invoices = conn.execute(select(inv.c.id, inv.c.account_id, inv.c.status, inv.c.series, inv.c.fiscal_year,
                                       inv.c.seq, inv.c.net_minor, inv.c.total_minor)).all()
        payments = conn.execute(select(pay.c.id, pay.c.invoice_id, pay.c.status, pay.c.amount_minor)).all()
        entries = conn.execute(select(ledger.c.account_id, ledger.c.invoice_id, ledger.c.payment_id,
                                      ledger.c.amount_minor)).all()
        balances = dict(conn.execute(select(acct.c.id, acct.c.balance_minor)).all())

    assert len(services_rows) == services
    # lines: only this period's recurring lines, at most one per service, each on an invoice of its billing account
    assert {(r.kind, r.period_start, r.period_end) for r in lines} <= {("recurring", TODAY, NEXT)}
    per_service = Counter(r.service_id for r in lines)
    twice = [s for s, n in per_service.items() if n > 1]
    assert not twice, f"{len(twice)} services billed more than once, e.g. {twice[:5]}"
    line_of = {r.service_id: r for r in lines}
    invoice_of = {r.id: r for r in invoices}
    owner = {r.id: r.billing_account_id for r in services_rows}
    assert all(invoice_of[r.invoice_id].account_id == owner[r.service_id] for r in lines)

    # services: billed (and, being paid, served) exactly when they have their line
    wrong = []
    for s in services_rows:
        expected = (NEXT, NEXT) if s.id in line_of else (TODAY, TODAY)
        if (s.billed_until, s.expires_on) != expected or s.state != "active":
            wrong.append((s.id, s.billed_until, s.expires_on, s.state, s.id in line_of))
    assert not wrong, (f"{len(wrong)} services out of step with their lines "
                       f"(id, billed_until, expires_on, state, has a line): {wrong[:5]}")
    if complete:
        assert len(line_of) == services, f"{services - len(line_of)} services never billed"

    # invoices: no draft, none without lines, net = sum of lines, numbered 1..n without gap or repeat
    lines_per_invoice = defaultdict(list)
    for r in lines:
        lines_per_invoice[r.invoice_id].append(r.net_minor)
    assert Counter(r.status for r in invoices) == Counter(paid=len(invoices)), Counter(r.status for r in invoices)
    empty = [r.id for r in invoices if r.id not in lines_per_invoice]
    assert not empty, f"{len(empty)} invoices without lines, e.g. {empty[:5]}"
    assert all(r.net_minor == sum(lines_per_invoice[r.id]) and r.total_minor >= r.net_minor > 0 for r in invoices)
    assert len({(r.series, r.fiscal_year) for r in invoices}) <= 1  # one numbering series
    assert sorted(r.seq for r in invoices) == list(range(1, len(invoices) + 1))

    # payments and ledger: each paid invoice exactly one succeeded payment and one entry, for its total
    pays = defaultdict(list)
    for p in payments:
        pays[p.invoice_id].append(p)
    assert set(pays) == {r.id for r in invoices}, "a payment without its invoice, or a paid invoice without payment"
    for r in invoices:
        (p,) = pays[r.id]
        assert (p.status, p.amount_minor) == ("succeeded", r.total_minor), (r, p)
    entry_of = defaultdict(list)
    for e in entries:
        entry_of[e.invoice_id].append(e)
    assert set(entry_of) == {r.id for r in invoices}, "a ledger entry without its invoice, or a paid invoice without entry"
    for r in invoices:
        (e,) = entry_of[r.id]
        assert (e.account_id, e.amount_minor, e.payment_id) == (r.account_id, -r.total_minor, pays[r.id][0].id), (r, e)
    assert sum(e.amount_minor for e in entries) == -sum(r.total_minor for r in invoices)
    moved = Counter()
    for e in entries:
        moved[e.account_id] += e.amount_minor
    drift = [a for a, b in balances.items() if b - balances_before[a] != moved[a]]
    assert not drift, f"{len(drift)} account balances out of step with their ledger, e.g. {drift[:5]}"
    return Books(billed=len(line_of), invoices=len(invoices))


def _finished_runs(rt) -> list[int]:
    with rt.engine.connect() as conn:
        return conn.execute(select(runs.c.services).where(runs.c.status == "done").order_by(runs.c.id)).scalars().all()


# --- 1. killed half-way, then run again ---------------------------------------------------------

CRASH_SERVICES = 50_000  # 5,000 billing accounts of ten services
CRASH_CHUNK = 5  # billing accounts per transaction: a thousand transactions, so the kill lands mid-run
KILL_AFTER = 100  # invoices committed (twenty chunks, 2 % of the run) before the kill


@pytest.mark.slow
def test_renewal_killed_mid_run_is_consistent_and_the_next_run_finishes_it(rt, clock, database_url, tmp_path):
    clock.set(TODAY)
    with unit_of_work(rt) as conn:
        populate(conn, rt, CRASH_SERVICES, TODAY)
    before = _balances(rt)
    # rt.engine opens every SQLite transaction with BEGIN IMMEDIATE: polling through it would
    # queue behind the run's chunks; a plain engine reads the WAL without taking the lock.
    url, _schema = database_url
    watcher = create_engine(url) if url.startswith("sqlite") else rt.engine
    proc, log = _renew_process(rt, database_url, tmp_path, "renew", CRASH_CHUNK)
    try:
        deadline = time.monotonic() + 90
        while proc.poll() is None and time.monotonic() < deadline:
            with watcher.connect() as conn:
                if conn.execute(select(func.count()).select_from(inv)).scalar_one() >= KILL_AFTER:
                    break
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        output = _output(log)
        log.close()
        if watcher is not rt.engine:
            watcher.dispose()
    assert proc.returncode == -signal.SIGKILL, f"the run ended on its own (rc {proc.returncode}) before the kill:\n{output}"

    partial = check_books(rt, before, CRASH_SERVICES, complete=False)
    assert partial.invoices > 0 and 0 < partial.billed < CRASH_SERVICES, (
        f"the kill did not land mid-run ({partial}); make CRASH_CHUNK smaller")

    summary = run_renewal(rt, TODAY)  # the next run, with dunning, as the daily job does it
    assert summary.services == CRASH_SERVICES - partial.billed
    assert summary.suspended == summary.terminated == summary.ended == 0
    final = check_books(rt, before, CRASH_SERVICES, complete=True)
    assert final.invoices == CRASH_SERVICES // 10  # one invoice per billing account, killed chunk included
    assert run_renewal(rt, TODAY).services == 0  # nothing left to do


# --- 2. two processes at once (PostgreSQL) --------------------------------------------------------

SHARED_SERVICES = 20_000
SHARED_CHUNK = 10


@pytest.mark.slow
def test_two_renew_processes_at_once_share_the_work_and_bill_each_service_once(rt, clock, database_url, engine_name,
                                                                             tmp_path):
    if engine_name == "sqlite":
        pytest.skip("SQLite has a single writer: two processes take turns, nothing is shared (the threads test covers it)")
    clock.set(TODAY)
    with unit_of_work(rt) as conn:
        populate(conn, rt, SHARED_SERVICES, TODAY)
    before = _balances(rt)
    procs = []
    try:
        # A gate: while the test holds the invoice table, each process locks its first chunk of
        # accounts (SKIP LOCKED: two different chunks) and waits to insert its invoices. Once both
        # wait, both are sure to bill something, whoever the scheduler favours afterwards.
        with rt.engine.connect() as gate:
            gate.execute(text("LOCK TABLE invoice IN EXCLUSIVE MODE"))
            # one connection each, so that two waiting at the gate are the two processes
            procs = [_renew_process(rt, database_url, tmp_path, f"renew-{i}", SHARED_CHUNK, workers=1) for i in (1, 2)]
            deadline = time.monotonic() + 60
            waiting = 0
            while waiting < 2 and time.monotonic() < deadline and all(p.poll() is None for p, _ in procs):
                with rt.engine.connect() as conn:
                    waiting = conn.execute(text(
                        "SELECT count(*) FROM pg_locks WHERE relation = to_regclass('invoice') AND NOT granted")).scalar_one()
                time.sleep(0.05)
            gate.commit()
        assert waiting == 2, "both processes should wait at the gate:\n" + "\n".join(_output(log) for _, log in procs)
        for p, log in procs:
            try:
                p.wait(timeout=180)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            assert p.returncode == 0, _output(log)
    finally:
        for p, log in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            log.close()

    check_books(rt, before, SHARED_SERVICES, complete=True)
    shares = _finished_runs(rt)
    assert len(shares) == 2 and sum(shares) == SHARED_SERVICES
    assert all(n > 0 for n in shares), shares  # both did part of the work


# --- 3. the scheduler's job twice at once, dunning included ------------------------------------------

def test_renewal_job_twice_at_once_bills_once_and_suspends_nothing_paid(rt, clock):
    """Like test_two_renewal_runs_at_once_bill_each_service_once, but the job as scheduled: with
    dunning, which must not suspend the services the other run is renewing at that moment."""
    clock.set(TODAY)
    with unit_of_work(rt) as conn:
        populate(conn, rt, 600, TODAY, per_account=3)
    before = _balances(rt)
    rt.settings = rt.settings.with_(renewal_chunk=7)
    errors = []

    def job():
        try:
            renewal_job(rt)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=job) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    check_books(rt, before, 600, complete=True)
    assert sum(_finished_runs(rt)) == 600


def test_dunning_leaves_alone_the_services_another_worker_is_renewing(rt, clock, engine_name):
    """A worker finishes its sweep while another still holds a chunk of accounts (FOR UPDATE SKIP
    LOCKED): its dunning must not suspend those services, due but not yet billed."""
    if engine_name == "sqlite":
        pytest.skip("SQLite has a single writer: no run ever finishes while another holds a chunk")
    clock.set(TODAY)
    # the strictest ladder: suspension on the expiry day itself, when the race is possible
    rt.dunning = {**rt.dunning, "baremetal": DunningPolicy(universe="baremetal", retries=(), warn_before=0, suspend_after=0)}
    with unit_of_work(rt) as conn:
        populate(conn, rt, 30, TODAY, per_account=10)
    before = _balances(rt)
    with rt.engine.connect() as other:  # the other worker's chunk in flight: its accounts are locked
        busy = other.execute(select(acct.c.id).order_by(acct.c.id).limit(1).with_for_update()).scalar_one()
        summary = run_renewal(rt, TODAY)
        other.rollback()
    assert summary.services == 20 and summary.suspended == 0
    with rt.engine.connect() as conn:
        states = Counter(conn.execute(select(svc.c.state).where(svc.c.billing_account_id == busy)).scalars())
    assert states == Counter(active=10)
    assert run_renewal(rt, TODAY).services == 10  # the next run (or the other worker) bills them
    check_books(rt, before, 30, complete=True)


def test_a_chunk_with_a_service_without_a_tax_rate_bills_none_of_its_services(rt, clock):
    """Every due service of a chunk gets its line, or none does: an account whose tax zone has no
    rate in force fails its chunk (rolled back, counted, said why); the other chunks renew."""
    clock.set(TODAY)
    with unit_of_work(rt) as conn:
        populate(conn, rt, 60, TODAY, per_account=3)
        first = conn.execute(select(func.min(acct.c.id)).where(acct.c.is_staff.is_(False))).scalar_one()
        conn.execute(acct.update().where(acct.c.id == first + 1).values(tax_zone="XX"))  # no such zone
    rt.settings = rt.settings.with_(renewal_chunk=5)
    summary = run_renewal(rt, TODAY, dunning=False)
    assert summary.failed == 15 and summary.services == 45  # the 5 accounts of that chunk, 3 services each
    assert any("no tax rate" in e for e in summary.errors), summary.errors
    with rt.engine.connect() as conn:
        unbilled = conn.execute(select(svc.c.billing_account_id).where(svc.c.billed_until == TODAY).distinct()).scalars().all()
        assert sorted(unbilled) == list(range(first, first + 5))
        assert conn.execute(select(func.count()).select_from(line)).scalar_one() == 45
