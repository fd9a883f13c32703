"""Keeping the SLA: the clocks of a stored ticket, its breaches and their service credits, and the
job that finds what is due.

* A ticket's clocks are replayed from its log (core/support/clocks.py) on the level's hours: the
  storefront's business calendar, or every hour.
* A breach is recorded once per ticket and target (a unique key), at whatever step first sees
  it: an agent's late answer, a customer's message, or the job. On a paid level with a service
  credit, it issues a credit note on the level's latest invoice for the level's share of it
  (``credit_percent`` of the line, rounded half up once, never more than is left of the line):
  the money goes back to the prepaid balance, which pays the level's next invoice first.
* The ticket keeps when to look again (``next_check_at``: its next warning, breach or
  escalation). The job takes the due tickets in chunks, each chunk locked with ``FOR UPDATE SKIP
  LOCKED`` on PostgreSQL, so that several schedulers share the work and none does it twice. A
  warning (75 % of a target) and the escalations (the breach, then 150 % and 200 %) are raised in
  the level's hours: a level of business hours never alerts at night (it waits for the morning,
  and a breach found then keeps the instant it happened); a level that counts every hour has a
  team at every hour, and alerts at once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from core import audit
from core.audit import Actor
from core.billing.credit_notes import credited_so_far, issue_credit_note
from core.catalog import SlaTarget, SupportTerms
from core.db import insert_ignore
from core.models import Invoice, InvoiceLine, SlaBreach, SupportTicket, TicketEvent
from core.money import from_minor
from core.runtime import Runtime
from core.support.calendar import BusinessCalendar, Hours, load_calendars
from core.support.clocks import (
    Clock,
    Event,
    alert_moments,
    clocks,
    level_hours,
    level_targets,
)
from core.support.mails import queue_mails, queue_staff_mails
from core.uow import unit_of_work

tk = SupportTicket.__table__
ev = TicketEvent.__table__
breach = SlaBreach.__table__
inv = Invoice.__table__
line = InvoiceLine.__table__

# The abuse desk's own promise on the cases it opens: it answers a customer's message within 4
# business hours and decides within 2 business days, not counting the time it waits for the customer.
ABUSE_TERMS = SupportTerms("business", (SlaTarget("normal", 0, 240, 960),))
ALERTS = (0.75, 1.0, 1.5, 2.0)  # of a target: the warning, then escalations 1 (the breach), 2 and 3
CLOSED = ("solved", "closed")
ACTOR = Actor.system("sla")


@cache
def calendars() -> dict[str, BusinessCalendar]:
    return load_calendars()


def logs(conn: Connection, ticket_ids: list[int]) -> dict[int, list[Event]]:
    """The event logs of these tickets, in their order: one query for a chunk."""
    out: dict[int, list[Event]] = {i: [] for i in ticket_ids}
    for r in conn.execute(select(ev.c.ticket_id, ev.c.at, ev.c.kind, ev.c.value)
                          .where(ev.c.ticket_id.in_(ticket_ids)).order_by(ev.c.ticket_id, ev.c.id)):
        out[r.ticket_id].append(Event(r.at, r.kind, r.value))
    return out


def hours_and_clocks(conn: Connection, rt: Runtime, ticket: dict, now: dt.datetime | None = None,
                     log: list[Event] | None = None) -> tuple[Hours, list[Clock]]:
    """The hours the ticket's level counts, and its clocks as of ``now`` (default: its last event),
    replayed from its log (read here unless given)."""
    if log is None:
        log = logs(conn, [ticket["id"]])[ticket["id"]]
    terms, hours = terms_and_hours(rt, ticket)
    return hours, clocks(log, level_targets(terms) if terms is not None else {}, hours, now)


def terms_and_hours(rt: Runtime, ticket: dict) -> tuple[SupportTerms | None, Hours]:
    """The terms a ticket's level promises (the abuse desk's for a case; None for a level since removed
    from the catalog: no promise to keep) and the hours its clocks count."""
    level = rt.catalog.products.get(ticket["level_code"])
    terms = ABUSE_TERMS if ticket["queue"] == "abuse" else level.support_terms if level is not None else None
    calendar = calendars()[ticket["storefront"]]
    return terms, level_hours(terms, calendar) if terms is not None else calendar


def alert_level(hours: Hours, cs: list[Clock]) -> tuple[int, dt.datetime | None, Clock | None]:
    """The alert the running clocks have reached (0 to 4), when the next one falls, and the clock
    that reached it. The clocks are as of the moment asked: every alert still ahead falls after it."""
    reached, ahead, worst = 0, [], None
    for c in cs:
        if c.state != "running":
            continue
        moments = alert_moments(c, hours, ALERTS)
        if len(ALERTS) - len(moments) > reached:
            reached, worst = len(ALERTS) - len(moments), c
        ahead += [m for _, m in moments]
    return reached, min(ahead, default=None), worst


def refresh(conn: Connection, rt: Runtime, ticket_id: int, **values) -> dict:
    """After a step: write its changes, record the breaches it reveals, and plan the next check.
    An agent acting on a ticket takes over its alerts: the level is set to what the clocks say."""
    now = rt.clock.now()
    ticket = {**conn.execute(select(tk).where(tk.c.id == ticket_id)).mappings().one(), "updated_at": now, **values}
    hours, cs = hours_and_clocks(conn, rt, ticket, now)
    record_breaches(conn, rt, [(ticket, cs)], now)
    level, upcoming, _ = alert_level(hours, cs)
    due = min((c.due_at for c in cs if c.due_at is not None), default=None)
    plan = {"due_at": due, "next_check_at": upcoming, "alert_level": level}
    conn.execute(update(tk).where(tk.c.id == ticket_id).values(updated_at=now, **values, **plan))
    return {**ticket, **plan}


def record_breaches(conn: Connection, rt: Runtime, items: list[tuple[dict, list[Clock]]], now: dt.datetime) -> int:
    """For each (ticket, clocks): a breach per target that ran out by ``now``, once (the unique key),
    with its service credit, mail and audit event. One insert for all, returning the new ones."""
    ran_out = {(t["id"], c.target): (t, c) for t, cs in items for c in reversed(cs)
               if c.breached_at is not None and c.breached_at <= now}  # the first clock of a target wins
    if not ran_out:
        return 0
    rows = [dict(ticket_id=t["id"], target=c.target, breached_at=c.breached_at, recorded_at=now, credit_minor=0)
            for t, c in ran_out.values()]
    new = {tuple(r) for r in conn.execute(
        insert_ignore(conn, breach).returning(breach.c.ticket_id, breach.c.target), rows)}
    mails, events = [], []
    for key in sorted(new):
        ticket, c = ran_out[key]
        credit_note, amount = _credit(conn, rt, ticket, c)
        if credit_note is not None:
            conn.execute(update(breach).where(breach.c.ticket_id == ticket["id"], breach.c.target == c.target)
                         .values(credit_note_id=credit_note, credit_minor=amount))
        mails.append((ticket, c.target, {"target": c.target, "credit_note_id": credit_note}, [ticket["account_id"]]))
        events.append((ticket["id"], None, {"target": c.target, "breached_at": c.breached_at,
                                            "credit_note_id": credit_note, "credit_minor": amount}))
    queue_mails(conn, rt, "ticket_breached", mails)
    audit.record_many(conn, now, ACTOR, "ticket", "ticket.breached", events)
    return len(new)


def _credit(conn: Connection, rt: Runtime, ticket: dict, c: Clock) -> tuple[int | None, int]:
    """The service credit of a breach: ``credit_percent`` of the level's latest invoice line."""
    level = rt.catalog.products.get(ticket["level_code"])
    percent = level.support_terms.credit_percent if level is not None and level.support_terms else 0
    if not percent or ticket["level_service_id"] is None:
        return None, 0
    last = conn.execute(
        select(line.c.id, line.c.net_minor, inv.c.id.label("invoice_id"), inv.c.currency)
        .join(inv, inv.c.id == line.c.invoice_id)
        .where(line.c.service_id == ticket["level_service_id"], inv.c.status.in_(("issued", "paid")),
               inv.c.kind != "credit_note")
        .order_by(line.c.period_start.desc(), line.c.id.desc()).limit(1)).one_or_none()
    if last is None:
        return None, 0
    share = int((Decimal(last.net_minor) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    amount = min(share, last.net_minor - credited_so_far(conn, [last.id]).get(last.id, 0))
    if amount <= 0:
        return None, 0
    reason = f"SLA service credit: ticket {ticket['id']}, {c.target.replace('_', ' ')} target missed"
    credit_note, _ = issue_credit_note(conn, rt, last.invoice_id, {
        "lines": [{"line_id": last.id, "amount": str(from_minor(amount, last.currency))}], "reason": reason},
        f"sla:{ticket['id']}:{c.target}", ACTOR)
    return credit_note, amount


@dataclass
class SlaSummary:
    checked: int = 0
    breaches: int = 0
    escalated: int = 0
    deferred: int = 0  # alerts waiting for the storefront's business hours

    def as_dict(self) -> dict:
        return dict(vars(self))


def run_sla(rt: Runtime, chunk: int = 200, progress=None) -> SlaSummary:
    """Check every ticket whose next check is due: record its breaches, raise its alerts in
    business hours, plan the next check. Chunks of ``chunk`` tickets, one transaction each, with
    a fixed number of statements per chunk (the credit notes of paid levels aside)."""
    summary = SlaSummary()
    now = rt.clock.now()
    while True:
        with unit_of_work(rt) as conn:
            pick = (select(tk).where(tk.c.next_check_at <= now, tk.c.status.not_in(CLOSED))
                    .order_by(tk.c.next_check_at, tk.c.id).limit(chunk))
            if conn.dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            rows = [dict(r) for r in conn.execute(pick).mappings()]
            if rows:
                _check(conn, rt, rows, now, summary)
        summary.checked += len(rows)
        if progress is not None and rows:
            progress(len(rows))
        if len(rows) < chunk:
            return summary


def _check(conn: Connection, rt: Runtime, tickets: list[dict], now: dt.datetime, summary: SlaSummary) -> None:
    """One chunk: replay the clocks, then one statement each for the breaches, the escalations'
    audit events and staff mails, and the plans."""
    chunk_logs = logs(conn, [t["id"] for t in tickets])
    replayed, plans, escalated, alerts = [], [], [], []
    for ticket in tickets:
        hours, cs = hours_and_clocks(conn, rt, ticket, now, chunk_logs[ticket["id"]])
        replayed.append((ticket, cs))
        level, upcoming, worst = alert_level(hours, cs)
        plan = {"b_id": ticket["id"], "b_next": upcoming, "b_level": ticket["alert_level"]}
        if level > ticket["alert_level"]:
            if hours.is_open(now):
                plan["b_level"] = level
                escalated.append((ticket["id"], {"alert_level": ticket["alert_level"]}, {"alert_level": level}))
                alerts.append((ticket, level, {"target": worst.target, "due_at": worst.due_at.isoformat()}))
            else:  # a level of business hours has nobody to tell at night: its alerts wait for the opening
                summary.deferred += 1
                plan["b_next"] = hours.next_open(now)
        plans.append(plan)
    summary.breaches += record_breaches(conn, rt, replayed, now)
    summary.escalated += len(escalated)
    audit.record_many(conn, now, ACTOR, "ticket", "ticket.escalated", escalated)
    queue_staff_mails(conn, rt, alerts)
    conn.execute(update(tk).where(tk.c.id == bindparam("b_id"))
                 .values(next_check_at=bindparam("b_next"), alert_level=bindparam("b_level")), plans)


def breaches_of(conn: Connection, ticket_id: int) -> list[dict]:
    """A ticket's breaches, with the currency of their credit notes."""
    q = (select(breach, inv.c.currency).outerjoin(inv, inv.c.id == breach.c.credit_note_id)
         .where(breach.c.ticket_id == ticket_id).order_by(breach.c.id))
    return [dict(r) for r in conn.execute(q).mappings()]
