"""What back-office staff read and hand to the accountants: invoice lists, the overdue view, the
revenue report, the sales journal (CSV) and, for the French entity, the FEC.

Everything here reads issued documents only (drafts have no number and do not exist for the
books) and runs as a few SQL statements per chunk of documents, never one query per invoice.
Credit notes count negatively. The chart of accounts is data (``core/data/accounts.json``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

from sqlalchemy import BigInteger, case, cast, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction

from core.billing.invoicing import number
from core.models import Account, Invoice, InvoiceLine, InvoiceTax, Payment
from core.money import from_minor

inv, line, tax, acct, pay = Invoice.__table__, InvoiceLine.__table__, InvoiceTax.__table__, Account.__table__, Payment.__table__
ACCOUNTS = json.loads((Path(__file__).parents[1] / "data" / "accounts.json").read_text(encoding="utf-8"))
ISSUED = ("issued", "paid", "credited")
CHUNK = 5000


class sql_month(GenericFunction):  # noqa: N801 - a SQL function
    """``YYYY-MM`` of a date, on both engines."""

    type = None
    inherit_cache = True


@compiles(sql_month)
def _month_sqlite(element, compiler, **kw):
    return f"strftime('%Y-%m', {compiler.process(list(element.clauses)[0], **kw)})"


@compiles(sql_month, "postgresql")
def _month_pg(element, compiler, **kw):
    return f"to_char({compiler.process(list(element.clauses)[0], **kw)}, 'YYYY-MM')"


def _sign():
    return case((inv.c.kind == "credit_note", -1), else_=1)


def find_invoices(conn: Connection, *, account_id: int | None = None, subsidiary: str | None = None,
                  status: str | None = None, kind: str | None = None, issued_from: dt.date | None = None,
                  issued_to: dt.date | None = None, after: int = 0, limit: int = 50) -> list[dict]:
    """Issued documents matching the filters, by id (keyset pagination with ``after``)."""
    q = select(inv).where(inv.c.id > after, inv.c.seq.is_not(None)).order_by(inv.c.id).limit(min(max(limit, 1), 200))
    for column, value in ((inv.c.account_id, account_id), (inv.c.subsidiary, subsidiary), (inv.c.status, status),
                          (inv.c.kind, kind)):
        if value is not None:
            q = q.where(column == value)
    if issued_from:
        q = q.where(inv.c.issued_on >= issued_from)
    if issued_to:
        q = q.where(inv.c.issued_on <= issued_to)
    return [dict(r) for r in conn.execute(q).mappings()]


def overdue(conn: Connection, as_of: dt.date, subsidiary: str | None = None, limit: int = 500) -> list[dict]:
    """Unpaid documents past their due date, oldest first, with the days overdue and whether a
    payment is pending (which blocks suspension)."""
    pending = select(pay.c.id).where(pay.c.invoice_id == inv.c.id, pay.c.status == "pending").exists()
    q = (select(inv.c.id, inv.c.series, inv.c.fiscal_year, inv.c.seq, inv.c.subsidiary, inv.c.currency, inv.c.due_on,
                inv.c.total_minor, inv.c.buyer_name, acct.c.handle, pending.label("payment_pending"))
         .join(acct, acct.c.id == inv.c.account_id)
         .where(inv.c.status == "issued", inv.c.kind != "credit_note", inv.c.due_on < as_of)
         .order_by(inv.c.due_on, inv.c.id).limit(limit))
    if subsidiary:
        q = q.where(inv.c.subsidiary == subsidiary)
    return [{**r._mapping, "number": number(r.series, r.fiscal_year, r.seq), "days_overdue": (as_of - r.due_on).days}
            for r in conn.execute(q)]


def revenue(conn: Connection, start: dt.date, end: dt.date) -> list[dict]:
    """Net revenue invoiced by month, storefront, universe and currency (credit notes deducted),
    from the lines of the documents issued between ``start`` and ``end`` inclusive."""
    month = sql_month(inv.c.issued_on)
    q = (select(month.label("month"), inv.c.subsidiary, line.c.universe, inv.c.currency,
                cast(func.sum(line.c.net_minor * _sign()), BigInteger).label("net_minor"), func.count(func.distinct(inv.c.id)).label("documents"))
         .join(inv, inv.c.id == line.c.invoice_id)
         .where(inv.c.seq.is_not(None), inv.c.issued_on >= start, inv.c.issued_on <= end)
         .group_by(month, inv.c.subsidiary, line.c.universe, inv.c.currency)
         .order_by(month, inv.c.subsidiary, line.c.universe))
    return [dict(r) for r in conn.execute(q).mappings()]


def chart(storefront: str) -> dict:
    return {**ACCOUNTS["default"], **ACCOUNTS.get("storefronts", {}).get(storefront, {})}


def _issued_between(start: dt.date, end: dt.date, storefront: str | None) -> list:
    where = [inv.c.seq.is_not(None), inv.c.issued_on >= start, inv.c.issued_on <= end]
    if storefront:
        where.append(inv.c.subsidiary == storefront)
    return where


def count_documents(conn: Connection, start: dt.date, end: dt.date, storefront: str | None = None) -> int:
    return conn.execute(select(func.count()).select_from(inv).where(*_issued_between(start, end, storefront))).scalar_one()


def journal(conn: Connection, start: dt.date, end: dt.date, storefront: str | None = None,
            progress=None) -> Iterator[dict]:
    """The sales journal: one balanced entry per issued document (receivable against revenue by
    universe and tax by name), in chunks of documents."""
    where = _issued_between(start, end, storefront)
    cursor = 0
    while True:
        docs = conn.execute(
            select(inv.c.id, inv.c.kind, inv.c.series, inv.c.fiscal_year, inv.c.seq, inv.c.issued_on, inv.c.subsidiary,
                   inv.c.currency, inv.c.total_minor, inv.c.buyer_name, acct.c.handle)
            .join(acct, acct.c.id == inv.c.account_id).where(*where, inv.c.id > cursor).order_by(inv.c.id).limit(CHUNK)
        ).all()
        if not docs:
            return
        ids = [d.id for d in docs]
        revenue_rows: dict[int, list] = {}
        for r in conn.execute(select(line.c.invoice_id, line.c.universe, func.sum(line.c.net_minor))
                              .where(line.c.invoice_id.in_(ids)).group_by(line.c.invoice_id, line.c.universe)
                              .order_by(line.c.invoice_id, line.c.universe)):
            revenue_rows.setdefault(r[0], []).append((r[1], r[2]))
        tax_rows: dict[int, list] = {}
        for r in conn.execute(select(tax.c.invoice_id, tax.c.name, func.sum(tax.c.tax_minor))
                              .where(tax.c.invoice_id.in_(ids)).group_by(tax.c.invoice_id, tax.c.name)
                              .order_by(tax.c.invoice_id, tax.c.name)):
            if r[2]:
                tax_rows.setdefault(r[0], []).append((r[1], r[2]))
        for d in docs:
            accounts = chart(d.subsidiary)
            credit_note = d.kind == "credit_note"
            ref = number(d.series, d.fiscal_year, d.seq)
            base = {"date": d.issued_on, "journal": accounts["journal"], "journal_label": accounts["journal_label"],
                    "entry": ref, "document": ref, "currency": d.currency, "storefront": d.subsidiary,
                    "label": f"{accounts['credit_note_label' if credit_note else 'invoice_label']} {ref} {d.buyer_name}"}

            def entry(account: str, account_label: str, amount: int, debit_side: bool, aux=None, aux_label=None):
                debit = debit_side != credit_note  # a credit note reverses every side
                return {**base, "account": account, "account_label": account_label, "auxiliary": aux,
                        "auxiliary_label": aux_label, "debit": from_minor(amount, d.currency) if debit else Decimal(0),
                        "credit": Decimal(0) if debit else from_minor(amount, d.currency)}

            yield entry(accounts["receivable"], accounts["receivable_label"], d.total_minor, True, d.handle, d.buyer_name)
            for universe, amount in revenue_rows.get(d.id, []):
                yield entry(accounts["revenue"].get(universe, accounts["revenue"]["default"]),
                            accounts["revenue_label"] + f" ({universe})", amount, False)
            for name, amount in tax_rows.get(d.id, []):
                yield entry(accounts["tax"].get(name, accounts["tax"]["default"]), accounts["tax_label"] + f" ({name})",
                            amount, False)
        if progress:
            progress(len(docs))
        cursor = ids[-1]


JOURNAL_COLUMNS = ["date", "journal", "entry", "document", "account", "account_label", "auxiliary", "auxiliary_label",
                   "label", "debit", "credit", "currency", "storefront"]


def journal_csv(rows: Iterator[dict]) -> Iterator[str]:
    """The journal as CSV (comma separated, dot decimals, ISO dates), streamed."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, JOURNAL_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "date": row["date"].isoformat()})
        if buf.tell() > 65536:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


FEC_COLUMNS = ["JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib", "CompAuxNum",
               "CompAuxLib", "PieceRef", "PieceDate", "EcritureLib", "Debit", "Credit", "EcritureLet", "DateLet",
               "ValidDate", "Montantdevise", "Idevise"]


def fec_name(siren: str, year: int) -> str:
    """``<SIREN>FEC<closing date>.txt`` (article A47 A-1 of the Livre des procédures fiscales)."""
    return f"{siren}FEC{year}1231.txt"


def fec(rows: Iterator[dict]) -> Iterator[str]:
    """The Fichier des Écritures Comptables: pipe-separated, dates YYYYMMDD, comma decimals."""
    yield "|".join(FEC_COLUMNS) + "\n"
    for r in rows:
        day = r["date"].strftime("%Y%m%d")
        values = [r["journal"], r["journal_label"], r["entry"], day, r["account"], r["account_label"], r["auxiliary"] or "",
                  r["auxiliary_label"] or "", r["document"], day, r["label"], _fec_amount(r["debit"]),
                  _fec_amount(r["credit"]), "", "", day, "", ""]
        yield "|".join(str(v).replace("|", "/") for v in values) + "\n"


def _fec_amount(value: Decimal) -> str:
    return f"{value:.2f}".replace(".", ",")


def totals(rows: list[dict]) -> tuple[Decimal, Decimal]:
    return sum((r["debit"] for r in rows), Decimal(0)), sum((r["credit"] for r in rows), Decimal(0))

