"""Sending fiscal records to the tax agency (Spain's VERI*FACTU), through the
``univers_submit_fiscal_record`` hook: the core knows the order and keeps the answers, a transport
plugin (certificate, endpoint, SOAP) does the sending.

Records go in chain order; a chain stops at its first record the transport could not deliver
(``retry``), so that the agency never receives a record before the one it links to. An answer
(``accepted`` with the agency's reference, or ``rejected`` with why) is written once, in
``fiscal_submission``; the record itself never changes. The hook is called outside any database
transaction (it waits on the network).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
from sqlalchemy import insert, select

from core.billing import chain, invoicing
from core.billing.views import invoice_read
from core.context import FiscalSubmission
from core.models import Account, FiscalRecord
from core.models import FiscalSubmission as SubmissionRow
from core.uow import unit_of_work

rec = FiscalRecord.__table__
done = SubmissionRow.__table__
SUBMITTED = ("es",)  # Portugal's records reach the AT in the monthly SAF-T (PT) file, not one by one


@dataclass
class SubmissionSummary:
    accepted: int = 0
    rejected: int = 0
    waiting: int = 0  # records of chains stopped by a retry, or with no transport
    no_transport: bool = False
    answers: list[tuple[int, str]] = field(default_factory=list)  # (record id, status)


def pending(conn, limit: int) -> list[dict]:
    return [dict(r) for r in conn.execute(
        select(rec).outerjoin(done, done.c.record_id == rec.c.id)
        .where(done.c.record_id.is_(None), rec.c.scheme.in_(SUBMITTED))
        .order_by(rec.c.subsidiary, rec.c.chain, rec.c.position).limit(limit)).mappings()]


def submit(rt, limit: int = 1000) -> SubmissionSummary:
    """Send up to ``limit`` records not yet answered, in chain order; see the module's doc."""
    out = SubmissionSummary()
    with rt.engine.connect() as conn:
        records = pending(conn, limit)
    stopped: set[tuple[str, str]] = set()
    for record in records:
        key = (record["subsidiary"], record["chain"])
        if key in stopped or out.no_transport:
            out.waiting += 1
            continue
        with rt.engine.connect() as conn:
            row, lines, taxes, payments = invoicing.load_invoice(conn, None, record["invoice_id"])
            locale = conn.execute(select(Account.__table__.c.language).where(Account.__table__.c.id == row["account_id"])).scalar_one()
            fiscal = chain.context(conn, rt, row)
        view = msgspec.to_builtins(invoice_read(rt, row, lines, taxes, payments, locale))
        mine = next(r for r in fiscal["records"] if r["id"] == record["id"])
        receipt = rt.pm.hook.univers_submit_fiscal_record(ctx=FiscalSubmission(record["subsidiary"], mine, view, fiscal))
        if receipt is None:
            out.no_transport = True
            out.waiting += 1
            continue
        if receipt.status not in ("accepted", "rejected"):  # retry, or an answer the core does not know
            stopped.add(key)
            out.waiting += 1
            continue
        with unit_of_work(rt) as conn:
            conn.execute(insert(done).values(record_id=record["id"], status=receipt.status,
                                             reference=(receipt.reference or "")[:64] or None,
                                             detail=(receipt.detail or "")[:500] or None, submitted_at=rt.clock.now()))
        setattr(out, receipt.status, getattr(out, receipt.status) + 1)
        out.answers.append((record["id"], receipt.status))
    return out
