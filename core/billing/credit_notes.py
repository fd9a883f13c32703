"""Credit notes: the only way to correct an issued invoice.

A credit note is an invoice of kind ``credit_note`` in the storefront's credit note series,
numbered by the same gapless counters, that references the invoice it corrects and copies the
credited lines with their kind and tax, each pointing at the line it credits (amounts are
positive; the document type says "credit"). Its lines bill no service (``service_id`` is empty),
so they never count as a paid period.

* **full**: every line, for what is left to credit;
* **partial**: some lines, each for at most what is left of it.

Money: what the customer paid for the credited part goes back to the prepaid balance (and pays
open invoices from it, oldest first). A full credit of an invoice that was never paid closes it
(status ``credited``): nothing is owed any more, and dunning no longer chases it. The same
Idempotency-Key for the same invoice returns the same credit note.
"""

from __future__ import annotations

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from core import audit
from core.audit import Actor
from core.billing import invoicing
from core.errors import OUT_OF_RANGE, Conflict, InvalidInput, NotFound
from core.i18n import N_
from core.models import BalanceEntry, Invoice, InvoiceLine
from core.money import AmountOutOfRange, MoneyError, to_minor
from core.runtime import Runtime

inv = Invoice.__table__
line = InvoiceLine.__table__
ledger = BalanceEntry.__table__
CREDITABLE = ("issued", "paid")


def credited_so_far(conn: Connection, line_ids: list[int]) -> dict[int, int]:
    rows = conn.execute(
        select(line.c.credited_line_id, func.sum(line.c.net_minor))
        .select_from(line.join(inv, inv.c.id == line.c.invoice_id))
        .where(line.c.credited_line_id.in_(line_ids), inv.c.kind == "credit_note")
        .group_by(line.c.credited_line_id)
    ).all()
    return {line_id: amount for line_id, amount in rows}


def issue_credit_note(conn: Connection, rt: Runtime, invoice_id: int, request: dict, key: str, actor: Actor) -> tuple[int, bool]:
    """Credit an issued invoice in full (no ``lines``) or in part. Returns (credit note id, created)."""
    if not key or len(key) > 128:
        raise InvalidInput(N_("An Idempotency-Key header (at most 128 characters) is required."), code="idempotency_key_required")
    original = conn.execute(select(inv).where(inv.c.id == invoice_id).with_for_update()).mappings().one_or_none()
    if original is None:
        raise NotFound(N_("No such {what}."), what="invoice")
    existing = conn.execute(select(inv.c.id).where(inv.c.credited_invoice_id == invoice_id, inv.c.idempotency_key == key)).scalar()
    if existing is not None:
        return existing, False
    if original["kind"] == "credit_note" or original["status"] not in CREDITABLE:
        raise Conflict(N_("Only an issued invoice can be credited."), code="not_creditable")
    reason = str(request.get("reason") or "").strip()
    if not reason or len(reason) > 500:
        raise InvalidInput(N_("Give the reason for the credit note (at most 500 characters)."), code="reason_required")
    lines = {r["id"]: dict(r) for r in conn.execute(select(line).where(line.c.invoice_id == invoice_id)).mappings()}
    left = {i: r["net_minor"] - credited_so_far(conn, list(lines)).get(i, 0) for i, r in lines.items()}
    wanted = _wanted(request.get("lines"), lines, left, original["currency"])
    if not wanted:
        raise Conflict(N_("This invoice has already been credited in full."), code="already_credited")
    now, today = rt.clock.now(), rt.clock.today()
    sub = rt.storefronts[original["subsidiary"]]
    credit_id = conn.execute(insert(inv).values(
        account_id=original["account_id"], subsidiary=original["subsidiary"], currency=original["currency"],
        kind="credit_note", status="draft", series=sub.credit_note_series, due_on=today, created_at=now,
        buyer_name=original["buyer_name"], buyer_country=original["buyer_country"], buyer_region=original["buyer_region"],
        buyer_vat_number=original["buyer_vat_number"], credited_invoice_id=invoice_id, reason=reason, idempotency_key=key,
    ).returning(inv.c.id)).scalar_one()
    conn.execute(insert(line), [{
        "invoice_id": credit_id, "service_id": None, "kind": lines[i]["kind"], "universe": lines[i]["universe"],
        "product_code": lines[i]["product_code"], "plan_code": lines[i]["plan_code"],
        "period_start": lines[i]["period_start"], "period_end": lines[i]["period_end"],
        "quantity": lines[i]["quantity"] if amount == lines[i]["net_minor"] else 1,
        "unit_price_minor": lines[i]["unit_price_minor"] if amount == lines[i]["net_minor"] else amount,
        "net_minor": amount, "tax_name": lines[i]["tax_name"], "tax_category": lines[i]["tax_category"],
        "tax_rate_ppm": lines[i]["tax_rate_ppm"], "tax2_name": lines[i]["tax2_name"], "tax2_rate_ppm": lines[i]["tax2_rate_ppm"],
        "credited_line_id": i,
    } for i, amount in wanted.items()])
    invoicing.finalise(conn, inv.c.id == credit_id)
    invoicing.issue(conn, inv.c.id == credit_id, today, rt)
    conn.info.setdefault("univers_issued_invoices", []).append(credit_id)
    total = conn.execute(select(inv.c.total_minor).where(inv.c.id == credit_id)).scalar_one()
    full = sum(wanted.values()) == sum(left.values())
    # A credit note is settled at once: it is never an amount the customer owes.
    conn.execute(update(inv).where(inv.c.id == credit_id).values(status="paid", paid_at=now))
    if original["status"] == "paid":
        _refund_to_balance(conn, rt, original["account_id"], credit_id, total, actor)
    elif full:
        conn.execute(update(inv).where(inv.c.id == invoice_id).values(status="credited"))
        audit.record(conn, now, actor, "invoice", invoice_id, "invoice.credited", {"status": "issued"}, {"status": "credited"})
    else:  # part of an unpaid invoice: the credit waits on the balance for the rest to be paid
        _refund_to_balance(conn, rt, original["account_id"], credit_id, total, actor)
    audit.record(conn, now, actor, "invoice", credit_id, "credit_note.issued", None,
                 {"credits": invoice_id, "total_minor": total, "full": full, "reason": reason})
    return credit_id, True


def _wanted(requested, lines: dict[int, dict], left: dict[int, int], currency: str) -> dict[int, int]:
    """line id → amount to credit (minor units), checked against what is left of each line."""
    if not requested:
        return {i: amount for i, amount in left.items() if amount > 0}
    out: dict[int, int] = {}
    problems = []
    for index, item in enumerate(requested):
        where = f"lines[{index}]"
        line_id = item.get("line_id")
        if line_id not in lines:
            problems.append({"field": f"{where}.line_id", "code": "unknown_line", "message": N_("This line is not on the invoice.")})
            continue
        try:
            amount = left[line_id] if item.get("amount") is None else to_minor(item["amount"], currency)
        except AmountOutOfRange as exc:
            problems.append({"field": f"{where}.amount", "code": "amount_out_of_range",
                             "params": {"amount": str(item["amount"])[:40], "maximum": exc.maximum, "currency": currency},
                             "message": OUT_OF_RANGE})
            continue
        except MoneyError:
            problems.append({"field": f"{where}.amount", "code": "invalid_amount", "params": {"currency": currency},
                             "message": N_("The amount is not valid in {currency}.")})
            continue
        if amount <= 0 or amount + out.get(line_id, 0) > left[line_id]:
            problems.append({"field": f"{where}.amount", "code": "credit_exceeds_line",
                             "message": N_("A line cannot be credited for more than is left of it.")})
            continue
        out[line_id] = out.get(line_id, 0) + amount
    if problems:
        raise InvalidInput(N_("Some lines of the credit note cannot be accepted."), code="invalid_credit_note", errors=problems)
    return out


def _refund_to_balance(conn: Connection, rt: Runtime, account_id: int, credit_id: int, amount: int, actor: Actor) -> None:
    from core.payments.settlement import credit_balance

    credit_balance(conn, rt, account_id, amount, None, actor, reason="credit_note", invoice_id=credit_id)
