"""Mails about tickets, queued in the step that decides them (an insert under a unique key, so a
step run twice queues once); :mod:`core.notify.support_mails` renders them in each recipient's
language when the mail worker sends them."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.engine import Connection

from core.db import insert_ignore
from core.models import Account, Notification
from core.runtime import Runtime

acct = Account.__table__
note = Notification.__table__
KINDS = ("ticket_answered", "ticket_breached", "abuse_case_opened", "abuse_decided")


def queue_mail(conn: Connection, rt: Runtime, kind: str, ticket: dict, account_ids, suffix: str,
               payload: dict | None = None) -> None:
    """Queue a mail about a ticket to each of these accounts (staff and closed accounts aside), once:
    the key names the ticket, the step and the recipient (``<kind>:<ticket>:<suffix>:<account>``).
    :mod:`core.notify.support_mails` renders it in the recipient's language."""
    ids = sorted({i for i in account_ids if i is not None})
    if not ids:
        return
    now = rt.clock.now()
    for account_id in conn.execute(select(acct.c.id).where(acct.c.id.in_(ids), acct.c.is_staff.is_(False),
                                                            acct.c.closed_at.is_(None))).scalars():
        conn.execute(insert_ignore(conn, note).values(
            kind=kind, key=f"{kind}:{ticket['id']}:{suffix}:{account_id}", account_id=account_id,
            service_id=ticket["service_id"], invoice_id=None, status="pending", attempts=0, next_attempt_at=now,
            created_at=now, body=json.dumps(payload) if payload else None))
