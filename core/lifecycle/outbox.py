"""The provisioning outbox worker.

The intent (provision, suspend, resume, terminate) was committed with the state change. The
worker leases one item (a lease, not an open transaction, so SQLite writers are not held
during slow infrastructure calls and a killed worker's item comes back when the lease ends),
calls the owning universe's dispatch hook with the item's idempotency key, and records the
result. Transient failures retry with exponential backoff; after the last attempt the item
is parked and an audit event raises the alert. Nothing is lost if the process dies.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.engine import Connection

from core import audit
from core.audit import Actor
from core.context import SEVERITIES, ActionResult, InfraEventContext, ServiceContext, StateChange
from core.db import insert_ignore, lease_due
from core.models import Account, InfraLogEntry, Order, OutboxItem, Service
from core.runtime import Runtime
from core.uow import unit_of_work

log = logging.getLogger("univers.outbox")
box = OutboxItem.__table__
svc = Service.__table__
acct = Account.__table__
orders = Order.__table__
logs = InfraLogEntry.__table__
ACTOR = Actor.system("provisioning")
HOOKS = {  # and "technical": univers_technical_action, with the action's name in ``detail``
    "provision": "univers_provision", "suspend": "univers_suspend", "resume": "univers_resume",
         "terminate": "univers_terminate", "restore": "univers_restore", "delete": "univers_delete"}


@dataclass
class OutboxStats:
    done: int = 0
    retried: int = 0
    parked: int = 0


def _claim(conn: Connection, rt: Runtime) -> dict | None:
    ids = lease_due(conn, box, "pending", rt.clock.now(), rt.settings.outbox_lease_seconds, 1)
    if not ids:
        return None
    item_id = ids[0]
    row = conn.execute(
        select(box, svc.c.universe, svc.c.product_code, svc.c.plan_code, svc.c.kind, svc.c.subsidiary, svc.c.options,
               acct.c.handle).join(svc, svc.c.id == box.c.service_id).join(acct, acct.c.id == svc.c.account_id)
        .where(box.c.id == item_id)
    ).mappings().one()
    return dict(row)


def _dispatch(rt: Runtime, item: dict) -> ActionResult | None:
    ctx = ServiceContext(
        service_id=item["service_id"], universe=item["universe"], product_code=item["product_code"],
        plan_code=item["plan_code"], product_kind=item["kind"], account_handle=item["handle"],
        subsidiary=item["subsidiary"], options=item["options"] or {}, idempotency_key=item["key"],
        now=rt.clock.now(), settings=rt.settings,
    )
    if item["action"] == "technical":
        return rt.pm.hook.univers_technical_action(ctx=ctx, action=item["detail"])
    return getattr(rt.pm.hook, HOOKS[item["action"]])(ctx=ctx)


def _log_rows(rt: Runtime, item: dict, result: ActionResult | None) -> list[dict]:
    """The infrastructure's events of a done action as log entries of the service: each event
    translated by its universe (``univers_translate_infra_event``), keyed by the outbox item so
    that recording the item again stores them once. A plugin's failure to translate loses its
    entries (logged), never the action's result."""
    if result is None or result.status != "done" or not result.events:
        return []
    now = rt.clock.now()
    rows = []
    for i, event in enumerate(result.events):
        try:
            entries = rt.pm.hook.univers_translate_infra_event(ctx=InfraEventContext(
                service_id=item["service_id"], universe=item["universe"], product_kind=item["kind"],
                resource=result.resource, event=event, now=now, settings=rt.settings)) or []
        except Exception:
            log.exception("the %s plugin could not translate an infrastructure event of service %s", item["universe"],
                          item["service_id"])
            continue
        for j, e in enumerate(entries):
            if e.severity not in SEVERITIES:
                log.error("infrastructure event of service %s: unknown severity %r", item["service_id"], e.severity)
                continue
            rows.append({"service_id": item["service_id"], "entry_id": f"outbox:{item['id']}:{i}.{j}",
                         "at": e.at or now, "severity": SEVERITIES.index(e.severity), "source": e.source[:32],
                         "message": e.message[:2000], "fields": dict(e.fields) or None, "received_at": now})
    return rows


def _record(conn: Connection, rt: Runtime, item: dict, result: ActionResult | None, error: str | None, stats: OutboxStats,
            log_rows: list[dict] | None = None) -> None:
    now = rt.clock.now()
    if result is not None and result.status == "done":
        conn.execute(update(box).where(box.c.id == item["id"]).values(status="done", done_at=now, locked_until=None, last_error=None))
        stats.done += 1
        if item["action"] == "delete":  # the service's data is gone: its infrastructure logs with it
            conn.execute(delete(logs).where(logs.c.service_id == item["service_id"]))
        elif log_rows:
            conn.execute(insert_ignore(conn, logs), log_rows)
        if item["action"] == "provision":
            delivered = conn.execute(update(svc).where(svc.c.id == item["service_id"], svc.c.state == "pending").values(
                state="active", resource=result.resource, updated_at=now)).rowcount
            if delivered:
                audit.record(conn, now, ACTOR, "service", item["service_id"], "service.delivered",
                             {"state": "pending"}, {"state": "active", "resource": result.resource})
                conn.info.setdefault("univers_state_changes", []).append(
                    StateChange(item["service_id"], item["universe"], "pending", "active", "service.delivered"))
                _close_order(conn, rt, item["service_id"])
        else:
            audit.record(conn, now, ACTOR, "service", item["service_id"], f"infrastructure.{item['action']}", None,
                         {"resource": result.resource, **({"action": item["detail"]} if item["detail"] else {})})
        return
    reason = error or (result.detail if result else f"no plugin handles universe {item['universe']!r}")
    attempts = item["attempts"]  # already counted when the item was claimed
    if result is None or attempts >= rt.settings.outbox_max_attempts:
        conn.execute(update(box).where(box.c.id == item["id"]).values(status="parked", locked_until=None, last_error=reason[:500]))
        audit.record(conn, now, ACTOR, "service", item["service_id"], "outbox.parked", None,
                     {"action": item["action"], "attempts": attempts, "error": reason[:500]})
        log.error("outbox item %s (%s service %s) parked after %s attempts: %s", item["id"], item["action"],
                  item["service_id"], attempts, reason)
        stats.parked += 1
    else:
        backoff = dt.timedelta(seconds=min(3600, 5 * 2 ** (attempts - 1)))
        conn.execute(update(box).where(box.c.id == item["id"]).values(
            next_attempt_at=now + backoff, locked_until=None, last_error=reason[:500]))
        stats.retried += 1


def _close_order(conn: Connection, rt: Runtime, service_id: int) -> None:
    order_id = conn.execute(select(svc.c.order_id).where(svc.c.id == service_id)).scalar()
    if order_id is None:
        return
    waiting = conn.execute(select(func.count()).where(svc.c.order_id == order_id, svc.c.state == "pending")).scalar()
    status = "delivered" if waiting == 0 else "delivering"
    changed = conn.execute(update(orders).where(orders.c.id == order_id, orders.c.status.in_(("paid", "delivering")),
                                                orders.c.status != status).values(status=status, updated_at=rt.clock.now())).rowcount
    if changed:
        audit.record(conn, rt.clock.now(), ACTOR, "order", order_id, f"order.{status}", None, {"status": status})


def run_outbox(rt: Runtime, limit: int = 1000) -> OutboxStats:
    """Work through due outbox items (at most ``limit``). Safe on several workers."""
    stats = OutboxStats()
    for _ in range(limit):
        with unit_of_work(rt) as conn:
            item = _claim(conn, rt)
        if item is None:
            break
        result, error = None, None
        try:
            result = _dispatch(rt, item)
            if result is None:
                error = f"no plugin handles universe {item['universe']!r}"
                result = ActionResult("retry", detail=error)
        except Exception as exc:  # the infrastructure failed in a way the plugin did not catch
            log.warning("outbox item %s failed: %r", item["id"], exc)
            error = repr(exc)
        log_rows = _log_rows(rt, item, result)
        with unit_of_work(rt) as conn:
            _record(conn, rt, item, result, error, stats, log_rows)
    return stats


def pending_count(conn: Connection) -> int:
    return conn.execute(select(func.count()).where(and_(box.c.status == "pending"))).scalar_one()
