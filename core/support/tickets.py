"""Support tickets: opened on a service by its contacts, answered by staff, every step logged.

A ticket belongs to a service and follows its contacts: the admin and tech contacts (a partner
among them, for a client's service it runs) see and write in all of its tickets, the billing
contact those about invoices; staff see all, and only staff see internal notes. The level that
applies is the best active support subscription of the service's admin account in the universe,
else the universe's included level; it is fixed when the ticket opens.

Each step is an event of the ticket's log (``support_ticket_event``) and an audit event. The SLA
clocks are replayed from the log (core/support/sla.py) after each step, which records any breach;
the ticket row keeps what queues, reports and the SLA job sort on: the earliest deadline of its
running clocks, the time of its first response, and when to look again.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, insert, or_, select, union
from sqlalchemy.engine import Connection

from core import audit
from core.access import check
from core.audit import Actor
from core.catalog import Product
from core.errors import Conflict, Forbidden, InvalidInput, NotFound, one_line
from core.i18n import N_
from core.lifecycle.services import acting, get_service
from core.models import Service, SupportTicket, TicketEvent
from core.runtime import Runtime
from core.support import sla
from core.support.clocks import PRIORITIES
from core.support.mails import queue_mail

tk = SupportTicket.__table__
ev = TicketEvent.__table__
svc = Service.__table__

CATEGORIES = ("technical", "billing")
BILLING_SEES = ("billing", "abuse")  # what a service's billing contact sees of its tickets
STAFF_STATUSES = ("open", "waiting_for_customer", "waiting_for_third_party", "solved", "closed")
MAX_PAGE = 200


def level_of(conn: Connection, rt: Runtime, service: dict, opener: int | None = None) -> tuple[Product, int | None]:
    """The support level that applies to a ticket on ``service``, and the subscription that pays for
    it: the best active level of the service's admin account in the universe, or the Fast-Path of a
    partner opening it for a client's service it runs; else the universe's included level."""
    tiers = {p.code: p for p in rt.catalog.products.values() if p.universe == service["universe"] and p.support_level}
    fast_path = [code for code, t in tiers.items() if t.partners_only]
    held = conn.execute(select(svc.c.id, svc.c.plan_code).where(
        or_(and_(svc.c.admin_account_id == service["admin_account_id"], svc.c.plan_code.in_(list(tiers))),
            and_(svc.c.admin_account_id == (opener or 0), svc.c.plan_code.in_(fast_path))),
        svc.c.state == "active")).all()
    if held:
        best = max(held, key=lambda r: (tiers[r.plan_code].support_level, tiers[r.plan_code].partners_only, r.id))
        return tiers[best.plan_code], (None if tiers[best.plan_code].plans[0].free else best.id)
    included = sorted((t for t in tiers.values() if t.plans[0].free and not t.partners_only),
                      key=lambda t: t.support_level)
    if not included:
        raise Conflict(N_("There is no support level for this service; order one first."), code="no_support_level")
    return included[0], None


def append_event(conn: Connection, ticket_id: int, at: dt.datetime, kind: str, actor: Actor, *, value: str | None = None,
            body: str | None = None) -> None:
    conn.execute(insert(ev).values(ticket_id=ticket_id, at=at, kind=kind, value=value, author_id=actor.account_id,
                                   author_role=actor.role or actor.staff_role, body=body))


TOO_LONG = {"subject": N_("The subject must have 1 to {most} characters."),
            "message": N_("The message must have 1 to {most} characters.")}


def _text(value: str, what: str, most: int) -> str:
    text = (value or "").strip()
    if not text or len(text) > most:
        raise InvalidInput(TOO_LONG[what], code="invalid_text", most=most)
    return one_line(text, what) if what == "subject" else text


def _check_kind(priority: str, category: str = "technical") -> None:
    if priority not in PRIORITIES or category not in CATEGORIES:
        raise InvalidInput(N_("Unknown priority or category; expected one of {priorities} and one of {categories}."),
                           code="invalid_ticket", priorities=", ".join(PRIORITIES), categories=", ".join(CATEGORIES))


def open_ticket(conn: Connection, rt: Runtime, actor: Actor, service_id: int, *, subject: str, body: str,
                priority: str = "normal", category: str = "technical") -> dict:
    """A ticket on a service, by one of its contacts (or staff on their behalf), with its first message."""
    _check_kind(priority, category)
    service = get_service(conn, actor, service_id, action="ticket.open")
    roles = actor.roles_on(service)
    if not actor.is_staff and roles <= {"billing"} and category != "billing":
        raise Forbidden(N_("As the service's billing contact, you may open tickets about invoices only."),
                        code="billing_tickets_only")
    subject, body = _text(subject, "subject", 200), _text(body, "message", 20_000)
    level, paid_by = level_of(conn, rt, service, actor.account_id if not actor.is_staff else None)
    now = rt.clock.now()
    ticket_id = conn.execute(insert(tk).values(
        service_id=service_id, account_id=service["admin_account_id"], opened_by=actor.account_id,
        universe=service["universe"], storefront=service["subsidiary"], level_code=level.code, level_service_id=paid_by,
        queue="support", category=category, subject=subject, priority=priority, status="new", alert_level=0,
        created_at=now, updated_at=now).returning(tk.c.id)).scalar_one()
    actor = acting(actor, service)
    append_event(conn, ticket_id, now, "opened", actor, value=priority, body=body)
    audit.record(conn, now, actor, "ticket", ticket_id, "ticket.opened",
                 after={"service_id": service_id, "level": level.code, "priority": priority, "category": category})
    return sla.refresh(conn, rt, ticket_id)


def _visible(actor: Actor):
    """The tickets an account may see: those of services it is the admin or tech contact of, and
    those about invoices of services it is the billing contact of."""
    me = actor.account_id
    return or_(svc.c.admin_account_id == me, svc.c.tech_account_id == me,
               and_(svc.c.billing_account_id == me, tk.c.category.in_(BILLING_SEES)))


def get_ticket(conn: Connection, actor: Actor, ticket_id: int, action: str = "ticket.read",
               for_update: bool = False) -> tuple[dict, dict]:
    """The ticket, and it with its service's contacts, abuse suspension, plan and resource, if the actor's roles allow
    ``action`` (404 if it may not see it)."""
    q = select(tk, *(getattr(svc.c, f"{r}_account_id") for r in ("admin", "tech", "billing")), svc.c.abuse_since,
               svc.c.plan_code, svc.c.resource).join(
        svc, svc.c.id == tk.c.service_id).where(tk.c.id == ticket_id)
    if not actor.is_staff:
        q = q.where(_visible(actor))
    if for_update and conn.dialect.name == "postgresql":
        q = q.with_for_update(of=tk)
    row = conn.execute(q).mappings().one_or_none()
    if row is None:
        raise NotFound(what="ticket")
    roles = actor.roles_on(row)
    if not actor.is_staff and row["category"] not in BILLING_SEES:
        roles = roles - {"billing"}
    if action == "ticket.answer" and row["queue"] == "abuse":
        action = "abuse.decide"  # the abuse desk's cases are its own
    check(roles, action, what="ticket")
    return {k: row[k] for k in tk.c.keys()}, dict(row)


def reply(conn: Connection, rt: Runtime, actor: Actor, ticket_id: int, body: str) -> dict:
    """The customer writes: a waiting or solved ticket opens again, and its clocks run."""
    ticket, row = get_ticket(conn, actor, ticket_id, "ticket.reply", for_update=True)
    if ticket["status"] == "closed":
        raise Conflict(N_("This ticket is closed; open a new one."), code="ticket_closed")
    body, now = _text(body, "message", 20_000), rt.clock.now()
    actor = actor.acting_as(actor.roles_on(row))
    append_event(conn, ticket_id, now, "customer_reply", actor, body=body)
    values = {}
    if ticket["status"] in ("waiting_for_customer", "solved"):
        append_event(conn, ticket_id, now, "status", actor, value="open")
        values = {"status": "open", "solved_at": None}
    audit.record(conn, now, actor, "ticket", ticket_id, "ticket.replied", before={"status": ticket["status"]},
                 after={"status": values.get("status", ticket["status"])})
    return sla.refresh(conn, rt, ticket_id, **values)


def answer(conn: Connection, rt: Runtime, actor: Actor, ticket_id: int, *, body: str | None = None,
           internal: bool = False, status: str | None = None, priority: str | None = None) -> dict:
    """Staff's step: a public reply (it meets the response clocks) or an internal note (it meets
    nothing), and a new status or priority, each logged."""
    ticket, _ = get_ticket(conn, actor, ticket_id, "ticket.answer", for_update=True)
    if status is not None and status not in STAFF_STATUSES:
        raise InvalidInput(N_("Unknown status {status}; expected one of {statuses}."), code="invalid_status",
                           status=status, statuses=", ".join(STAFF_STATUSES))
    if priority is not None:
        _check_kind(priority)
    if body is None and status is None and priority is None:
        raise InvalidInput(N_("Say something: a message, a status or a priority."), code="empty_answer")
    if ticket["status"] == "closed":
        raise Conflict(N_("This ticket is closed; open a new one."), code="ticket_closed")
    if ticket["queue"] == "abuse" and status in ("solved", "closed"):
        raise Conflict(N_("An abuse case is closed by a decision: lift the suspension or uphold it."),
                       code="decision_required")
    now, values = rt.clock.now(), {}
    if body is not None:
        append_event(conn, ticket_id, now, "note" if internal else "agent_reply", actor, body=_text(body, "message", 20_000))
        if not internal:
            values["first_response_at"] = ticket["first_response_at"] or now
            if ticket["status"] == "new" and status is None:
                status = "open"
    if priority is not None and priority != ticket["priority"]:
        append_event(conn, ticket_id, now, "priority", actor, value=priority)
        values["priority"] = priority
    if status is not None and status != ticket["status"]:
        append_event(conn, ticket_id, now, "status", actor, value=status)
        values["status"] = status
        values["solved_at"] = now if status == "solved" else (ticket["solved_at"] if status == "closed" else None)
    if body is not None and not internal:  # the customer is told, in its language
        queue_mail(conn, rt, "ticket_answered", ticket, [ticket["opened_by"] or ticket["account_id"]], now.isoformat(),
                   {"message": body.strip()})
    action = "ticket.noted" if internal and body is not None else "ticket.answered"
    audit.record(conn, now, actor, "ticket", ticket_id, action,
                 before={k: ticket[k] for k in ("status", "priority")},
                 after={k: values.get(k, ticket[k]) for k in ("status", "priority")})
    return sla.refresh(conn, rt, ticket_id, **values)


def thread(conn: Connection, actor: Actor, ticket_id: int) -> list[dict]:
    """The ticket's log in order; internal notes only for staff."""
    q = select(ev).where(ev.c.ticket_id == ticket_id)
    if not actor.is_staff:
        q = q.where(ev.c.kind != "note")
    return [dict(r) for r in conn.execute(q.order_by(ev.c.id)).mappings()]


def list_tickets(conn: Connection, actor: Actor, *, after: int = 0, limit: int = 50, service_id: int | None = None,
                 status: str | None = None, queue: str | None = None) -> list[dict]:
    """Keyset pages by id: what the caller may see, optionally of one service, in one status or queue.

    For an account, its services are looked up first (an index on each contact column), then their
    tickets by (service, id): a page costs what the account's own tickets cost, however many
    tickets the others have. Of one service, only the account's roles on that service are read."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(N_("The page size must be from 1 to {max}."), code="invalid_limit", max=MAX_PAGE)
    q = select(tk).where(tk.c.id > after)
    if not actor.is_staff and service_id is not None:  # one service: the caller's roles on it, not all its services
        row = conn.execute(select(svc).where(svc.c.id == service_id)).mappings().first()
        roles = actor.roles_on(row) if row is not None else frozenset()
        if not roles:
            return []
        if not roles & {"admin", "tech"}:
            q = q.where(tk.c.category.in_(BILLING_SEES))
    elif not actor.is_staff:
        me = actor.account_id
        full = set(conn.execute(union(select(svc.c.id).where(svc.c.admin_account_id == me),
                                      select(svc.c.id).where(svc.c.tech_account_id == me))).scalars())
        billing = set(conn.execute(select(svc.c.id).where(svc.c.billing_account_id == me)).scalars()) - full
        if not full and not billing:
            return []
        q = q.where(or_(tk.c.service_id.in_(sorted(full)),
                        and_(tk.c.service_id.in_(sorted(billing)), tk.c.category.in_(BILLING_SEES))))
    for column, value in ((tk.c.service_id, service_id), (tk.c.status, status), (tk.c.queue, queue)):
        if value is not None:
            q = q.where(column == value)
    return [dict(r) for r in conn.execute(q.order_by(tk.c.id).limit(limit)).mappings()]


def queue_page(conn: Connection, actor: Actor, queue: str, *, status: str | None = None, cursor: str | None = None,
               limit: int = 50) -> tuple[list[dict], str | None]:
    """A staff queue. Without a status: the tickets whose clocks run, the closest to its deadline
    first (``due_at``, then id); with one: that status's tickets by id. Keyset pages: ``cursor`` is
    the ``next_cursor`` of the page before (``DUE_AT|ID``, or ``ID`` for a status)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(N_("The page size must be from 1 to {max}."), code="invalid_limit", max=MAX_PAGE)
    q = select(tk).where(tk.c.queue == queue)
    try:
        if status is not None:
            after = int(cursor) if cursor else 0
            q = q.where(tk.c.status == status, tk.c.id > after).order_by(tk.c.id)
        else:
            q = q.where(tk.c.due_at.is_not(None)).order_by(tk.c.due_at, tk.c.id)
            if cursor:
                due_text, _, id_text = cursor.partition("|")
                due, after = dt.datetime.fromisoformat(due_text), int(id_text)
                if due.tzinfo is None:
                    raise ValueError(cursor)
                # due_at >= due first: both engines then seek the index from the cursor on (with the OR
                # alone they walk the queue from its start: 164 ms at 100,000 tickets on PostgreSQL)
                q = q.where(tk.c.due_at >= due, or_(tk.c.due_at > due, tk.c.id > after))
    except ValueError:
        raise InvalidInput(N_("This cursor is not one a page of this queue gave."), code="invalid_cursor") from None
    rows = [dict(r) for r in conn.execute(q.limit(limit)).mappings()]
    if len(rows) < limit:
        return rows, None
    last = rows[-1]
    return rows, str(last["id"]) if status is not None else f"{last['due_at'].isoformat()}|{last['id']}"
