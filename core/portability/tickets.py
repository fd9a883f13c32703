"""The ``tickets`` section of the ``univers-export`` format: the support tickets an account may
read, with their thread and breaches, and their import into another database.

* The tickets are those of the exported services that the account may read: all of them where
  it is the admin or tech contact, those about invoices and the abuse cases where it is only the
  billing contact (as ``GET /v1/support/tickets`` lists them).
* The thread is what the customer reads: every step but the agents' internal notes, which are the
  provider's. The clocks are replayed from it, and a note meets no target, so the clocks read the
  same in the database that imports the document.
* A breach names its credit note (``credit_note_id``, among ``credit_notes``): imported, it keeps
  its unique key on (ticket, target), so the new database never credits it a second time.
* ``opened_by`` is the account's handle when it opened the ticket, else null (another contact, a
  partner, staff, or the abuse desk); authors of messages are given by role only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import msgspec
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from core.models import SlaBreach, SupportTicket, TicketEvent
from core.support.clocks import EVENTS, PRIORITIES, STATUSES
from core.support.tickets import BILLING_SEES

tk = SupportTicket.__table__
ev = TicketEvent.__table__
breach = SlaBreach.__table__
CHUNK = 500


class TicketEventPart(msgspec.Struct, forbid_unknown_fields=True):
    at: dt.datetime
    kind: str  # opened | customer_reply | agent_reply | status | priority (internal notes are not exported)
    value: str | None  # the new status or priority
    author_role: str | None  # admin+tech, support_agent, system...
    message: str | None


class BreachPart(msgspec.Struct, forbid_unknown_fields=True):
    target: str
    breached_at: dt.datetime
    recorded_at: dt.datetime
    credit_note_id: int | None
    credit: str | None  # the credit's amount excluding tax, in the credit note's currency


class TicketPart(msgspec.Struct, forbid_unknown_fields=True):
    id: int
    service_id: int
    opened_by: str | None
    universe: str
    storefront: str
    level: str
    level_service_id: int | None  # the level's subscription, when it is among the services
    queue: str
    category: str
    subject: str
    priority: str
    status: str
    decision: str | None
    due_at: dt.datetime | None
    next_check_at: dt.datetime | None
    alert_level: int
    first_response_at: dt.datetime | None
    solved_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    thread: list[TicketEventPart]
    breaches: list[BreachPart]


def export_tickets(conn: Connection, account_id: int, handle: str, roles: dict[int, set[str]],
                   credit_notes: dict[int, str], amount) -> list[TicketPart]:
    """The tickets of these services (``roles``: service id → the account's roles on it) that the
    account reads, by id; ``credit_notes`` gives the currency of each exported credit note."""
    full = sorted(i for i, r in roles.items() if r & {"admin", "tech"})
    billing = sorted(i for i, r in roles.items() if "billing" in r and not r & {"admin", "tech"})
    rows = []
    for part in _chunks(full):
        rows += conn.execute(select(tk).where(tk.c.service_id.in_(part))).mappings().all()
    for part in _chunks(billing):
        rows += conn.execute(select(tk).where(tk.c.service_id.in_(part), tk.c.category.in_(BILLING_SEES))).mappings().all()
    rows.sort(key=lambda r: r["id"])
    threads: dict[int, list[TicketEventPart]] = {r["id"]: [] for r in rows}
    breaches: dict[int, list[BreachPart]] = {r["id"]: [] for r in rows}
    for part in _chunks(list(threads)):
        for e in conn.execute(select(ev).where(ev.c.ticket_id.in_(part), ev.c.kind != "note").order_by(ev.c.id)).mappings():
            threads[e["ticket_id"]].append(TicketEventPart(e["at"], e["kind"], e["value"], e["author_role"], e["body"]))
        for b in conn.execute(select(breach).where(breach.c.ticket_id.in_(part)).order_by(breach.c.id)).mappings():
            note = b["credit_note_id"] if b["credit_note_id"] in credit_notes else None
            breaches[b["ticket_id"]].append(BreachPart(
                b["target"], b["breached_at"], b["recorded_at"], note,
                amount(b["credit_minor"], credit_notes[note]) if note is not None else None))
    return [TicketPart(
        r["id"], r["service_id"], handle if r["opened_by"] == account_id else None, r["universe"], r["storefront"],
        r["level_code"], r["level_service_id"] if r["level_service_id"] in roles else None, r["queue"], r["category"],
        r["subject"], r["priority"], r["status"], r["decision"], r["due_at"], r["next_check_at"], r["alert_level"],
        r["first_response_at"], r["solved_at"], r["created_at"], r["updated_at"], threads[r["id"]], breaches[r["id"]],
    ) for r in rows]


def import_tickets(conn: Connection, tickets: list[TicketPart], account_id: int, ids: dict[str, dict[int, int]],
                   credit_minor: Callable[[BreachPart], int]) -> dict[int, int]:
    """Insert the tickets (checked by :func:`problem`), their threads and breaches on the imported
    services; old id → new id."""
    new: dict[int, int] = {}
    for t in tickets:
        new[t.id] = conn.execute(insert(tk).values(
            service_id=ids["service"][t.service_id], account_id=account_id,
            opened_by=account_id if t.opened_by is not None else None, universe=t.universe, storefront=t.storefront,
            level_code=t.level, level_service_id=ids["service"].get(t.level_service_id), queue=t.queue,
            category=t.category, subject=t.subject, priority=t.priority, status=t.status, decision=t.decision,
            due_at=t.due_at, next_check_at=t.next_check_at, alert_level=t.alert_level,
            first_response_at=t.first_response_at, solved_at=t.solved_at, created_at=t.created_at,
            updated_at=t.updated_at).returning(tk.c.id)).scalar_one()
    events = [dict(ticket_id=new[t.id], at=e.at, kind=e.kind, value=e.value, author_id=None, author_role=e.author_role,
                   body=e.message) for t in tickets for e in t.thread]
    if events:
        conn.execute(insert(ev), events)
    rows = [dict(ticket_id=new[t.id], target=b.target, breached_at=b.breached_at, recorded_at=b.recorded_at,
                 credit_note_id=ids["invoice"].get(b.credit_note_id), credit_minor=credit_minor(b))
            for t in tickets for b in t.breaches]
    if rows:
        conn.execute(insert(breach), rows)
    return new


def problem(tickets: list[TicketPart], service_ids: set[int], credit_note_ids: set[int]) -> str | None:
    """Why these tickets would not load (or replay), or None."""
    for t in tickets:
        if t.service_id not in service_ids:
            return f"ticket {t.id} is about service {t.service_id}, which is not in the export"
        if t.status not in STATUSES or t.priority not in PRIORITIES or t.queue not in ("support", "abuse"):
            return f"ticket {t.id} has an unknown status, priority or queue"
        if not t.thread or t.thread[0].kind != "opened" or any(e.kind not in EVENTS or e.kind == "note" for e in t.thread):
            return f"the thread of ticket {t.id} does not start with its opening or has an unknown step"
        if any(b.credit_note_id is not None and b.credit_note_id not in credit_note_ids for b in t.breaches):
            return f"a breach of ticket {t.id} names a credit note that is not in the export"
        if len({b.target for b in t.breaches}) != len(t.breaches):
            return f"ticket {t.id} has a target breached twice"
    return None


def _chunks(ids: list[int]):
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]
