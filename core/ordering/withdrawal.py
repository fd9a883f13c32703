"""The consumer's right of withdrawal from a distance contract (EU and UK: 14 days).

The rule is data per storefront (``withdrawal_days`` in ``core/data/subsidiaries.json``; 0: no
such right there). A consumer (an account of kind ``person``) may withdraw from an order until
the end of the ``withdrawal_days``-th day after it, unless it waived the right when it ordered
(``waive_withdrawal``: delivery at once, recorded on the order). Business customers have no
right of withdrawal.

Withdrawing ends the order's services at once (their infrastructure is told through the
outbox) and credits the order's invoice with a credit note, refunded to the prepaid balance:
the setup fees in full, each period **prorated** for what was used, since the service started at
the customer's request on the order day: a period of ``P`` days used ``U`` days is refunded
``net − round(net × U / P)`` (half up, once per line). Withdrawing twice is refused.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from core import audit
from core.audit import Actor
from core.billing.credit_notes import issue_credit_note
from core.db import fetch_owned
from core.errors import Conflict, InvalidInput
from core.i18n import N_
from core.lifecycle.state import transition
from core.models import Account, InvoiceLine, Order, Service
from core.money import from_minor
from core.runtime import Runtime

orders, svc, line = Order.__table__, Service.__table__, InvoiceLine.__table__


def deadline(order: dict, days: int) -> dt.date:
    """The last day of the withdrawal period (included)."""
    return order["created_at"].date() + dt.timedelta(days=days)


def refund(net_minor: int, kind: str, start: dt.date, end: dt.date, today: dt.date) -> int:
    """What a withdrawal refunds of an invoice line: a setup fee in full, a period for its unused part."""
    if kind == "setup" or end <= start:
        return net_minor
    used = min(max((today - start).days, 0), (end - start).days)
    kept = int((Decimal(net_minor) * used / (end - start).days).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return net_minor - kept


def withdraw(conn: Connection, rt: Runtime, account: Account, actor: Actor, order_id: int) -> dict:
    """Withdraw a consumer's order: its services end, its invoice is credited (prorated)."""
    order = fetch_owned(conn, orders, order_id, account.id, "order")
    sub = rt.storefronts[order["subsidiary"]]
    today, now = rt.clock.today(), rt.clock.now()
    if account.kind != "person":
        raise InvalidInput(N_("Business customers have no right of withdrawal."), code="withdrawal_business")
    if not sub.withdrawal_days:
        raise InvalidInput(N_("Orders from the {storefront} storefront carry no right of withdrawal."),
                           code="no_withdrawal_right", storefront=sub.code)
    if order["withdrawn_at"] is not None:
        raise Conflict(N_("This order was already withdrawn."), code="already_withdrawn")
    if order["withdrawal_waived_at"] is not None:
        raise InvalidInput(N_("You waived the right of withdrawal when you ordered, for delivery at once."),
                           code="withdrawal_waived")
    last = deadline(order, sub.withdrawal_days)
    if today > last:
        raise InvalidInput(N_("The withdrawal period ended on {date}."), code="withdrawal_period_over", date=last)
    if order["invoice_id"] is None or order["status"] in ("awaiting_payment", "cancelled"):
        raise Conflict(N_("Only a paid order can be withdrawn."), code="order_not_paid")
    services = list(conn.execute(select(svc.c.id).where(svc.c.order_id == order_id)).scalars())
    transition(conn, rt, services, "terminated", "service.withdrawn", actor, outbox_action="terminate",
               values={"terminated_on": today, "renewal_mode": "terminate"})
    lines = conn.execute(select(line.c.id, line.c.kind, line.c.net_minor, line.c.period_start, line.c.period_end)
                         .where(line.c.invoice_id == order["invoice_id"]).order_by(line.c.id)).all()
    amounts = {ln.id: refund(ln.net_minor, ln.kind, ln.period_start, ln.period_end, today) for ln in lines}
    credit_id = None
    if any(amounts.values()):
        credit_id, _ = issue_credit_note(conn, rt, order["invoice_id"], {
            "reason": "Withdrawal (right of withdrawal)",
            "lines": [{"line_id": i, "amount": str(from_minor(a, order["currency"]))} for i, a in amounts.items() if a > 0],
        }, f"withdrawal:{order_id}", actor)
    conn.execute(update(orders).where(orders.c.id == order_id).values(withdrawn_at=now, status="withdrawn", updated_at=now))
    audit.record(conn, now, actor, "order", order_id, "order.withdrawn", {"status": order["status"]},
                 {"status": "withdrawn", "credit_note_id": credit_id, "refund_minor": sum(amounts.values())})
    return {"order_id": order_id, "credit_note_id": credit_id, "refund_minor": sum(amounts.values()),
            "currency": order["currency"], "services": services, "deadline": last}
