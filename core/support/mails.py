"""Mails about tickets, queued in the step that decides them (an insert under a unique key, so a
step run twice queues once); :mod:`core.notify.support_mails` renders them in each recipient's
language when the mail worker sends them."""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy import select
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
    queue_mails(conn, rt, kind, [(ticket, suffix, payload, account_ids)])


def queue_mails(conn: Connection, rt: Runtime, kind: str, items: list[tuple[dict, str, dict | None, Iterable]]) -> None:
    """:func:`queue_mail` for many tickets at once, (ticket, suffix, payload, accounts) each: one
    query for the recipients, one insert."""
    ids = sorted({i for *_, accounts in items for i in accounts if i is not None})
    if not ids:
        return
    ok = set(conn.execute(select(acct.c.id).where(acct.c.id.in_(ids), acct.c.is_staff.is_(False),
                                                   acct.c.closed_at.is_(None))).scalars())
    _insert(conn, rt, kind, [(ticket, suffix, payload, a) for ticket, suffix, payload, accounts in items
                             for a in sorted({i for i in accounts if i in ok})])


def queue_staff_mails(conn: Connection, rt: Runtime, items: list[tuple[dict, int, dict]]) -> None:
    """Tell the staff of tickets' alerts, (ticket, alert level, payload) each, once per level: the
    queue's desk, and the administrators from ``MANAGERS_FROM`` on; of each role, those of the
    ticket's storefront (all of that role, if it has none). One query per role and storefront."""
    desks: dict[tuple[str, str], list[int]] = {}
    rows = []
    for ticket, level, payload in items:
        for role in [DESKS[ticket["queue"]]] + (["administrator"] if level >= MANAGERS_FROM else []):
            key = (role, ticket["storefront"])
            if key not in desks:
                staff = conn.execute(select(acct.c.id, acct.c.subsidiary).where(
                    acct.c.is_staff.is_(True), acct.c.closed_at.is_(None), acct.c.staff_role == role)).all()
                desks[key] = [i for i, sub in staff if sub == key[1]] or [i for i, _ in staff]
            rows += [(ticket, str(level), {**payload, "level": level}, a) for a in desks[key]]
    _insert(conn, rt, "ticket_escalated", rows)


def _insert(conn: Connection, rt: Runtime, kind: str, rows: list[tuple[dict, str, dict | None, int]]) -> None:
    if not rows:
        return
    now = rt.clock.now()
    conn.execute(insert_ignore(conn, note), [dict(
        kind=kind, key=f"{kind}:{ticket['id']}:{suffix}:{account_id}", account_id=account_id,
        service_id=ticket["service_id"], invoice_id=None, status="pending", attempts=0, next_attempt_at=now,
        created_at=now, body=json.dumps(payload) if payload else None) for ticket, suffix, payload, account_id in rows])
