"""The service lifecycle: pending → active ⇄ suspended → terminated → deleted (after the
retention period; until then staff may restore a terminated service).

Every transition is one explicit function call that updates the state, queues the
infrastructure action in the outbox, queues the billing contact's notification and writes the
audit event, all in the caller's transaction. :func:`transition` works on a list of ids, so the dunning run and a single
customer click share it.
"""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from core import audit
from core.audit import Actor
from core.context import StateChange
from core.models import OutboxItem, Service
from core.notices import queue_for_services
from core.runtime import Runtime

svc = Service.__table__
outbox = OutboxItem.__table__

ALLOWED = {
    "pending": {"active", "terminated"},
    "active": {"suspended", "terminated"},
    "suspended": {"active", "terminated"},
    "terminated": {"deleted", "suspended", "active"},  # restored by staff until deleted
    "deleted": set(),
}
CHUNK = 500


def queue_action(conn: Connection, now, action: str, ids: list[int], detail: str | None = None) -> None:
    """Queue an infrastructure action for services in the provisioning outbox."""
    name = f"{action}-{detail}" if detail else action
    conn.execute(insert(outbox), [
        dict(action=action, detail=detail, service_id=i, key=f"{name}:{i}:{now.isoformat()}", status="pending", attempts=0,
             next_attempt_at=now, created_at=now)
        for i in ids
    ])


def transition(conn: Connection, rt: Runtime, ids: list[int], to_state: str, action: str, actor: Actor,
               *, outbox_action: str | None = None, values: dict | None = None, notify: str | None = None) -> list[StateChange]:
    """Move services to ``to_state`` (only those for which the move is allowed); ``notify``
    names the notification their billing contacts get (see :mod:`core.notify.mail`)."""
    now = rt.clock.now()
    changes: list[StateChange] = []
    for start in range(0, len(ids), CHUNK):
        part = ids[start:start + CHUNK]
        rows = conn.execute(
            select(svc.c.id, svc.c.state, svc.c.universe, svc.c.expires_on, svc.c.abuse_since).where(svc.c.id.in_(part))
        ).all()
        movable = [r for r in rows if to_state in ALLOWED[r.state]]
        if not movable:
            continue
        movable_ids = [r.id for r in movable]
        conn.execute(update(svc).where(svc.c.id.in_(movable_ids)).values(state=to_state, updated_at=now, **(values or {})))
        # a service held for abuse stays suspended on the infrastructure whatever its billing says
        acting = [r for r in movable if not (outbox_action == "resume" and r.abuse_since is not None)]
        if outbox_action and acting:
            queue_action(conn, now, outbox_action, [r.id for r in acting])
        audit.record_many(conn, now, actor, "service", action, [
            (r.id, {"state": r.state}, {"state": to_state, **{k: v for k, v in (values or {}).items()}}) for r in movable
        ])
        if notify:
            queue_for_services(conn, rt, notify, movable_ids, now.isoformat())
        changes.extend(StateChange(r.id, r.universe, r.state, to_state, action) for r in movable)
    conn.info.setdefault("univers_state_changes", []).extend(changes)
    return changes
