"""Payments: paying an invoice, the prepaid balance, and settlement.

A customer paying an invoice or topping up waits for the gateway's answer; the renewal run and
the dunning retries queue their charges instead (:mod:`core.payments.charges`). Money for an
invoice already paid goes to the prepaid balance, never lost.

Settlement is where money becomes service: an invoice paid moves its services' expiry to the
end of the paid period, in the same transaction; a suspended service is reactivated and a new
one is queued for provisioning. Settlement is set-based so the renewal run and a single
payment share it.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import String, and_, cast, exists, func, insert, literal, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from core import audit, sim
from core.audit import Actor
from core.errors import Conflict, GatewayUnavailable, InvalidInput, InvalidState, NotFound
from core.i18n import N_
from core.lifecycle.state import transition
from core.models import (
    Account,
    BalanceEntry,
    Invoice,
    InvoiceLine,
    Order,
    OutboxItem,
    Payment,
    Service,
)
from core.runtime import Runtime
from core.sim import TestGateway

inv = Invoice.__table__
line = InvoiceLine.__table__
svc = Service.__table__
pay = Payment.__table__
acct = Account.__table__
ledger = BalanceEntry.__table__
outbox = OutboxItem.__table__
orders = Order.__table__

METHODS = ("balance", "test")
TEST_OUTCOMES = ("success", "decline", "pending")


def check_method(method: str, outcome: str | None) -> None:
    if method not in METHODS:
        raise InvalidInput(N_("Unknown payment method {method}; use one of: {choices}."), code="invalid_payment_method",
                           method=method, choices=", ".join(METHODS))
    if method == "test" and (outcome or "success") not in TEST_OUTCOMES:
        raise InvalidInput(N_("Unknown test gateway outcome {outcome}; use one of: {choices}."), code="invalid_payment_method",
                           outcome=outcome, choices=", ".join(TEST_OUTCOMES))


GATEWAY = TestGateway()
ACTOR_CHARGES = Actor.system("charges")


def _charge_now(rt: Runtime, key: str, amount_minor: int, currency: str, outcome: str | None) -> tuple[str, str]:
    """A charge the customer waits for (an order, a top-up): a gateway that does not answer in
    ``settings.gateway_timeout`` is a clear 503 (``gateway_unavailable``), the transaction rolled back."""
    try:
        return GATEWAY.charge(rt.settings, key, amount_minor, currency, outcome)
    except sim.GatewayUnavailable as exc:
        raise GatewayUnavailable() from exc


def pay_invoice(conn: Connection, rt: Runtime, invoice_id: int, method: str, outcome: str | None, actor: Actor,
                gateway_key: str | None = None) -> dict:
    """Charge an issued invoice once. Returns the payment as a dict (status may be failed).
    ``gateway_key``: the gateway's idempotency key, derived from the caller's own key when the
    request may come again (an order: a gateway that took the charge but answered too late gets
    the retry under the same key and answers it, never charging twice); a fresh one otherwise."""
    check_method(method, outcome)
    now = rt.clock.now()
    row = conn.execute(select(inv).where(inv.c.id == invoice_id)).mappings().one_or_none()
    if row is None:
        raise NotFound(what="invoice")
    if row["status"] != "issued":
        raise InvalidState(what="invoice", state=row["status"], code="invoice_not_payable")
    pending = conn.execute(select(pay.c.id).where(pay.c.invoice_id == invoice_id, pay.c.status == "pending")).first()
    if pending:
        raise Conflict(N_("A payment for this invoice is already pending."), code="payment_pending")
    amount = row["total_minor"]
    values = dict(account_id=row["account_id"], invoice_id=invoice_id, method=method, purpose="invoice",
                  amount_minor=amount, currency=row["currency"], created_at=now)
    if method == "balance":
        debited = conn.execute(
            update(acct).where(acct.c.id == row["account_id"], acct.c.balance_minor >= amount)
            .values(balance_minor=acct.c.balance_minor - amount)
        ).rowcount
        status, ref = ("succeeded", None) if debited else ("failed", None)
        values["failure_code"] = None if debited else "insufficient_balance"
    else:
        ref, status = _charge_now(rt, gateway_key or f"pay-{uuid.uuid4().hex}", amount, row["currency"], outcome)
        values["failure_code"] = "declined" if status == "failed" else None
    values.update(status=status, gateway_ref=ref, settled_at=now if status != "pending" else None)
    payment_id = conn.execute(insert(pay).values(**values).returning(pay.c.id)).scalar_one()
    if method == "balance" and status == "succeeded":
        conn.execute(insert(ledger).values(account_id=row["account_id"], amount_minor=-amount, reason="invoice",
                                           invoice_id=invoice_id, payment_id=payment_id, created_at=now))
    audit.record(conn, now, actor, "payment", payment_id, f"payment.{status}", None,
                 {"invoice_id": invoice_id, "method": method, "amount_minor": amount, "status": status})
    if status == "succeeded":
        mark_paid(conn, rt, inv.c.id == invoice_id, actor)
    return {**values, "id": payment_id}


def mark_paid(conn: Connection, rt: Runtime, where: ColumnElement, actor: Actor) -> int:
    """Mark issued invoices matching ``where`` paid, then settle what they paid for."""
    now = rt.clock.now()
    paid = conn.execute(
        update(inv).where(where, inv.c.status == "issued").values(status="paid", paid_at=now)
    ).rowcount
    if paid:
        settle(conn, rt, and_(where, inv.c.paid_at == now), actor)
    return paid


def settle(conn: Connection, rt: Runtime, where: ColumnElement, actor: Actor) -> None:
    """Serve what the paid invoices matching ``where`` paid for (set-based).

    * every service's expiry moves to the end of its latest paid period;
    * a suspended service whose expiry is now in the future is reactivated (outbox: resume);
    * a pending service is queued for provisioning (outbox: provision), its order marked paid.
    """
    now = rt.clock.now()
    today = now.date()
    paid_lines = (
        select(line.c.service_id, func.max(line.c.period_end).label("paid_to"))
        .select_from(line.join(inv, inv.c.id == line.c.invoice_id))
        .where(where, inv.c.status == "paid", line.c.kind == "recurring", line.c.service_id.is_not(None))
        .group_by(line.c.service_id)
        .subquery()
    )
    conn.execute(
        update(svc).where(svc.c.id == paid_lines.c.service_id, svc.c.expires_on < paid_lines.c.paid_to)
        .values(expires_on=paid_lines.c.paid_to, updated_at=now)
    )
    touched = select(line.c.service_id).select_from(line.join(inv, inv.c.id == line.c.invoice_id)).where(
        where, inv.c.status == "paid", line.c.service_id.is_not(None))

    # Reactivate what the money paid for (few rows: suspended services paying late). A paid
    # period is always served in full: the days spent suspended are added back to it.
    revived = conn.execute(
        select(svc.c.id, svc.c.suspended_on, svc.c.expires_on, svc.c.billed_until)
        .where(svc.c.id.in_(touched), svc.c.state == "suspended", svc.c.expires_on > svc.c.suspended_on)
    ).all()
    if revived:
        for r in revived:
            lost = dt.timedelta(days=max(0, (today - r.suspended_on).days))
            conn.execute(update(svc).where(svc.c.id == r.id).values(
                expires_on=r.expires_on + lost, billed_until=max(r.billed_until, r.expires_on + lost)))
        transition(conn, rt, [r.id for r in revived], "active", "service.reactivated", actor, outbox_action="resume",
                   values={"suspended_on": None})

    # New services: queue provisioning once (unique outbox key), mark their orders paid.
    pending = select(svc.c.id).where(svc.c.id.in_(touched), svc.c.state == "pending")
    conn.execute(
        insert(outbox).from_select(
            ["action", "service_id", "key", "status", "attempts", "next_attempt_at", "created_at"],
            select(literal("provision"), svc.c.id, literal("provision:") + cast(svc.c.id, String), literal("pending"),
                   literal(0), literal(now, type_=outbox.c.created_at.type), literal(now, type_=outbox.c.created_at.type))
            .where(svc.c.id.in_(pending), ~exists().where(outbox.c.key == literal("provision:") + cast(svc.c.id, String))),
        )
    )
    order_ids = conn.execute(
        select(orders.c.id).where(orders.c.invoice_id.in_(select(inv.c.id).where(where, inv.c.status == "paid")),
                                  orders.c.status == "awaiting_payment")
    ).scalars().all()
    if order_ids:
        conn.execute(update(orders).where(orders.c.id.in_(order_ids)).values(status="paid", updated_at=now))
        audit.record_many(conn, now, actor, "order", "order.paid", [(i, {"status": "awaiting_payment"}, {"status": "paid"}) for i in order_ids])
        conn.info.setdefault("univers_paid_orders", []).extend(order_ids)


def resolve_pending(conn: Connection, rt: Runtime, gateway_ref: str, outcome: str, actor: Actor) -> dict:
    """The test gateway's callback for a pending charge. Applied exactly once."""
    if outcome not in ("succeeded", "failed"):
        raise InvalidInput(N_("A pending payment resolves to succeeded or failed."), code="invalid_outcome")
    now = rt.clock.now()
    row = conn.execute(select(pay).where(pay.c.gateway_ref == gateway_ref).with_for_update()).mappings().one_or_none()
    if row is None:
        raise NotFound(what="payment")
    if row["status"] != "pending":
        return dict(row)  # a duplicate callback changes nothing
    conn.execute(update(pay).where(pay.c.id == row["id"], pay.c.status == "pending")
                 .values(status=outcome, settled_at=now, failure_code=None if outcome == "succeeded" else "declined"))
    audit.record(conn, now, actor, "payment", row["id"], f"payment.{outcome}", {"status": "pending"}, {"status": outcome})
    if outcome == "succeeded":
        money_in(conn, rt, row, actor)
    return dict(conn.execute(select(pay).where(pay.c.id == row["id"])).mappings().one())


def money_in(conn: Connection, rt: Runtime, payment: dict, actor: Actor) -> None:
    """Money received: it pays its invoice, or, if that invoice was paid meanwhile (a late
    answer), or the payment is a top-up, it goes to the prepaid balance."""
    if payment["purpose"] == "invoice" and mark_paid(conn, rt, inv.c.id == payment["invoice_id"], actor):
        return
    reason = "topup" if payment["purpose"] == "topup" else "overpayment"
    credit_balance(conn, rt, payment["account_id"], payment["amount_minor"], payment["id"], actor, reason=reason)


def credit_balance(conn: Connection, rt: Runtime, account_id: int, amount: int, payment_id: int | None, actor: Actor,
                   reason: str = "topup", invoice_id: int | None = None) -> None:
    """Credit the prepaid balance (a top-up, or a credit note), then pay open invoices from it,
    oldest first."""
    now = rt.clock.now()
    conn.execute(update(acct).where(acct.c.id == account_id).values(balance_minor=acct.c.balance_minor + amount))
    conn.execute(insert(ledger).values(account_id=account_id, amount_minor=amount, reason=reason,
                                       payment_id=payment_id, invoice_id=invoice_id, created_at=now))
    open_invoices = conn.execute(
        select(inv.c.id).where(inv.c.account_id == account_id, inv.c.status == "issued", inv.c.kind != "credit_note",
                               ~exists().where(pay.c.invoice_id == inv.c.id, pay.c.status == "pending"))
        .order_by(inv.c.due_on, inv.c.id)
    ).scalars().all()
    for invoice_id in open_invoices:
        balance = conn.execute(select(acct.c.balance_minor).where(acct.c.id == account_id)).scalar_one()
        total = conn.execute(select(inv.c.total_minor).where(inv.c.id == invoice_id)).scalar_one()
        if total > balance:
            break
        pay_invoice(conn, rt, invoice_id, "balance", None, actor)


def top_up(conn: Connection, rt: Runtime, account_id: int, amount_minor: int, method: str, outcome: str | None, actor: Actor) -> dict:
    """Add money to the prepaid balance through the gateway (the test one here)."""
    if method != "test":
        raise InvalidInput(N_("A top-up is paid through a payment gateway, not from the balance."), code="invalid_payment_method")
    check_method(method, outcome)
    if amount_minor <= 0:
        raise InvalidInput(N_("The amount must be positive."), code="invalid_amount")
    now = rt.clock.now()
    currency = conn.execute(select(acct.c.subsidiary).where(acct.c.id == account_id)).scalar_one()
    currency = rt.storefronts[currency].currency
    ref, status = _charge_now(rt, f"topup-{uuid.uuid4().hex}", amount_minor, currency, outcome)
    payment_id = conn.execute(insert(pay).values(
        account_id=account_id, invoice_id=None, method=method, purpose="topup", amount_minor=amount_minor,
        currency=currency, status=status, gateway_ref=ref, created_at=now,
        settled_at=now if status != "pending" else None, failure_code="declined" if status == "failed" else None,
    ).returning(pay.c.id)).scalar_one()
    audit.record(conn, now, actor, "payment", payment_id, f"payment.{status}", None,
                 {"purpose": "topup", "amount_minor": amount_minor, "status": status})
    if status == "succeeded":
        credit_balance(conn, rt, account_id, amount_minor, payment_id, actor)
    return dict(conn.execute(select(pay).where(pay.c.id == payment_id)).mappings().one())


IN_FLIGHT = ("queued", "pending")  # a payment in flight: it blocks suspension, termination and deletion


def pending_payment_for(service_id_col) -> ColumnElement:
    """SQL: a payment is queued or pending on an invoice that bills this service. It blocks
    suspension, termination and deletion."""
    return exists().where(
        line.c.service_id == service_id_col,
        pay.c.invoice_id == line.c.invoice_id,
        pay.c.status.in_(IN_FLIGHT),
    )
