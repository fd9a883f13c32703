"""Notices to customers, queued in the transaction that decides them.

Queuing is one set-based insert under a unique key (``suspended:<service>:<day>``,
``renewal_notice:<service>:<expiry>:<days before>``), so a job that runs twice, or on two
workers, queues a notice once. Any domain may queue; :mod:`core.notify` renders each notice in
the reader's language and sends it.
"""

from __future__ import annotations

from sqlalchemy import String, cast, literal, literal_column, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from core.db import insert_ignore
from core.models import Notification, Service
from core.runtime import Runtime

note = Notification.__table__
svc = Service.__table__

KINDS = ("renewal_notice", "payment_failed", "suspension_warning", "suspended", "terminated", "reactivated",
         "spending_alert", "terms_changed", "switch_invitation")


def queue(conn: Connection, rt: Runtime, kind: str, rows: Select) -> int:
    """Queue ``kind`` for each row of ``rows``: (key suffix, recipient account id, service id,
    invoice id). A key already queued is skipped. Returns how many were queued."""
    now = literal(rt.clock.now(), type_=note.c.created_at.type)
    sub = rows.subquery()
    cols = list(sub.c)
    return conn.execute(insert_ignore(conn, note).from_select(
        ["kind", "key", "account_id", "service_id", "invoice_id", "status", "attempts", "next_attempt_at", "created_at"],
        select(literal(kind), literal(kind + ":") + cast(cols[0], String), cols[1], cols[2], cols[3], literal("pending"),
               literal(0), now, now).where(literal_column("1") == 1),  # SQLite: INSERT … SELECT … ON CONFLICT needs a WHERE
    ).execution_options(preserve_rowcount=True)).rowcount


def queue_for_services(conn: Connection, rt: Runtime, kind: str, service_ids: list[int], suffix: str) -> int:
    """Queue ``kind`` to the billing contacts of these services, keyed by service and ``suffix``."""
    if not service_ids:
        return 0
    key = cast(svc.c.id, String) + literal(":" + suffix)
    return queue(conn, rt, kind, select(key, svc.c.billing_account_id, svc.c.id, literal(None, svc.c.id.type))
                 .where(svc.c.id.in_(service_ids)))
