"""The renewal run: set-based SQL in chunks of billing accounts.

Each chunk is one transaction of a dozen statements, whatever its size:

1. lock the next billing accounts that have services due (PostgreSQL: ``FOR UPDATE SKIP
   LOCKED``, so several workers share the run; SQLite has one writer);
2. create one draft invoice per (billing account, storefront, currency, due date), straight
   from the due services (``INSERT … SELECT … GROUP BY``);
3. insert a line per service, joined to its invoice, its price in force and its tax rate; the
   unique key (service, kind, period start) makes a second bill impossible in the database;
4. compute tax and totals; pay from the prepaid balance (running sum per account, a window
   function);
5. one ``UPDATE`` per service row: the period is billed, the price follows, and a paid period
   moves the expiry; then the audit events;
6. allocate gapless numbers and issue, last: the numbering counter stays locked until commit,
   and other workers wait on it only that long.

On PostgreSQL one connection per core renews at once (``renewal_workers``).

A crash loses at most the chunk in flight, which rolls back; the next run picks it up again.
Services set to stop get no invoice. What the balance does not pay is queued for the gateway
(:func:`core.payments.settlement.queue_charges`). The dunning ladder runs next (:mod:`core.renewal.dunning`).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import os
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from sqlalchemy import (
    String,
    and_,
    case,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from core import audit
from core.audit import Actor
from core.billing import invoicing
from core.catalog.price_list import price_in_force, prices
from core.db import sql_add_months
from core.errors import StorageFull, from_database
from core.models import (
    Account,
    AuditEvent,
    BalanceEntry,
    Invoice,
    InvoiceLine,
    Payment,
    RenewalRun,
    Service,
    TaxRateRow,
)
from core.ordering.contracts import apply_new_terms
from core.payments.charges import queue_charges
from core.renewal.due import due_condition
from core.renewal.dunning import run_dunning
from core.runtime import Runtime
from core.uow import unit_of_work

svc = Service.__table__
acct = Account.__table__
inv = Invoice.__table__
line = InvoiceLine.__table__
pay = Payment.__table__
ledger = BalanceEntry.__table__
events = AuditEvent.__table__
runs = RenewalRun.__table__
rates = TaxRateRow.__table__
ACTOR = Actor.system("renewal")
log = logging.getLogger("univers.renewal")


@dataclass
class RenewalSummary:
    run_id: int
    run_on: str
    due: int = 0  # services due when the run started
    services: int = 0  # renewed (invoiced) by this run
    failed: int = 0  # due services of chunks that failed (rolled back; tried again by the next run)
    invoices: int = 0
    paid: int = 0
    unpaid: int = 0
    suspended: int = 0
    terminated: int = 0
    ended: int = 0
    retried: int = 0
    reminded: int = 0
    warned: int = 0
    deleted: int = 0
    contact_changes_expired: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # expiring in the window but not renewed, by reason
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def skipped_reasons(conn: Connection, horizon: dt.date) -> dict[str, int]:
    """Services expiring by ``horizon`` that the run does not renew, and why."""
    reason = case(
        (svc.c.state == "suspended", literal("suspended")),
        (svc.c.billed_until > svc.c.expires_on, literal("previous_period_unpaid")),
        (svc.c.renewal_mode == "terminate", literal("set_to_stop")),
        (and_(svc.c.terms_due_by.is_not(None), svc.c.expires_on >= svc.c.terms_due_by), literal("terms_not_accepted")),
        (svc.c.renewal_mode == "manual", literal("manual_renewal")),
        else_=literal("other"),
    ).label("reason")
    rows = conn.execute(select(reason, func.count()).where(
        svc.c.state.in_(("active", "suspended")), svc.c.expires_on <= horizon, ~due_condition(horizon),
    ).group_by(reason)).all()
    return {r: n for r, n in rows}


def renewal_price():
    """The price of the next period: kept while an engagement runs, otherwise the catalog price
    in force on the renewal date (the service's last price if its plan has none any more)."""
    engaged = and_(svc.c.engagement_end.is_not(None), svc.c.billed_until < svc.c.engagement_end)
    return case((engaged, svc.c.price_minor), else_=func.coalesce(prices.c.amount_minor * svc.c.quantity, svc.c.price_minor))


def _by_storefront(rt: Runtime, column, pick: Callable):
    """A CASE over storefronts, built from data, never from branches."""
    return case(*[(column == code, pick(sub)) for code, sub in rt.storefronts.items()], else_=None)


def next_accounts(conn: Connection, horizon: dt.date, after: int, limit: int, *, lock: bool, count: bool = True):
    """The next ``limit`` billing accounts after ``after`` with services due (locked on
    PostgreSQL, skipping those another worker holds), the condition selecting their due
    services, and how many those are (None without ``count``)."""
    due = due_condition(horizon, by_account=conn.dialect.name == "sqlite")
    pick = (select(acct.c.id)
            .where(acct.c.id > after, select(svc.c.id).where(svc.c.billing_account_id == acct.c.id, due).exists())
            .order_by(acct.c.id).limit(limit))
    if lock and conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True, of=acct)
    accounts = conn.execute(pick).scalars().all()
    if not accounts:
        return [], None, 0
    mine = and_(svc.c.billing_account_id.in_(accounts), due)
    if not count:
        return accounts, mine, None
    return accounts, mine, conn.execute(select(func.count()).select_from(svc).where(mine)).scalar_one()


def renew_chunk(conn: Connection, rt: Runtime, today: dt.date, horizon: dt.date, after_account: int, limit: int) -> tuple[int, int, int, int]:
    """Renew the due services of the next ``limit`` billing accounts after ``after_account``.

    Returns (last account id, services, invoices, paid invoices); last id 0 when nothing was due.
    """
    now = rt.clock.now()
    accounts, mine, _ = next_accounts(conn, horizon, after_account, limit, lock=True, count=False)
    if not accounts:
        return 0, 0, 0, 0
    batch = secrets.randbits(62)
    # 1. one draft invoice per (billing account, storefront, currency, period start)
    conn.execute(insert(inv).from_select(
        ["account_id", "run_id", "subsidiary", "currency", "kind", "status", "series", "due_on", "net_minor",
         "tax_minor", "total_minor", "created_at", "buyer_name", "buyer_country", "buyer_region", "buyer_vat_number"],
        select(svc.c.billing_account_id, literal(batch), svc.c.subsidiary, svc.c.currency, literal("renewal"),
               literal("draft"), _by_storefront(rt, svc.c.subsidiary, lambda s: s.invoice_series), svc.c.billed_until,
               literal(0), literal(0), literal(0), literal(now, type_=inv.c.created_at.type),
               acct.c.name, acct.c.country, acct.c.region, acct.c.vat_number)
        .join(acct, acct.c.id == svc.c.billing_account_id)
        .where(mine)
        .group_by(svc.c.billing_account_id, svc.c.subsidiary, svc.c.currency, svc.c.billed_until,
                  acct.c.name, acct.c.country, acct.c.region, acct.c.vat_number),
    ))
    # 2. a line per service, priced at the price in force on its renewal date (kept under an
    #    engagement) and taxed at its billing account's zone rate in force on that date. Every
    #    due service gets its line or the chunk rolls back: the rate is outer-joined, and a
    #    missing one leaves a NULL the line's NOT NULL tax columns refuse
    main, extra = rates.alias("main"), rates.alias("extra")
    zone, start = acct.c.tax_zone, svc.c.billed_until
    price = renewal_price()
    postgres = conn.dialect.name == "postgresql"
    if postgres:  # the batch's invoices are new, so the planner guesses one row and nests loops over
        conn.exec_driver_sql("SET LOCAL enable_nestloop = off")  # every service: hash joins instead
    try:
        lines = conn.execute(insert(line).execution_options(preserve_rowcount=True).from_select(
            ["invoice_id", "service_id", "kind", "universe", "product_code", "plan_code", "period_start", "period_end",
             "quantity", "unit_price_minor", "net_minor", "tax_name", "tax_category", "tax_rate_ppm", "tax2_name", "tax2_rate_ppm"],
            select(inv.c.id, svc.c.id, literal("recurring"), svc.c.universe, svc.c.product_code, svc.c.plan_code, start,
                   sql_add_months(start, svc.c.period_months), svc.c.quantity, price // svc.c.quantity, price,
                   main.c.name, main.c.category, main.c.rate_ppm, extra.c.name, extra.c.rate_ppm)
            .select_from(
                svc.join(acct, acct.c.id == svc.c.billing_account_id)
                .join(inv, and_(inv.c.run_id == batch, inv.c.account_id == svc.c.billing_account_id, inv.c.due_on == start,
                                inv.c.subsidiary == svc.c.subsidiary, inv.c.currency == svc.c.currency))
                .outerjoin(prices, price_in_force(svc.c.subsidiary, svc.c.plan_code, start))
                .outerjoin(main, and_(main.c.zone == zone, main.c.stacked.is_(False), main.c.valid_from <= start,
                                      start < main.c.valid_to))
                .outerjoin(extra, and_(extra.c.zone == zone, extra.c.stacked.is_(True), extra.c.valid_from <= start,
                                       start < extra.c.valid_to)))
            .where(mine, acct.c.id.in_(accounts)),
        )).rowcount
    except IntegrityError as exc:
        if "tax" not in str(exc.orig):
            raise
        raise RuntimeError("renewal chunk: a due service has no tax rate in force for its billing account's zone") from exc
    if postgres:
        conn.exec_driver_sql("SET LOCAL enable_nestloop = on")
    # 3. totals, payment from the balance (the drafts are paid, then numbered last: the numbering
    #    counter stays locked until commit, so other workers wait on it as briefly as possible)
    paid = finalise_and_pay(conn, rt, batch)
    # 4. one update per service: the period is billed, the price follows, and a paid period is served
    renewed = (select(line.c.service_id, line.c.period_start, line.c.period_end, line.c.net_minor, line.c.invoice_id,
                      inv.c.paid_at.is_not(None).label("paid"))
               .join(inv, inv.c.id == line.c.invoice_id).where(inv.c.run_id == batch).subquery())
    conn.execute(update(svc).where(svc.c.id == renewed.c.service_id).values(
        billed_until=renewed.c.period_end, price_minor=renewed.c.net_minor, updated_at=now,
        expires_on=case((and_(renewed.c.paid, renewed.c.period_end > svc.c.expires_on), renewed.c.period_end),
                        else_=svc.c.expires_on)))
    stamp = literal(now, type_=events.c.at.type)
    audit.record_select(conn, select(
        stamp, literal(ACTOR.label), literal("service"), renewed.c.service_id, literal("service.renewal_invoiced"),
        literal('{"billed_until": "') + cast(renewed.c.period_start, String) + literal('"}'),
        literal('{"billed_until": "') + cast(renewed.c.period_end, String) + literal('", "invoice_id": ')
        + cast(renewed.c.invoice_id, String) + literal("}"),
    ))
    # 5. numbers, last
    issued = invoicing.issue(conn, inv.c.run_id == batch, today, rt)
    audit.record_select(conn, select(stamp, literal(ACTOR.label), literal("invoice"), inv.c.id, literal("invoice.issued"),
                               literal(None, String), literal('{"status": "issued"}')).where(inv.c.run_id == batch))
    # what the balance did not pay is charged through the gateway by the charge workers
    queue_charges(conn, rt, inv.c.run_id == batch, "renewal")
    return accounts[-1], lines, issued, paid


def finalise_and_pay(conn: Connection, rt: Runtime, batch: int) -> int:
    """Finalise a batch's drafts (:func:`core.billing.invoicing.finalise`) and pay them from
    prepaid balances, oldest due first, while the balance lasts, in one update: totals and
    ``paid_at``; :func:`core.billing.invoicing.issue` then issues the paid ones as paid. Returns
    how many were paid. The caller moves the expiries of what was paid (in the same statement
    as the billing)."""
    now = rt.clock.now()
    drafts = inv.c.run_id == batch
    invoicing.write_taxes(conn, drafts)
    sums = invoicing.totals(drafts)
    total = sums.c.net + sums.c.tax
    running = func.sum(total).over(partition_by=sums.c.account_id, order_by=(sums.c.due_on, sums.c.invoice_id))
    payable = or_(total == 0, and_(acct.c.payment_method == "balance", running <= acct.c.balance_minor))
    priced = (select(sums.c.invoice_id, sums.c.net, sums.c.tax,
                     case((payable, literal(now, type_=inv.c.paid_at.type)), else_=None).label("paid_at"))
              .join(acct, acct.c.id == sums.c.account_id).subquery())
    paid = sum(1 for (at,) in conn.execute(
        update(inv).where(inv.c.id == priced.c.invoice_id)
        .values(net_minor=priced.c.net, tax_minor=priced.c.tax, total_minor=priced.c.net + priced.c.tax, paid_at=priced.c.paid_at)
        .returning(inv.c.paid_at)) if at is not None)
    if not paid:
        return 0
    just_paid = and_(inv.c.run_id == batch, inv.c.paid_at.is_not(None), inv.c.total_minor > 0)
    stamp = literal(now, type_=pay.c.created_at.type)
    conn.execute(insert(pay).from_select(
        ["account_id", "invoice_id", "method", "purpose", "amount_minor", "currency", "status", "created_at", "settled_at"],
        select(inv.c.account_id, inv.c.id, literal("balance"), literal("invoice"), inv.c.total_minor, inv.c.currency,
               literal("succeeded"), stamp, stamp).where(just_paid),
    ))
    conn.execute(insert(ledger).from_select(
        ["account_id", "amount_minor", "reason", "invoice_id", "payment_id", "created_at"],
        select(pay.c.account_id, -pay.c.amount_minor, literal("invoice"), pay.c.invoice_id, pay.c.id, stamp)
        .join(inv, inv.c.id == pay.c.invoice_id).where(just_paid),
    ))
    debit = select(inv.c.account_id, func.sum(inv.c.total_minor).label("amount")).where(just_paid).group_by(inv.c.account_id).subquery()
    conn.execute(update(acct).where(acct.c.id == debit.c.account_id).values(balance_minor=acct.c.balance_minor - debit.c.amount))
    audit.record_select(conn, select(literal(now, type_=events.c.at.type), literal(ACTOR.label), literal("invoice"), inv.c.id,
                               literal("invoice.paid"), literal('{"status": "issued"}'), literal('{"status": "paid", "method": "balance"}'))
                  .where(inv.c.run_id == batch, inv.c.paid_at.is_not(None)))
    return paid


def _skip_failed_chunk(rt: Runtime, horizon: dt.date, after: int, exc: Exception, summary: RenewalSummary,
                       failed_at: set[int]) -> int:
    """Count the due services of the chunk that failed, log why, and return the cursor past it."""
    with rt.engine.connect() as conn:
        accounts, _mine, count = next_accounts(conn, horizon, after, rt.settings.renewal_chunk, lock=False)
    if not accounts:
        raise exc  # nothing left to skip: the failure is not the chunk's
    if accounts[0] not in failed_at:
        failed_at.add(accounts[0])
        summary.failed += count
        summary.errors.append(f"accounts {accounts[0]}-{accounts[-1]}: {exc}"[:300])
        log.error("renewal chunk of accounts %s-%s failed, %s services left for the next run: %r",
                  accounts[0], accounts[-1], count, exc)
    return accounts[-1]


def _sweep(rt: Runtime, today: dt.date, horizon: dt.date, summary: RenewalSummary, lock: threading.Lock,
           failed_at: set[int], progress: Callable[[int], None] | None) -> None:
    """Renew chunk after chunk until nothing is due; a second pass from the start picks up what
    a crashed worker left."""
    for _pass in range(2):
        cursor = 0
        while True:
            try:
                with unit_of_work(rt) as conn:
                    cursor, services, invoices, paid = renew_chunk(conn, rt, today, horizon, cursor, rt.settings.renewal_chunk)
            except Exception as exc:  # the chunk rolled back: skip its accounts today, say why, go on
                if isinstance(full := from_database(exc), StorageFull):  # every chunk would fail alike: stop, say why
                    raise full from exc
                with lock:
                    cursor = _skip_failed_chunk(rt, horizon, cursor, exc, summary, failed_at)
                continue
            if not cursor:
                break
            with lock:
                summary.services += services
                summary.invoices += invoices
                summary.paid += paid
                if progress:
                    progress(services)


def renewal_workers(rt: Runtime) -> int:
    """Connections renewing at once: the setting, else one per core on PostgreSQL and one on SQLite (one writer)."""
    return rt.settings.renewal_workers or (os.cpu_count() or 1 if rt.engine.dialect.name == "postgresql" else 1)


def run_renewal(rt: Runtime, today: dt.date | None = None, *, progress: Callable[[int], None] | None = None,
                dunning: bool = True) -> RenewalSummary:
    """The daily job. Safe to re-run, and to run on several workers at once."""
    today = today or rt.clock.today()
    started = rt.telemetry.stopwatch()
    horizon = today + dt.timedelta(days=rt.settings.renewal_lead_days)
    with unit_of_work(rt) as conn:
        apply_new_terms(conn, rt, today)  # new terms in force: deadlines first, so the run below respects them
        run_id = conn.execute(insert(runs).values(run_on=today, started_at=rt.clock.now(), status="running")
                              .returning(runs.c.id)).scalar_one()
    summary = RenewalSummary(run_id=run_id, run_on=today.isoformat())
    with rt.engine.connect() as conn:
        summary.due = conn.execute(select(func.count()).select_from(svc).where(due_condition(horizon))).scalar_one()
        summary.skipped = skipped_reasons(conn, horizon)
    workers = renewal_workers(rt)
    lock, failed_at = threading.Lock(), set()
    if workers == 1:
        _sweep(rt, today, horizon, summary, lock, failed_at, progress)
    else:  # PostgreSQL: one connection per core, sharing the chunks through SKIP LOCKED
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="renewal") as pool:  # each in the caller's
            for done in [pool.submit(contextvars.copy_context().run, _sweep, rt, today, horizon, summary, lock, failed_at,
                                     progress) for _ in range(workers)]:  # context: a staff run's request id
                done.result()
    summary.unpaid = summary.invoices - summary.paid
    if dunning:
        with unit_of_work(rt) as conn:
            run_dunning(conn, rt, today, summary)
    with unit_of_work(rt) as conn:
        counts = {k: v for k, v in summary.as_dict().items() if k in runs.c and isinstance(v, int)}
        conn.execute(update(runs).where(runs.c.id == run_id).values(finished_at=rt.clock.now(), status="done", **counts))
    rt.telemetry.renewal_run(rt.telemetry.stopwatch() - started, summary.services, summary.failed, summary.as_dict())
    return summary
