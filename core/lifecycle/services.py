"""Service operations a customer or staff member calls: read, list, renewal mode, stop, terminate.

Every operation names its action in the permission table (:mod:`core.access`) and checks it
against the caller's roles on the service row: staff by their back-office role, an account by
its contact roles (admin, tech, billing). No role at all answers "not found", never
"forbidden", so ids cannot be probed.
"""

from __future__ import annotations

from sqlalchemy import or_, select, union, update
from sqlalchemy.engine import Connection

from core import audit
from core.access import check
from core.audit import Actor
from core.errors import Conflict, InvalidInput, InvalidState, NotFound
from core.i18n import N_
from core.lifecycle.state import queue_action, transition
from core.models import AuditEvent, Service
from core.runtime import Runtime

svc = Service.__table__
events = AuditEvent.__table__
RENEWAL_MODES = ("automatic", "manual", "terminate")
MAX_PAGE = 200


CONTACTS = (svc.c.admin_account_id, svc.c.tech_account_id, svc.c.billing_account_id)


def visible(actor: Actor):
    """The services an actor may see: all for staff, else those it is a contact of."""
    if actor.is_staff:
        return svc.c.id.is_not(None)
    return or_(*(column == actor.account_id for column in CONTACTS))


def get_service(conn: Connection, actor: Actor, service_id: int, *, action: str = "service.read",
                for_update: bool = False) -> dict:
    """The service row, if the actor's roles on it allow ``action`` (404 without any role, 403
    with roles that do not allow it)."""
    q = select(svc).where(svc.c.id == service_id)
    if not actor.is_staff:  # others' services are not even read
        q = q.where(visible(actor))
    if for_update and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).mappings().one_or_none()
    if row is None:
        raise NotFound(what="service")
    check(actor.roles_on(row), action)
    return dict(row)


def acting(actor: Actor, row: dict) -> Actor:
    """The actor with its roles on this service, as the audit log records them."""
    return actor.acting_as(actor.roles_on(row))


def list_services(conn: Connection, actor: Actor, after: int = 0, limit: int = 50, state: str | None = None) -> list[dict]:
    """Keyset pagination on id: a deep page costs the same as the first, and a long list the same
    as a short one. For an account, the next ``limit`` ids are taken from each of the three
    contact columns that make a service visible to it (an index on each, by id), and the page is the
    first ``limit`` of their union: the same page as the ``OR``, which both engines planned by
    reading the whole list (or walking the table) before sorting it."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(N_("The page size must be from 1 to {max}."), code="invalid_limit", max=MAX_PAGE)
    if actor.is_staff:
        q = select(svc).where(svc.c.id > after)
        if state:
            q = q.where(svc.c.state == state)
    else:
        firsts = []
        for column in CONTACTS:
            first = select(svc.c.id).where(column == actor.account_id, svc.c.id > after)
            if state:
                first = first.where(svc.c.state == state)
            first = first.order_by(svc.c.id).limit(limit).subquery()
            firsts.append(select(first.c.id))
        picked = union(*firsts).subquery("picked")
        q = select(svc).join(picked, picked.c.id == svc.c.id)
    return [dict(r) for r in conn.execute(q.order_by(svc.c.id).limit(limit)).mappings()]


def set_renewal_mode(conn: Connection, rt: Runtime, actor: Actor, service_id: int, mode: str) -> dict:
    """Automatic, manual, or terminate at expiry ("stop"). Undoing a stop is setting it back
    to automatic, possible until the expiry date."""
    if mode not in RENEWAL_MODES:
        raise InvalidInput(N_("The renewal mode must be automatic, manual or terminate."), code="invalid_renewal_mode")
    row = get_service(conn, actor, service_id, for_update=True)
    # stopping, or undoing a stop, is the admin's; choosing automatic or manual also the billing contact's
    check(actor.roles_on(row), "service.stop" if "terminate" in (mode, row["renewal_mode"]) else "service.renewal_mode")
    if row["state"] in ("terminated", "deleted"):
        raise InvalidState(what="service", state=row["state"], code="service_ended")
    if row["renewal_mode"] == mode:
        return row
    conn.execute(update(svc).where(svc.c.id == service_id).values(renewal_mode=mode, updated_at=rt.clock.now()))
    action = {"terminate": "service.stop_scheduled"}.get(mode, "service.renewal_mode_changed")
    if row["renewal_mode"] == "terminate":
        action = "service.stop_cancelled"
    audit.record(conn, rt.clock.now(), acting(actor, row), "service", service_id, action,
                 {"renewal_mode": row["renewal_mode"]}, {"renewal_mode": mode, "ends_on": row["expires_on"] if mode == "terminate" else None})
    return get_service(conn, actor, service_id)


def terminate_now(conn: Connection, rt: Runtime, actor: Actor, service_id: int) -> dict:
    row = get_service(conn, actor, service_id, action="service.terminate", for_update=True)
    if row["state"] in ("terminated", "deleted"):
        raise InvalidState(what="service", state=row["state"], code="service_ended")
    transition(conn, rt, [service_id], "terminated", "service.terminated_on_request", acting(actor, row),
               outbox_action="terminate", values={"terminated_on": rt.clock.today()})
    return get_service(conn, actor, service_id)


def service_events(conn: Connection, actor: Actor, service_id: int, after: int = 0, limit: int = 100,
                   newest: bool = False) -> list[dict]:
    """A page of the service's audit log, oldest first after the cursor ``after``; ``newest``
    gives the last ``limit`` events instead, newest first."""
    get_service(conn, actor, service_id, action="service.events")
    q = select(events).where(events.c.entity == "service", events.c.entity_id == service_id, events.c.id > after)
    q = q.order_by(events.c.id.desc() if newest else events.c.id).limit(min(limit, 500))
    return [dict(r) for r in conn.execute(q).mappings()]


def suspend_for_abuse(conn: Connection, rt: Runtime, actor: Actor, service_id: int, reason: str) -> dict:
    """The abuse desk suspends a service, with a reason its contacts see. It is a hold beside the
    billing state, never a step towards termination: no data is ever deleted for it, and paying
    an invoice does not lift it (nor does lifting it reactivate a service suspended for
    non-payment)."""
    reason = str(reason or "").strip()
    if not reason or len(reason) > 500:
        raise InvalidInput(N_("Give the reason the customer will see (at most 500 characters)."), code="abuse_reason_required")
    row = get_service(conn, actor, service_id, action="service.abuse", for_update=True)
    if row["state"] in ("terminated", "deleted"):
        raise InvalidState(what="service", state=row["state"], code="service_ended")
    if row["abuse_since"] is not None:
        raise Conflict(N_("This service is already suspended for abuse."), code="already_suspended_for_abuse")
    now = rt.clock.now()
    conn.execute(update(svc).where(svc.c.id == service_id).values(abuse_reason=reason, abuse_since=now, updated_at=now))
    if row["state"] == "active":  # otherwise the infrastructure is suspended already
        queue_action(conn, now, "suspend", [service_id])
    audit.record(conn, now, acting(actor, row), "service", service_id, "service.abuse_suspended",
                 {"abuse_reason": None}, {"abuse_reason": reason, "state": row["state"]})
    return get_service(conn, actor, service_id)


def lift_abuse(conn: Connection, rt: Runtime, actor: Actor, service_id: int) -> dict:
    """Lift an abuse suspension: the service runs again if its billing state is active."""
    row = get_service(conn, actor, service_id, action="service.abuse", for_update=True)
    if row["abuse_since"] is None:
        raise Conflict(N_("This service is not suspended for abuse."), code="not_suspended_for_abuse")
    now = rt.clock.now()
    conn.execute(update(svc).where(svc.c.id == service_id).values(abuse_reason=None, abuse_since=None, updated_at=now))
    if row["state"] == "active":
        queue_action(conn, now, "resume", [service_id])
    audit.record(conn, now, acting(actor, row), "service", service_id, "service.abuse_lifted",
                 {"abuse_reason": row["abuse_reason"]}, {"abuse_reason": None, "state": row["state"]})
    return get_service(conn, actor, service_id)


def technical_actions(rt: Runtime, row: dict) -> list[str]:
    """What the service's plugin offers (reboot, reinstall...)."""
    offered = rt.pm.hook.univers_technical_actions(universe=row["universe"], product_kind=row["kind"])
    return sorted({name for names in offered if names for name in names})


def run_technical_action(conn: Connection, rt: Runtime, actor: Actor, service_id: int, action: str) -> dict:
    """An admin or tech contact (or support) runs a technical action: it goes to the plugin
    through the provisioning outbox, so it survives a crash and runs once."""
    row = get_service(conn, actor, service_id, action="service.technical", for_update=True)
    offered = technical_actions(rt, row)
    if action not in offered:
        raise InvalidInput(N_("This service offers no action {action}; it offers: {actions}."), code="unknown_technical_action",
                           action=action, actions=", ".join(offered) or "-")
    if row["state"] != "active" or row["abuse_since"] is not None:
        raise InvalidState(what="service", state="suspended" if row["abuse_since"] else row["state"], code="service_not_running")
    now = rt.clock.now()
    queue_action(conn, now, "technical", [service_id], detail=action)
    audit.record(conn, now, acting(actor, row), "service", service_id, "service.technical_action", None, {"action": action})
    return {"service_id": service_id, "action": action, "status": "queued"}
