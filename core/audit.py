"""Audit events: who (account, staff or system job), what, when, before and after.

Single changes go through :func:`record`; batch jobs insert their events with
:func:`record_many`, or straight from the rows they changed with :func:`record_select`
(``INSERT … SELECT``), in the same transaction as the change. An event written while an API
request is served carries that request's id (``request_id``, :func:`core.logs.current_request_id`),
the one its answer and the log lines name; a job's events have none.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import String, insert, literal
from sqlalchemy.engine import Connection

from core.logs import current_request_id
from core.models import AuditEvent


@dataclass(frozen=True)
class Actor:
    """Who acts: an account (by handle), a staff member (with its back-office role), or a
    system job. ``role`` is the role it acts in on the object at hand (its contact roles on a
    service, joined by ``+``), recorded with each audit event."""

    label: str
    account_id: int | None = None
    is_staff: bool = False
    staff_role: str | None = None
    role: str | None = None
    scopes: str = "*"  # of the API key it authenticated with

    @classmethod
    def system(cls, job: str) -> "Actor":
        return cls(f"system:{job}", None, True, "system", "system")

    @classmethod
    def of(cls, account, scopes: str = "*") -> "Actor":
        staff_role = (getattr(account, "staff_role", None) or "administrator") if account.is_staff else None
        return cls(f"{'staff' if account.is_staff else 'account'}:{account.handle}", account.id, account.is_staff,
                   staff_role, staff_role, scopes)

    @property
    def is_system(self) -> bool:
        return self.staff_role == "system"

    def roles_on(self, row) -> frozenset[str]:
        """Its roles on a service row: its back-office role for staff, else its contact roles."""
        from core.access import roles_on_service

        if self.is_staff:
            return frozenset({self.staff_role or "administrator"})
        return roles_on_service(row, self.account_id)

    def acting_as(self, roles) -> "Actor":
        return replace(self, role="+".join(sorted(roles)) or None)


def _dump(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, default=str, sort_keys=True)


def record(conn: Connection, at: dt.datetime, actor: Actor, entity: str, entity_id: int, action: str,
           before: Any = None, after: Any = None) -> None:
    conn.execute(insert(AuditEvent.__table__).values(
        at=at, actor=actor.label, role=actor.role, entity=entity, entity_id=entity_id, action=action,
        before=_dump(before), after=_dump(after), request_id=current_request_id(),
    ))


def record_many(conn: Connection, at: dt.datetime, actor: Actor, entity: str, action: str,
                rows: list[tuple[int, Any, Any]]) -> None:
    """``rows``: (entity_id, before, after)."""
    if rows:
        request_id = current_request_id()
        conn.execute(insert(AuditEvent.__table__), [
            dict(at=at, actor=actor.label, role=actor.role, entity=entity, entity_id=i, action=action, before=_dump(b),
                 after=_dump(a), request_id=request_id)
            for i, b, a in rows
        ])


SELECTED = ["at", "actor", "entity", "entity_id", "action", "before", "after"]


def record_select(conn: Connection, rows) -> None:
    """Events straight from a select of (at, actor, entity, entity_id, action, before, after),
    set-based; the request's id is added when a request runs the job (a staff renewal run)."""
    request_id = current_request_id()
    columns = SELECTED
    if request_id is not None:
        rows, columns = rows.add_columns(literal(request_id, String)), [*SELECTED, "request_id"]
    conn.execute(insert(AuditEvent.__table__).from_select(columns, rows))
