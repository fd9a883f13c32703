"""The monthly run of pay-as-you-go: rate last month's usage, invoice it in arrears, close it.

``run_usage_billing(rt, period)`` (daily from the scheduler for the previous month, and
``univers usage bill --period YYYY-MM``) works in chunks of projects, each one transaction:

1. pick the next projects with usage in the period that is not closed (PostgreSQL:
   ``FOR UPDATE SKIP LOCKED`` on their service rows, so several workers share a run);
2. sum their records per (project, metric, dimension) in one ``GROUP BY``, and rate the sums
   with :func:`core.usage.rating.rate_lines` — the same function as the priced consumption, so the
   forecast and the invoice agree;
3. one draft invoice per project (kind ``usage``), addressed to its billing contact, in its
   storefront's currency and series; one line per metric and dimension, taxed at the billing
   account's zone rate in force on the period's first day (``INSERT … SELECT`` from a staging
   table, joined to the tax rates like the renewal);
4. totals and tax, and payment from the prepaid balance, in one update
   (:func:`core.renewal.run.finalise_and_pay`), the closed periods (``usage_period``, with the
   invoice), gapless numbers last, and a gateway charge queued for the rest
   (:func:`core.payments.settlement.queue_charges`).

A project whose month costs nothing (say, egress within the free allowance) gets no invoice; its
period is closed all the same.

**Twice is once.** Only projects without a closed period are picked, and ``usage_period`` is keyed
on (project, period) and written in the chunk's transaction with a plain ``INSERT``: a second
worker that somehow rated the same project fails on the key and rolls back its whole chunk.

**No record lost to the close.** Ingestion refuses records of a closed period, but a record
committed while the run rates its month must not slip between the sums and the close. On
PostgreSQL, ingestion takes ``FOR KEY SHARE`` on the projects of its batch before inserting
(:func:`core.usage.ingest`), and the run holds ``FOR UPDATE`` on the projects it rates until it
commits: these two conflict, so either the batch commits first (and the run, which locks before
it sums, sees its records), or the batch waits for the run's commit and its insert — a new
statement, a new snapshot in READ COMMITTED — sees the period closed and refuses the records with
``closed_period``. A project that a batch holds is skipped by ``SKIP LOCKED`` and picked by the
second sweep or the next day's run. On SQLite every transaction begins ``IMMEDIATE``: the run
and a batch never overlap.

A chunk that fails (a metric without a price, a missing tax rate) rolls back, is logged and
counted with its reason, and the run goes on with the next projects.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.engine import Connection

from core import audit
from core.audit import Actor
from core.billing import invoicing
from core.db import exact_sum, exact_total
from core.errors import InvalidInput
from core.i18n import N_
from core.models import (
    Account,
    AuditEvent,
    Invoice,
    InvoiceLine,
    Service,
    TaxRateRow,
    UsagePeriod,
    UsageRecord,
)
from core.payments.charges import queue_charges
from core.renewal.run import finalise_and_pay  # the renewal's totals and balance payment, unchanged
from core.runtime import Runtime
from core.uow import unit_of_work
from core.usage import commitments
from core.usage.rating import next_month, rate_lines

svc, acct, inv, line = Service.__table__, Account.__table__, Invoice.__table__, InvoiceLine.__table__
records, periods, events, rates = UsageRecord.__table__, UsagePeriod.__table__, AuditEvent.__table__, TaxRateRow.__table__
plans = commitments.plans
ACTOR = Actor.system("usage-billing")
log = logging.getLogger("univers.metering")
CHUNK = 2000  # projects per transaction

_meta = MetaData()
rated_in = Table(  # a chunk's rated lines, before they are joined to their invoice's tax rates
    "usage_rated_v2", _meta,
    Column("invoice_id", BigInteger), Column("kind", Text), Column("universe", Text), Column("metric", Text), Column("dimension", Text),
    Column("quantity_micro", BigInteger), Column("unit_price_micro", BigInteger), Column("net_minor", BigInteger),
    Column("period_start", Date), Column("period_end", Date), Column("pos", Integer),
    prefixes=["TEMPORARY"],
)
_PG_RATED = ("CREATE TEMPORARY TABLE IF NOT EXISTS usage_rated_v2 (invoice_id bigint, kind text, universe text, metric text, dimension text, "
             "quantity_micro bigint, unit_price_micro bigint, net_minor bigint, period_start date, period_end date, pos integer) "
             "ON COMMIT DELETE ROWS")
_SQLITE_RATED = ("CREATE TEMPORARY TABLE IF NOT EXISTS usage_rated_v2 (invoice_id INTEGER, kind TEXT, universe TEXT, metric TEXT, "
                 "dimension TEXT, quantity_micro INTEGER, unit_price_micro INTEGER, net_minor INTEGER, period_start TEXT, "
                 "period_end TEXT, pos INTEGER)")


@dataclass
class UsageBillingSummary:
    period: str
    projects: int = 0  # periods closed by this run
    invoices: int = 0
    free: int = 0  # projects whose month cost nothing: closed without an invoice
    paid: int = 0  # paid from the prepaid balance
    lines: int = 0
    failed: int = 0  # projects of chunks that failed (rolled back; tried again by the next run)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def parse_period(text: str) -> dt.date:
    try:
        year, month = text.split("-")
        return dt.date(int(year), int(month), 1)
    except ValueError:
        raise InvalidInput(N_("The period is a month, YYYY-MM."), code="invalid_period") from None


def previous_month(day: dt.date) -> dt.date:
    return dt.date(day.year - (day.month == 1), (day.month - 2) % 12 + 1, 1)


def _open_projects(rt: Runtime, period: dt.date, after: int):
    """Projects (metered services) after ``after`` with usage or a savings plan in ``period``
    that is not closed."""
    kinds = sorted({kind for _universe, kind in rt.metered_kinds}) or [""]
    used = exists().where(records.c.period == period, records.c.service_id == svc.c.id)
    committed = exists().where(plans.c.service_id == svc.c.id, plans.c.starts_on <= period, period < plans.c.ends_on)
    closed = exists().where(periods.c.service_id == svc.c.id, periods.c.period == period)
    return (select(svc.c.id).where(svc.c.id > after, svc.c.kind.in_(kinds), or_(used, committed), ~closed)
            .order_by(svc.c.id))


def month_sums(conn: Connection, period: dt.date, ids: list[int]) -> dict[int, list[tuple[str, str | None, int]]]:
    """Per project, the month's summed quantity (micro-units) per (metric, dimension), in that
    order: one ``GROUP BY`` over the rating index, for the invoice, the consumption and the alerts."""
    sums: dict[int, list[tuple[str, str | None, int]]] = defaultdict(list)
    for project, metric, dimension, high, low in conn.execute(
            select(records.c.service_id, records.c.metric, records.c.dimension, *exact_sum(records.c.quantity_micro))
            .where(records.c.period == period, records.c.service_id.in_(ids))
            .group_by(records.c.service_id, records.c.metric, records.c.dimension)
            .order_by(records.c.service_id, records.c.metric, records.c.dimension)):
        sums[project].append((metric, dimension, exact_total(high, low)))
    return sums


def month_costs(conn: Connection, rt: Runtime, period: dt.date, projects) -> dict[int, dict]:
    """:func:`month_cost` of each project (rows with ``id``, ``subsidiary``, ``currency``), its
    savings plan drawn: the sums in one statement, the plans in another."""
    ids = [p.id for p in projects]
    sums, plan_of = month_sums(conn, period, ids), commitments.in_force(conn, ids, period)
    return {p.id: month_cost(rt, p.subsidiary, p.currency, period, sums.get(p.id, []), plan_of.get(p.id)) for p in projects}


def month_cost(rt: Runtime, storefront: str, currency: str, period: dt.date, sums: list[tuple[str, str | None, int]],
               plan: dict | None) -> dict:
    """A project's month priced: its usage lines at list price, what its savings plan (if any)
    covers of them, and the amount due (excluding tax) — for the invoice, the consumption
    forecast and the spending alerts alike."""
    lines, missing = rate_lines(rt.catalog, rt.metrics, storefront, currency, period, sums)
    listed = sum(x.net_minor for x in lines)
    covered, due = commitments.draw(listed, plan)
    return {"lines": lines, "missing": missing, "list_minor": listed, "covered_minor": covered, "due_minor": due,
            "plan": plan}


def bill_chunk(conn: Connection, rt: Runtime, period: dt.date, after: int, limit: int) -> tuple[int, UsageBillingSummary]:
    """Rate, invoice and close the period of the next ``limit`` open projects after ``after``.
    Returns the last project id (0 when none was left) and what was done."""
    done = UsageBillingSummary(period.isoformat())
    pick = _open_projects(rt, period, after).limit(limit)
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True, of=svc)
    ids = conn.execute(pick).scalars().all()
    if not ids:
        return 0, done
    now, today, end = rt.clock.now(), rt.clock.today(), next_month(period)
    projects = conn.execute(
        select(svc.c.id, svc.c.subsidiary, svc.c.currency, svc.c.billing_account_id,
               acct.c.name, acct.c.country, acct.c.region, acct.c.vat_number)
        .join(acct, acct.c.id == svc.c.billing_account_id).where(svc.c.id.in_(ids)).order_by(svc.c.id)).all()
    # 1-2. the month's sums per project, metric and dimension (after the lock: see the module
    #    docstring), rated in Python (a few lines per project) by the one rating function, then
    #    the savings plan in force drawn first (core/usage/commitments.py)
    batch = secrets.randbits(62)
    costs = month_costs(conn, rt, period, projects)
    to_invoice, lines_of, free = [], {}, []
    for p in projects:
        cost = costs[p.id]
        plan = cost["plan"]
        if cost["missing"]:
            raise RuntimeError(f"project {p.id}: no price in storefront {p.subsidiary} for {cost['missing']}")
        staged = [("usage", x.metric, x.dimension, x.quantity_micro, x.unit_price_micro, x.net_minor) for x in cost["lines"]]
        if plan is not None:
            staged.append(("commitment", "commitment", None, None, None, plan["monthly_minor"]))
            if cost["covered_minor"]:
                staged.append(("covered", "commitment", None, None, None, -cost["covered_minor"]))
        elif cost["due_minor"] <= 0:
            free.append(p.id)
            continue
        lines_of[p.id] = staged
        to_invoice.append(p)
    # 3. one draft invoice per project that costs something, ids returned in the rows' order
    invoice_of: dict[int, int] = {}
    if to_invoice:
        rows = [dict(account_id=p.billing_account_id, run_id=batch, subsidiary=p.subsidiary, currency=p.currency, kind="usage",
                     status="draft", series=rt.storefronts[p.subsidiary].invoice_series, due_on=today, net_minor=0,
                     tax_minor=0, total_minor=0, created_at=now, buyer_name=p.name, buyer_country=p.country,
                     buyer_region=p.region, buyer_vat_number=p.vat_number) for p in to_invoice]
        new = conn.execute(insert(inv).returning(inv.c.id, sort_by_parameter_order=True), rows).scalars().all()
        invoice_of = {p.id: i for p, i in zip(to_invoice, new, strict=True)}
        _stage_lines(conn, rt, period, end, invoice_of, lines_of)
        done.lines = _insert_lines(conn, period)
        done.paid = finalise_and_pay(conn, rt, batch)
    # 4. the closed periods: a plain INSERT, so a project closed meanwhile rolls the chunk back
    conn.execute(insert(periods), [dict(service_id=p.id, period=period, closed_at=now, invoice_id=invoice_of.get(p.id))
                                   for p in projects])
    stamp = literal(now, type_=events.c.at.type)
    audit.record_select(conn, (
        select(stamp, literal(ACTOR.label), literal("service"), periods.c.service_id, literal("usage.period_closed"),
               literal(None, String), literal(f'{{"period": "{period.isoformat()}", "invoice_id": ')
               + func.coalesce(periods.c.invoice_id.cast(String), "null") + literal("}"))
        .where(periods.c.period == period, periods.c.service_id.in_(ids))))
    # 5. numbers last (the counter stays locked until commit), then the gateway's part
    if to_invoice:
        done.invoices = invoicing.issue(conn, inv.c.run_id == batch, today, rt)
        audit.record_select(conn, (
            select(stamp, literal(ACTOR.label), literal("invoice"), inv.c.id, literal("invoice.issued"), literal(None, String),
                   literal('{"status": "issued"}')).where(inv.c.run_id == batch)))
        queue_charges(conn, rt, inv.c.run_id == batch, "usage")
    done.projects, done.free = len(projects), len(free)
    return ids[-1], done


def _stage_lines(conn: Connection, rt: Runtime, period: dt.date, end: dt.date, invoice_of: dict[int, int],
                 lines_of: dict[int, list[tuple]]) -> None:
    """Stage (kind, metric, dimension, quantity, unit price, net) lines: usage lines carry their
    metric's universe; a savings plan's lines that of their project."""
    conn.exec_driver_sql(_PG_RATED if conn.dialect.name == "postgresql" else _SQLITE_RATED)
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("DELETE FROM usage_rated_v2")
    universe_of = dict(conn.execute(select(svc.c.id, svc.c.universe).where(svc.c.id.in_(list(lines_of)))).all())
    rows = [dict(invoice_id=invoice_of[project], kind=kind,
                 universe=rt.metrics[metric].universe if kind == "usage" else universe_of[project], metric=metric,
                 dimension=dimension or "", quantity_micro=quantity, unit_price_micro=unit, net_minor=net,
                 period_start=period, period_end=end, pos=n)
            for project, lines in lines_of.items() for n, (kind, metric, dimension, quantity, unit, net) in enumerate(lines)]
    conn.execute(insert(rated_in), rows)


def _insert_lines(conn: Connection, period: dt.date) -> int:
    """One line per rated (metric, dimension), taxed at the billing account's zone rate in force on
    the period's first day; every staged line must find its rate, or the chunk rolls back. A
    negative line (the usage a savings plan covers) is quantity −1 at a positive price, as
    EN 16931 wants (BR-27: no negative item price)."""
    r = rated_in.c
    main, extra = rates.alias("main"), rates.alias("extra")
    zone, start = acct.c.tax_zone, literal(period, Date)
    staged = conn.execute(select(func.count()).select_from(rated_in)).scalar_one()
    inserted = conn.execute(insert(line).execution_options(preserve_rowcount=True).from_select(
        ["invoice_id", "service_id", "kind", "universe", "product_code", "plan_code", "period_start", "period_end",
         "quantity", "unit_price_minor", "net_minor", "quantity_micro", "unit_price_micro",
         "tax_name", "tax_category", "tax_rate_ppm", "tax2_name", "tax2_rate_ppm"],
        select(r.invoice_id, literal(None, BigInteger), r.kind, r.universe, r.metric, r.dimension, r.period_start,
               r.period_end, case((r.net_minor < 0, -1), else_=1), func.abs(r.net_minor), r.net_minor, r.quantity_micro,
               r.unit_price_micro,
               main.c.name, main.c.category, main.c.rate_ppm, extra.c.name, extra.c.rate_ppm)
        .select_from(
            rated_in.join(inv, inv.c.id == r.invoice_id).join(acct, acct.c.id == inv.c.account_id)
            .join(main, and_(main.c.zone == zone, main.c.stacked.is_(False), main.c.valid_from <= start, start < main.c.valid_to))
            .outerjoin(extra, and_(extra.c.zone == zone, extra.c.stacked.is_(True), extra.c.valid_from <= start,
                                   start < extra.c.valid_to)))
        .order_by(r.invoice_id, r.pos),
    )).rowcount
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("DELETE FROM usage_rated_v2")
    if inserted != staged:
        raise RuntimeError(f"usage billing: {staged} lines rated but {inserted} taxed (missing tax rate?)")
    return inserted


def run_usage_billing(rt: Runtime, period: dt.date | None = None, *, chunk: int = CHUNK,
                      progress: Callable[[int], None] | None = None) -> UsageBillingSummary:
    """Invoice a finished month (default: the previous one) for every project with usage in it
    that is not closed yet. Safe to re-run, and to run on several workers at once."""
    today = rt.clock.today()
    period = period or previous_month(today)
    if period.day != 1:
        raise InvalidInput(N_("A usage period is a month, named by its first day."), code="invalid_period")
    if next_month(period) > today:
        raise InvalidInput(N_("The month {period} is not over yet; it is invoiced from the 1st of the next month."),
                           code="period_not_over", period=period.strftime("%Y-%m"))
    summary = UsageBillingSummary(period.isoformat())
    failed_at: set[int] = set()
    for _sweep in range(2):  # a second sweep picks what another worker or a batch held
        cursor = 0
        while True:
            try:
                with unit_of_work(rt) as conn:
                    cursor, done = bill_chunk(conn, rt, period, cursor, chunk)
            except Exception as exc:  # rolled back: skip these projects today, say why, go on
                with rt.engine.connect() as conn:
                    ids = conn.execute(_open_projects(rt, period, cursor).limit(chunk)).scalars().all()
                if not ids:
                    raise
                if ids[0] not in failed_at:
                    failed_at.add(ids[0])
                    summary.failed += len(ids)
                    summary.errors.append(f"projects {ids[0]}-{ids[-1]}: {exc}"[:300])
                    log.error("usage billing of projects %s-%s failed, left for the next run: %r", ids[0], ids[-1], exc)
                cursor = ids[-1]
                continue
            if not cursor:
                break
            for name in ("projects", "invoices", "free", "paid", "lines"):
                setattr(summary, name, getattr(summary, name) + getattr(done, name))
            if progress:
                progress(done.projects)
    return summary


def consumption(conn: Connection, rt: Runtime, actor: Actor, service_id: int) -> dict:
    """A project's month so far, priced by the monthly run's own rating, and a linear forecast.

    The forecast extends each *quantity* linearly to the month's end (so far × month length /
    elapsed) and rates it with the same function: a steady load is forecast at exactly its
    invoice, the monthly cap and free allowances included (extending the amount would overshoot
    a capped flavour). Amounts exclude tax, like the prices of the catalog.

    Prices are billing information: the month so far, priced, is the invoice to come, so it is
    shown to whoever sees the project's invoices (``service.invoices``: the billing contact and
    billing staff), not to the tech contact, who reads the quantities at ``/usage``."""
    from core.usage.ingest import get_service, month_of

    row = get_service(conn, actor, service_id, action="service.invoices")
    if not rt.is_metered(row["universe"], row["kind"]):
        raise InvalidInput(N_("This service is not a project billed by use."), code="not_a_project")
    now = rt.clock.now()
    period = month_of(now.date())
    end = next_month(period)
    start_at = dt.datetime(period.year, period.month, 1, tzinfo=now.tzinfo)
    end_at = dt.datetime(end.year, end.month, 1, tzinfo=now.tzinfo)
    elapsed, length = (now - start_at) // dt.timedelta(microseconds=1), (end_at - start_at) // dt.timedelta(microseconds=1)
    sums = month_sums(conn, period, [service_id]).get(service_id, [])
    ahead = [(m, d, (2 * q * length + elapsed) // (2 * elapsed) if elapsed > 0 else q) for m, d, q in sums]  # half up
    plan = commitments.in_force(conn, [service_id], period).get(service_id)
    so_far = month_cost(rt, row["subsidiary"], row["currency"], period, sums, plan)  # (the forecast's sums differ)
    forecast = month_cost(rt, row["subsidiary"], row["currency"], period, ahead, plan)
    return {"service_id": service_id, "period": period, "as_of": now, "currency": row["currency"],
            "lines": list(zip(so_far["lines"], forecast["lines"], strict=True)),
            "total_minor": so_far["list_minor"], "forecast_minor": forecast["list_minor"], "plan": plan,
            "covered_minor": so_far["covered_minor"], "forecast_covered_minor": forecast["covered_minor"],
            "due_minor": so_far["due_minor"], "forecast_due_minor": forecast["due_minor"]}
