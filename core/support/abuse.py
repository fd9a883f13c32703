"""Abuse cases: an abuse suspension opens a case that the service's contacts see, with the reason.

The customer answers in it like in any ticket; the abuse desk answers there too, and must close
it with a decision the customer sees: ``lifted`` (the suspension ends, the service runs again if
its billing is in order) or ``upheld`` (the suspension stays; no data is deleted for it). The desk
works under its own SLA (core/support/sla.py: an answer within 4 business hours of the customer's
message, a decision within 2 business days, the time waiting for the customer not counted).
Lifting the suspension directly closes the open case as lifted.
"""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from core import audit
from core.audit import Actor
from core.errors import Conflict, InvalidInput
from core.i18n import N_
from core.lifecycle import services as service_ops
from core.models import SupportTicket
from core.runtime import Runtime
from core.support import sla
from core.support.mails import queue_mail
from core.support.tickets import append_event, get_ticket

tk = SupportTicket.__table__
DECISIONS = ("lifted", "upheld")


def suspend(conn: Connection, rt: Runtime, actor: Actor, service_id: int, reason: str) -> tuple[dict, dict]:
    """Suspend a service for abuse and open its case: (the service, the case)."""
    row = service_ops.suspend_for_abuse(conn, rt, actor, service_id, reason)
    now = rt.clock.now()
    case_id = conn.execute(insert(tk).values(
        service_id=service_id, account_id=row["admin_account_id"], opened_by=actor.account_id,
        universe=row["universe"], storefront=row["subsidiary"], level_code="abuse", level_service_id=None,
        queue="abuse", category="abuse", subject=row["abuse_reason"][:200], priority="normal",
        status="waiting_for_customer", alert_level=0, created_at=now, updated_at=now).returning(tk.c.id)).scalar_one()
    desk = service_ops.acting(actor, row)
    append_event(conn, case_id, now, "opened", desk, value="normal")
    append_event(conn, case_id, now, "agent_reply", desk, body=row["abuse_reason"])  # the reason, as the desk's first word
    append_event(conn, case_id, now, "status", desk, value="waiting_for_customer")
    queue_mail(conn, rt, "abuse_case_opened", {"id": case_id, "service_id": service_id}, _contacts(row), "opened")
    audit.record(conn, now, desk, "ticket", case_id, "abuse.case_opened", None,
                 {"service_id": service_id, "reason": row["abuse_reason"]})
    return row, sla.refresh(conn, rt, case_id, first_response_at=now)


def open_case(conn: Connection, service_id: int) -> dict | None:
    found = conn.execute(select(tk).where(tk.c.service_id == service_id, tk.c.queue == "abuse",
                                          tk.c.status != "closed").order_by(tk.c.id.desc())).mappings().first()
    return dict(found) if found else None


def decide(conn: Connection, rt: Runtime, actor: Actor, case_id: int, decision: str, message: str | None) -> dict:
    """The desk closes a case with its decision, which the customer reads in the case."""
    if decision not in DECISIONS:
        raise InvalidInput(N_("The decision is lifted or upheld."), code="invalid_decision")
    case, row = get_ticket(conn, actor, case_id, "abuse.decide", for_update=True)
    if case["queue"] != "abuse":
        raise Conflict(N_("Only an abuse case takes a decision."), code="not_an_abuse_case")
    if case["status"] == "closed":
        raise Conflict(N_("This ticket is closed; open a new one."), code="ticket_closed")
    text = (message or "").strip()
    if len(text) > 20_000:
        raise InvalidInput(N_("The message must have 1 to {most} characters."), code="invalid_text", most=20_000)
    if decision == "lifted" and row["abuse_since"] is not None:
        service_ops.lift_abuse(conn, rt, actor, case["service_id"])
    return _close(conn, rt, actor, case, _contacts(row), decision, text or None)


def lift(conn: Connection, rt: Runtime, actor: Actor, service_id: int) -> dict:
    """Lift an abuse suspension; its open case closes as lifted."""
    row = service_ops.lift_abuse(conn, rt, actor, service_id)
    case = open_case(conn, service_id)
    if case is not None:
        _close(conn, rt, actor, case, _contacts(row), "lifted", None)
    return row


def _contacts(service: dict) -> list[int]:
    return [service["admin_account_id"], service["tech_account_id"], service["billing_account_id"]]


def _close(conn: Connection, rt: Runtime, actor: Actor, case: dict, contacts: list[int], decision: str,
           text: str | None) -> dict:
    now = rt.clock.now()
    desk = actor.acting_as({actor.staff_role}) if actor.is_staff else actor
    append_event(conn, case["id"], now, "agent_reply", desk, body=text, value=decision)
    append_event(conn, case["id"], now, "status", desk, value="closed")
    queue_mail(conn, rt, "abuse_decided", case, contacts, "decided", {"decision": decision, "message": text})
    audit.record(conn, now, desk, "ticket", case["id"], "abuse.decided", {"status": case["status"]},
                 {"status": "closed", "decision": decision})
    return sla.refresh(conn, rt, case["id"], status="closed", decision=decision, solved_at=now)
