"""Closing an account once nothing runs and nothing is owed: personal data erased, invoices kept."""

from __future__ import annotations

from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import Connection

from core import audit
from core.audit import Actor
from core.errors import Conflict, NotFound
from core.i18n import N_
from core.portability.format import (
    acct,
    changes,
    events,
    inv,
    keys,
    load_json,
    notes,
    pay,
    svc,
)
from core.runtime import Runtime

LIVE_STATES = ("pending", "active", "suspended")
CLOSED_NAME = "Closed account"
PERSONAL = frozenset({"name", "email", "vat_number", "region", "vat_confirmation"})


def close_account(conn: Connection, rt: Runtime, account_id: int, actor: Actor) -> dict:
    """Close an account for good. Refused (409) while it is a contact of a service that is
    pending, active or suspended (``account_has_services``), has an issued invoice not paid
    (``account_has_unpaid``) or a payment queued or pending (``account_has_pending_payments``).

    Then its personal data is erased (name, e-mail, VAT number and its confirmation, region;
    also from its own audit events and its sent notifications), keeping what accounting needs
    (storefront, country, tax zone, handle); its API keys are revoked, its pending contact
    changes cancelled, and ``closed_at`` set: it authenticates no more. Invoices and credit
    notes are not touched: they keep the buyer as invoiced, as the law requires. What is left on
    the prepaid balance stays on the ledger."""
    row = conn.execute(select(acct).where(acct.c.id == account_id).with_for_update()).mappings().one_or_none()
    if row is None or row["is_staff"]:
        raise NotFound(what="customer")
    if row["closed_at"] is not None:
        raise Conflict(N_("This account is already closed."), code="account_closed")
    live = conn.execute(select(func.count()).select_from(svc).where(
        or_(svc.c.admin_account_id == account_id, svc.c.tech_account_id == account_id,
            svc.c.billing_account_id == account_id, svc.c.account_id == account_id),
        svc.c.state.in_(LIVE_STATES))).scalar_one()
    if live:
        raise Conflict(N_("Services not yet ended: {count}. Stop them, or hand them to another contact, and close the "
                          "account once they have ended."), code="account_has_services", count=live)
    unpaid = conn.execute(select(func.count()).select_from(inv).where(
        inv.c.account_id == account_id, inv.c.status == "issued")).scalar_one()
    if unpaid:
        raise Conflict(N_("Invoices not yet paid: {count}. Pay them before closing the account."),
                       code="account_has_unpaid", count=unpaid)
    in_flight = conn.execute(select(func.count()).select_from(pay).where(
        pay.c.account_id == account_id, pay.c.status.in_(("queued", "pending")))).scalar_one()
    if in_flight:
        raise Conflict(N_("Payments still in progress: {count}. Close the account once they are settled."),
                       code="account_has_pending_payments", count=in_flight)
    now = rt.clock.now()
    erased = dict(name=CLOSED_NAME, email=f"closed-{account_id}@invalid", vat_number=None, vat_verified=False,
                  vat_confirmed_on=None, vat_confirmation=None, region=None, test_outcome=None, einvoice=None, closed_at=now)
    conn.execute(update(acct).where(acct.c.id == account_id).values(**erased))
    revoked = conn.execute(update(keys).where(keys.c.account_id == account_id, keys.c.revoked_at.is_(None))
                           .values(revoked_at=now)).rowcount
    conn.execute(update(changes).where(changes.c.status == "pending", or_(
        changes.c.from_account_id == account_id, changes.c.to_account_id == account_id,
        changes.c.requested_by == account_id)).values(status="cancelled", decided_at=now))
    conn.execute(update(notes).where(notes.c.account_id == account_id, notes.c.status != "pending")
                 .values(recipient=None, subject=None, body=None))
    _scrub_audit(conn, account_id)
    audit.record(conn, now, actor, "account", account_id, "account.closed", None,
                 {"closed_at": now.isoformat(), "api_keys_revoked": revoked})
    return {**row, **erased}


def _scrub_audit(conn: Connection, account_id: int) -> None:
    """Personal values leave the account's own audit events; the events themselves stay."""
    rows = conn.execute(select(events.c.id, events.c.before, events.c.after).where(
        events.c.entity == "account", events.c.entity_id == account_id)).all()
    for event_id, before, after in rows:
        values = {}
        for name, text in (("before", before), ("after", after)):
            value = load_json(text)
            if isinstance(value, dict) and PERSONAL & value.keys():
                values[name] = audit._dump({k: (None if k in PERSONAL else v) for k, v in value.items()})
        if values:
            conn.execute(update(events).where(events.c.id == event_id).values(**values))
