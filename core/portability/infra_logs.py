"""The ``infra_logs`` section of an account's export: the infrastructure log entries of the
services whose logs it may read (``service.logs``: where it is the admin or tech contact), as
they are kept (within their universe's retention), oldest first per service. An import loads
them on the new services, each with its sender's id, so that the infrastructure sending it
again after the move stores it once. Added to version 1 with the logs: a document made before
has none (``[]``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from core.access import allowed
from core.context import SEVERITIES
from core.infralogs.entries import READ
from core.models import InfraLogEntry

logs = InfraLogEntry.__table__
CHUNK = 500  # services per query; entries are written a thousand at a time


class InfraLogPart(msgspec.Struct):
    service_id: int
    id: str  # the sender's id, unique per service
    at: dt.datetime
    severity: str  # debug | info | notice | warning | error | critical
    source: str
    message: str
    fields: dict[str, Any]


def export_infra_logs(conn: Connection, roles: dict[int, set[str]]) -> list[InfraLogPart]:
    """The entries of the services (id -> the account's roles on it) whose logs it may read."""
    readable = sorted(sid for sid, r in roles.items() if allowed(r, READ))
    out: list[InfraLogPart] = []
    for start in range(0, len(readable), CHUNK):
        part = readable[start:start + CHUNK]
        q = (select(logs.c.service_id, logs.c.entry_id, logs.c.at, logs.c.severity, logs.c.source, logs.c.message,
                    logs.c.fields).where(logs.c.service_id.in_(part)).order_by(logs.c.service_id, logs.c.at, logs.c.id))
        out.extend(InfraLogPart(r.service_id, r.entry_id, r.at, SEVERITIES[r.severity], r.source, r.message, r.fields or {})
                   for r in conn.execute(q))
    return out


def problem(entries: list[InfraLogPart], service_ids: set[int]) -> str | None:
    """Why these entries would not load, or None."""
    seen = set()
    for e in entries:
        if e.service_id not in service_ids:
            return f"infrastructure log entry {e.id} is about service {e.service_id}, which is not in the export"
        if e.severity not in SEVERITIES or not 0 < len(e.id) <= 64 or not 0 < len(e.source) <= 32 or len(e.message) > 2000:
            return f"infrastructure log entry {e.id} of service {e.service_id} is not a valid entry"
        if (e.service_id, e.id) in seen:
            return f"infrastructure log entry {e.id} of service {e.service_id} is repeated"
        seen.add((e.service_id, e.id))
    return None


def import_infra_logs(conn: Connection, entries: list[InfraLogPart], service_ids: dict[int, int], now: dt.datetime) -> int:
    """Load the entries on the imported services (old id -> new id); returns how many."""
    rows = [dict(service_id=service_ids[e.service_id], entry_id=e.id, at=e.at, severity=SEVERITIES.index(e.severity),
                 source=e.source, message=e.message, fields=e.fields or None, received_at=now) for e in entries]
    for start in range(0, len(rows), 1000):
        conn.execute(insert(logs), rows[start:start + 1000])
    return len(rows)
