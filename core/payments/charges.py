"""The charge queue: gateway charges queued by the renewal run and the dunning retries.

Each attempt is queued once (``status = 'queued'``, one idempotency key per attempt); the
charge workers (:func:`run_charges`) lease them in batches, call the gateway with bounded
concurrency, retry a timeout with the same key, and apply each answer once. An answer that
arrives again, late, or after the invoice was paid another way changes nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import String, cast, exists, literal, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from core import audit, notices, telemetry
from core.db import insert_ignore, lease_due
from core.models import Account, Invoice, Payment, Service
from core.payments.settlement import ACTOR_CHARGES, GATEWAY, IN_FLIGHT, money_in
from core.runtime import Runtime
from core.sim import GatewayUnavailable
from core.uow import unit_of_work

inv = Invoice.__table__
svc = Service.__table__
pay = Payment.__table__
acct = Account.__table__


log = logging.getLogger("univers.payments")


def queue_charges(conn: Connection, rt: Runtime, invoices: ColumnElement, attempt: str) -> int:
    """Queue one gateway charge per issued invoice matching ``invoices`` whose account pays by
    gateway and which has no charge in flight. ``attempt`` names the attempt: with the invoice
    it makes the idempotency key, so queueing the same attempt twice queues it once."""
    now = literal(rt.clock.now(), type_=pay.c.created_at.type)
    key = literal(attempt + ":") + cast(inv.c.id, String)
    return conn.execute(insert_ignore(conn, pay).from_select(
        ["account_id", "invoice_id", "method", "purpose", "amount_minor", "currency", "status", "idempotency_key",
         "attempts", "next_attempt_at", "created_at"],
        select(inv.c.account_id, inv.c.id, acct.c.payment_method, literal("invoice"), inv.c.total_minor, inv.c.currency,
               literal("queued"), key, literal(0), now, now)
        .join(acct, acct.c.id == inv.c.account_id)
        .where(invoices, inv.c.status == "issued", inv.c.total_minor > 0, acct.c.payment_method != "balance",
               ~exists().where(pay.c.invoice_id == inv.c.id, pay.c.status.in_(IN_FLIGHT))),
    ).execution_options(preserve_rowcount=True)).rowcount


@dataclass
class ChargeStats:
    succeeded: int = 0
    failed: int = 0
    pending: int = 0
    retried: int = 0
    cancelled: int = 0


def _claim_charges(conn: Connection, rt: Runtime, limit: int) -> tuple[list[dict], int]:
    """Lease due charges: (those to send to the gateway, how many were cancelled instead)."""
    now = rt.clock.now()
    ids = lease_due(conn, pay, "queued", now, rt.settings.outbox_lease_seconds, limit)
    if not ids:
        return [], 0
    # An invoice paid meanwhile (balance, the customer by card) is not charged again.
    moot = select(inv.c.id).where(inv.c.status != "issued")
    cancelled = conn.execute(update(pay).where(pay.c.id.in_(ids), pay.c.invoice_id.in_(moot))
                             .values(status="cancelled", settled_at=now).returning(pay.c.id)).scalars().all()
    telemetry.count(conn, "charges", len(cancelled), "cancelled")
    live = [i for i in ids if i not in set(cancelled)]
    rows = conn.execute(select(pay, acct.c.test_outcome).join(acct, acct.c.id == pay.c.account_id)
                        .where(pay.c.id.in_(live)).order_by(pay.c.id)).mappings().all()
    return [dict(r) for r in rows], len(cancelled)


def _call_gateway(rt: Runtime, item: dict) -> tuple[dict, str | None, str | None, str | None]:
    """(item, gateway ref, status, error). Runs in a worker thread: no database here."""
    try:
        ref, status = GATEWAY.charge(rt.settings, item["idempotency_key"], item["amount_minor"], item["currency"],
                                     item["test_outcome"])
        return item, ref, status, None
    except GatewayUnavailable as exc:
        return item, None, None, str(exc)
    except Exception as exc:  # an unexpected gateway error is a transient one: retried, then given up
        log.warning("charge %s: gateway error %r", item["id"], exc)
        return item, None, None, repr(exc)


def apply_charge(conn: Connection, rt: Runtime, item: dict, ref: str | None, status: str | None, error: str | None,
                 stats: ChargeStats) -> None:
    """Record the gateway's answer to a queued charge, once."""
    now = rt.clock.now()
    if status is None:
        # No answer: the gateway may have taken the money, so the charge is never called failed
        # (dunning would then charge again under a new key). The same attempt, with the same key,
        # again later, hourly once its first tries are spent, until the gateway answers; in flight
        # meanwhile, it holds back suspension (a payment stuck at the gateway never costs a service).
        conn.execute(update(pay).where(pay.c.id == item["id"], pay.c.status == "queued").values(
            locked_until=None, next_attempt_at=now + dt.timedelta(seconds=min(3600, 10 * 2 ** (item["attempts"] - 1))),
            failure_code="gateway_unavailable"))
        stats.retried += 1
        telemetry.count(conn, "charges", 1, "retry")
        return
    failure = None if status in ("succeeded", "pending") else (error and "gateway_unavailable") or "declined"
    moved = conn.execute(update(pay).where(pay.c.id == item["id"], pay.c.status == "queued").values(
        status=status, gateway_ref=ref, locked_until=None, failure_code=failure,
        settled_at=None if status == "pending" else now)).rowcount
    if not moved:
        return  # answered already (a worker whose lease ran out): applied once
    audit.record(conn, now, ACTOR_CHARGES, "payment", item["id"], f"payment.{status}", {"status": "queued"},
                 {"invoice_id": item["invoice_id"], "amount_minor": item["amount_minor"], "status": status,
                  "idempotency_key": item["idempotency_key"]})
    setattr(stats, status, getattr(stats, status) + 1)
    telemetry.count(conn, "charges", 1, status)
    if status == "succeeded":
        money_in(conn, rt, item, ACTOR_CHARGES)
    elif status == "failed":
        notices.queue(conn, rt, "payment_failed", select(literal(str(item["id"])), literal(item["account_id"]),
                                                 literal(None, svc.c.id.type), literal(item["invoice_id"])))


def run_charges(rt: Runtime, limit: int = 1000, batch: int = 100) -> ChargeStats:
    """Execute due queued charges (at most ``limit``): a leased batch at a time, at most
    ``settings.gateway_concurrency`` calls in flight, each answer applied in its own
    transaction. Safe on several workers."""
    stats = ChargeStats()
    seen = 0
    with ThreadPoolExecutor(max_workers=max(1, rt.settings.gateway_concurrency), thread_name_prefix="charge") as pool:
        while seen < limit:
            with unit_of_work(rt) as conn:
                items, cancelled = _claim_charges(conn, rt, min(batch, limit - seen))
            if not items and not cancelled:
                break
            seen += len(items) + cancelled
            stats.cancelled += cancelled
            for item, ref, status, error in pool.map(lambda i: _call_gateway(rt, i), items):
                with unit_of_work(rt) as conn:
                    apply_charge(conn, rt, item, ref, status, error, stats)
    return stats


