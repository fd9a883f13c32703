"""Mails about tickets, queued in the step that decides them (an insert under a unique key, so a
step run twice queues once); :mod:`core.notify.support_mails` renders them in each recipient's
language when the mail worker sends them."""

from __future__ import annotations

import json

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from core.db import insert_ignore
from core.models import Account, Notification
from core.runtime import Runtime

acct = Account.__table__
note = Notification.__table__
KINDS = ("ticket_answered", "ticket_breached", "ticket_escalated", "abuse_case_opened", "abuse_decided")
# Who hears of a ticket's alerts: its queue's desk, then the administrators too from escalation 2 on.
DESKS = {"support": "support_agent", "abuse": "abuse_desk"}
MANAGERS_FROM = 3  # the alert level (1 the warning, 2 the breach) from which administrators are told as well


def queue_mail(conn: Connection, rt: Runtime, kind: str, ticket: dict, account_ids, suffix: str,
               payload: dict | None = None) -> None:
    """Queue a mail about a ticket to each of these accounts (staff and closed accounts aside), once:
    the key names the ticket, the step and the recipient (``<kind>:<ticket>:<suffix>:<account>``).
    :mod:`core.notify.support_mails` renders it in the recipient's language."""
    ids = sorted({i for i in account_ids if i is not None})
    if ids:
        _queue(conn, rt, kind, ticket, suffix, payload, select(acct.c.id).where(
            acct.c.id.in_(ids), acct.c.is_staff.is_(False), acct.c.closed_at.is_(None)))


def queue_staff_mail(conn: Connection, rt: Runtime, ticket: dict, level: int, payload: dict) -> None:
    """Tell the staff of a ticket's alert, once per level: the queue's desk, and the administrators
    from ``MANAGERS_FROM`` on; of each role, those of the ticket's storefront (all, if it has none)."""
    for role in [DESKS[ticket["queue"]]] + (["administrator"] if level >= MANAGERS_FROM else []):
        staff = and_(acct.c.is_staff.is_(True), acct.c.closed_at.is_(None), acct.c.staff_role == role)
        local = select(acct.c.id).where(staff, acct.c.subsidiary == ticket["storefront"])
        who = local if conn.execute(local.limit(1)).first() else select(acct.c.id).where(staff)
        _queue(conn, rt, "ticket_escalated", ticket, str(level), {**payload, "level": level}, who)


def _queue(conn: Connection, rt: Runtime, kind: str, ticket: dict, suffix: str, payload: dict | None, who) -> None:
    now = rt.clock.now()
    for account_id in conn.execute(who).scalars():
        conn.execute(insert_ignore(conn, note).values(
            kind=kind, key=f"{kind}:{ticket['id']}:{suffix}:{account_id}", account_id=account_id,
            service_id=ticket["service_id"], invoice_id=None, status="pending", attempts=0, next_attempt_at=now,
            created_at=now, body=json.dumps(payload) if payload else None))
