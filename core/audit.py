"""Audit events: who (account, staff or system job), what, when, before and after.

Single changes go through :func:`record`; batch jobs insert their events set-based with
:func:`record_many`, in the same transaction as the change.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from core.models import AuditEvent


@dataclass(frozen=True)
class Actor:
    """Who acts: an account (by handle), a staff member, or a system job."""

    label: str
    account_id: int | None = None
    is_staff: bool = False

    @classmethod
    def system(cls, job: str) -> "Actor":
        return cls(f"system:{job}", None, True)

    @classmethod
    def of(cls, account) -> "Actor":
        return cls(f"{'staff' if account.is_staff else 'account'}:{account.handle}", account.id, account.is_staff)


def _dump(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, default=str, sort_keys=True)


def record(conn: Connection, at: dt.datetime, actor: Actor, entity: str, entity_id: int, action: str,
           before: Any = None, after: Any = None) -> None:
    conn.execute(insert(AuditEvent.__table__).values(
        at=at, actor=actor.label, entity=entity, entity_id=entity_id, action=action,
        before=_dump(before), after=_dump(after),
    ))


def record_many(conn: Connection, at: dt.datetime, actor: Actor, entity: str, action: str,
                rows: list[tuple[int, Any, Any]]) -> None:
    """``rows``: (entity_id, before, after)."""
    if rows:
        conn.execute(insert(AuditEvent.__table__), [
            dict(at=at, actor=actor.label, entity=entity, entity_id=i, action=action, before=_dump(b), after=_dump(a))
            for i, b, a in rows
        ])
