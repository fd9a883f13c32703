"""Invoices: totals (EN 16931 shaped) and gapless numbering, both set-based.

The same two statements serve a single order invoice and a renewal chunk of 100,000: callers
pass a condition selecting the draft invoices to finalise and issue.

* :func:`finalise` writes the tax breakdown, one row per (tax, category, rate) over the summed
  line amounts, rounded once by :func:`core.money.tax_sql`, then the invoice totals. A stacked
  tax (Québec's QST on top of GST) is a second row over the same base.
* :func:`issue` allocates numbers from one counter per (subsidiary, series, year), under a row
  lock, in the transaction that freezes the invoice, and appends the fiscal chain's records of the
  storefronts that keep one (:mod:`core.billing.chain`). Drafts have no number.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, case, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from core import telemetry
from core.billing import chain
from core.billing.numbers import number
from core.models import Account, Invoice, InvoiceCounter, InvoiceLine, InvoiceTax
from core.money import tax_sql

inv = Invoice.__table__
line = InvoiceLine.__table__
tax = InvoiceTax.__table__
counter = InvoiceCounter.__table__
acct = Account.__table__


def write_taxes(conn: Connection, where: ColumnElement) -> None:
    """The tax breakdown of the drafts matching ``where``: a row per (tax, category, rate) over
    the summed line amounts, rounded once."""
    drafts = select(inv.c.id).where(where, inv.c.status == "draft")
    base = func.sum(line.c.net_minor)
    columns = ["invoice_id", "name", "category", "rate_ppm", "base_minor", "tax_minor"]
    conn.execute(insert(tax).from_select(columns, (
        select(line.c.invoice_id, line.c.tax_name, line.c.tax_category, line.c.tax_rate_ppm, base, tax_sql(base, line.c.tax_rate_ppm))
        .where(line.c.invoice_id.in_(drafts))
        .group_by(line.c.invoice_id, line.c.tax_name, line.c.tax_category, line.c.tax_rate_ppm)
    )))
    conn.execute(insert(tax).from_select(columns, (  # a stacked tax: same base, its own rounding
        select(line.c.invoice_id, line.c.tax2_name, line.c.tax_category, line.c.tax2_rate_ppm, base, tax_sql(base, line.c.tax2_rate_ppm))
        .where(line.c.invoice_id.in_(drafts), line.c.tax2_rate_ppm.is_not(None))
        .group_by(line.c.invoice_id, line.c.tax2_name, line.c.tax_category, line.c.tax2_rate_ppm)
    )))


def totals(where: ColumnElement):
    """The drafts matching ``where`` with their sums (``net``, ``tax``), their account and due
    date, as a subquery: what :func:`finalise` writes, once their taxes are written."""
    return (
        select(inv.c.id.label("invoice_id"), inv.c.account_id, inv.c.due_on,
               select(func.sum(line.c.net_minor)).where(line.c.invoice_id == inv.c.id).scalar_subquery().label("net"),
               select(func.sum(tax.c.tax_minor)).where(tax.c.invoice_id == inv.c.id).scalar_subquery().label("tax"))
        .where(where, inv.c.status == "draft")
        .subquery()
    )


def finalise(conn: Connection, where: ColumnElement) -> None:
    """Taxes, then totals, of the drafts matching ``where``."""
    write_taxes(conn, where)
    sums = totals(where)
    conn.execute(
        update(inv)
        .where(inv.c.id == sums.c.invoice_id)
        .values(net_minor=sums.c.net, tax_minor=sums.c.tax, total_minor=sums.c.net + sums.c.tax)
    )


def _ensure_counter(conn: Connection, subsidiary: str, series: str, year: int) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(counter)
        .values(subsidiary=subsidiary, series=series, fiscal_year=year, last_seq=0)
        .on_conflict_do_nothing()
    )


def issue(conn: Connection, where: ColumnElement, today: dt.date, rt) -> int:
    """Number and freeze the drafts matching ``where``, with the buyer's national e-invoice data
    where the storefront has some; returns how many were issued. A draft already paid
    (``paid_at`` set, by the renewal's balance payment) is issued as paid. A storefront with a
    fiscal chain (Portugal, Spain) gets their records too, under the same counter lock."""

    kinds = conn.execute(
        select(inv.c.subsidiary, inv.c.series, inv.c.kind, func.count())
        .where(where, inv.c.status == "draft")
        .group_by(inv.c.subsidiary, inv.c.series, inv.c.kind)
    ).all()
    groups: dict[tuple[str, str], int] = {}
    for subsidiary, series, kind, count in kinds:
        groups[subsidiary, series] = groups.get((subsidiary, series), 0) + count
        telemetry.count(conn, "invoices_issued", count, subsidiary, kind)  # once committed
    issued = 0
    for (subsidiary, series), count in sorted(groups.items()):  # one lock order for every worker: no deadlock
        key = and_(counter.c.subsidiary == subsidiary, counter.c.series == series, counter.c.fiscal_year == today.year)
        _ensure_counter(conn, subsidiary, series, today.year)
        last = conn.execute(select(counter.c.last_seq).where(key).with_for_update()).scalar_one()
        conn.execute(update(counter).where(key).values(last_seq=counter.c.last_seq + count))
        ranked = (
            select(inv.c.id, func.row_number().over(order_by=inv.c.id).label("rn"))
            .where(where, inv.c.status == "draft", inv.c.subsidiary == subsidiary, inv.c.series == series)
            .subquery()
        )
        frozen = {}
        if rt.storefronts[subsidiary].einvoice_fields:  # the buyer's national e-invoice data, as it is today
            frozen["buyer_einvoice"] = select(acct.c.einvoice).where(acct.c.id == inv.c.account_id).scalar_subquery()
        result = conn.execute(
            update(inv)
            .where(inv.c.id == ranked.c.id)
            .values(seq=ranked.c.rn + last, fiscal_year=today.year, issued_on=today,
                    status=case((inv.c.paid_at.is_not(None), "paid"), else_="issued"), **frozen)
        )
        if result.rowcount != count:
            raise RuntimeError(f"numbering {subsidiary}/{series}: expected {count} invoices, numbered {result.rowcount}")
        chain.append(conn, rt, subsidiary, series, today.year, last + 1, last + count)
        issued += count
    return issued


def load_invoice(conn: Connection, account_id: int | None, invoice_id: int) -> tuple[dict, list[dict], list[dict], list[dict]]:
    """An invoice with its lines, VAT breakdown and payments; ``account_id`` None means staff."""
    from core.db import fetch_owned

    return load_invoices(conn, [fetch_owned(conn, inv, invoice_id, account_id, "invoice")])[0]


def load_invoices(conn: Connection, rows: list[dict]) -> list[tuple[dict, list[dict], list[dict], list[dict]]]:
    """Invoice rows already read (a page of a list), each with its lines, VAT breakdown and
    payments, in four queries for the whole page whatever its size."""
    from core.models import Payment

    pay = Payment.__table__
    ids = [r["id"] for r in rows]
    if not ids:
        return []
    corrected = {r["credited_invoice_id"] for r in rows if r["credited_invoice_id"]}
    numbers = {r.id: number(r.series, r.fiscal_year, r.seq) for r in conn.execute(
        select(inv.c.id, inv.c.series, inv.c.fiscal_year, inv.c.seq).where(inv.c.id.in_(corrected)))} if corrected else {}
    found: dict[str, dict[int, list[dict]]] = {}
    for name, table, order in (("lines", line, (line.c.id,)), ("taxes", tax, (tax.c.category, tax.c.rate_ppm, tax.c.name)),
                               ("payments", pay, (pay.c.id,))):
        found[name] = {i: [] for i in ids}
        for x in conn.execute(select(table).where(table.c.invoice_id.in_(ids)).order_by(table.c.invoice_id, *order)).mappings():
            found[name][x["invoice_id"]].append(dict(x))
    out = []
    for r in rows:
        row = dict(r)
        if row["credited_invoice_id"]:
            row["credits"] = numbers[row["credited_invoice_id"]]
        out.append((row, found["lines"][row["id"]], found["taxes"][row["id"]], found["payments"][row["id"]]))
    return out
