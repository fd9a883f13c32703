"""HTTP handlers for support: tickets on a service, their thread and SLA clocks, and staff's answers.

Customers work under ``/v1/support``; staff answer under ``/v1/staff/support`` and read the same
tickets (with the internal notes) under ``/v1/support``; the abuse desk decides its cases there
too. The domain checks every role.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec
from litestar import Request, get, post
from litestar.params import JSONBody, QueryParameter

from core.api import schemas as s
from core.api.common import After, PathId, caller, runtime, staff
from core.billing.views import Money, money
from core.support import abuse, reports, sla, tickets
from core.uow import unit_of_work

Priority = Literal["low", "normal", "high", "urgent"]
Status = Literal["new", "open", "waiting_for_customer", "waiting_for_third_party", "solved", "closed"]
Subject = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Message = Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]

# --- schemas -------------------------------------------------------------------------------------


class TicketCreate(msgspec.Struct, forbid_unknown_fields=True):
    service_id: Annotated[int, msgspec.Meta(ge=1)]
    subject: Subject
    message: Message
    priority: Priority = "normal"
    category: Literal["technical", "billing"] = "technical"


class TicketReply(msgspec.Struct, forbid_unknown_fields=True):
    message: Message


class TicketAnswer(msgspec.Struct, forbid_unknown_fields=True):
    message: Message | None = None
    internal: bool = False  # an internal note: customers never see it, and it meets no target
    status: Literal["open", "waiting_for_customer", "waiting_for_third_party", "solved", "closed"] | None = None
    priority: Priority | None = None


class AbuseDecision(msgspec.Struct, forbid_unknown_fields=True):
    decision: Literal["lifted", "upheld"]  # lifted: the suspension ends; upheld: it stays
    message: Annotated[str, msgspec.Meta(max_length=20_000)] | None = None  # why, for the customer


class ClockRead(msgspec.Struct):
    target: str  # first_response | next_response | resolution
    cycle: int
    state: str  # running | paused | met | stopped
    started_at: dt.datetime
    limit_minutes: int
    used_minutes: int  # of the level's hours (business or calendar), rounded down
    due_at: dt.datetime | None
    met_at: dt.datetime | None
    breached_at: dt.datetime | None
    breached: bool


class BreachRead(msgspec.Struct):
    target: str
    breached_at: dt.datetime
    credit_note_id: int | None  # the service credit, on the level's latest invoice (a paid level only)
    credit: Money | None


class TicketEventRead(msgspec.Struct):
    at: dt.datetime
    kind: str  # opened | customer_reply | agent_reply | note | status | priority
    author_role: str | None
    value: str | None
    message: str | None


class TicketRead(msgspec.Struct):
    id: int
    service_id: int
    universe: str
    storefront: str
    level: str
    queue: str
    category: str
    subject: str
    priority: str
    status: str
    created_at: dt.datetime
    due_at: dt.datetime | None
    first_response_at: dt.datetime | None
    solved_at: dt.datetime | None
    decision: str | None = None  # an abuse case: lifted | upheld
    alert_level: int = 0  # 1: warned (75 % of a target), 2 to 4: escalated (the breach, 150 %, 200 %)
    clocks: list[ClockRead] = []
    breaches: list[BreachRead] = []
    thread: list[TicketEventRead] = []


class QueuePage(msgspec.Struct):
    items: list[TicketRead]
    next_cursor: str | None  # give it as ``cursor`` for the next page; None: the last page


class Percentiles(msgspec.Struct):
    count: int  # how many tickets have this time
    p50: int | None  # minutes, in the level's hours, without the time waiting for the customer
    p90: int | None


class SupportReportRow(msgspec.Struct):
    storefront: str
    universe: str
    level: str
    opened: int
    answered: int  # every one of them has its first-response time
    solved: int
    first_response_minutes: Percentiles
    resolution_minutes: Percentiles
    breaches: dict[str, int]  # per target
    credits: list[Money]  # the service credits the breaches gave, per currency


def _minutes(delta: dt.timedelta) -> int:
    return int(delta // dt.timedelta(minutes=1))


def ticket_read(conn, rt, actor, ticket: dict, locale: str, *, full: bool = True) -> TicketRead:
    out = TicketRead(ticket["id"], ticket["service_id"], ticket["universe"], ticket["storefront"], ticket["level_code"],
                     ticket["queue"], ticket["category"], ticket["subject"], ticket["priority"], ticket["status"],
                     ticket["created_at"], ticket["due_at"], ticket["first_response_at"], ticket["solved_at"],
                     ticket["decision"], ticket["alert_level"])
    if full:
        out.breaches = [BreachRead(b["target"], b["breached_at"], b["credit_note_id"],
                                   money(b["credit_minor"], b["currency"], locale) if b["currency"] else None)
                        for b in sla.breaches_of(conn, ticket["id"])]
        out.clocks = [ClockRead(c.target, c.cycle, c.state, c.started_at, _minutes(c.limit), _minutes(c.used), c.due_at,
                                c.met_at, c.breached_at, c.breached)
                      for c in sla.hours_and_clocks(conn, rt, ticket, rt.clock.now())[1]]
        out.thread = [TicketEventRead(e["at"], e["kind"], e["author_role"], e["value"], e["body"])
                      for e in tickets.thread(conn, actor, ticket["id"])]
    return out


# --- handlers ------------------------------------------------------------------------------------


@post("/v1/support/tickets", sync_to_thread=True, opt={"scope": "services:write"}, tags=["support"], status_code=201)
def open_ticket(request: Request, data: JSONBody[TicketCreate]) -> TicketRead:
    """Open a ticket on a service, as its admin or tech contact (its billing contact: about invoices),
    or as a partner for a client's service it runs. The level is the customer's in that universe."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        ticket = tickets.open_ticket(conn, rt, actor, data.service_id, subject=data.subject, body=data.message,
                                     priority=data.priority, category=data.category)
        return ticket_read(conn, rt, actor, ticket, locale)


@get("/v1/support/tickets", sync_to_thread=True, opt={"scope": "services:read"}, tags=["support"])
def list_tickets(request: Request, after: After = 0, limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
                 service_id: Annotated[int | None, QueryParameter(ge=1)] = None,
                 status: Annotated[Status | None, QueryParameter()] = None) -> s.Page:
    """The tickets the caller may see (staff: all), by id, keyset-paginated."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        rows = tickets.list_tickets(conn, actor, after=after, limit=limit, service_id=service_id, status=status)
        return s.Page([ticket_read(conn, rt, actor, r, locale, full=False) for r in rows],
                      rows[-1]["id"] if len(rows) == limit else None)


@get("/v1/support/tickets/{ticket_id:int}", sync_to_thread=True, opt={"scope": "services:read"}, tags=["support"])
def get_ticket(request: Request, ticket_id: PathId) -> TicketRead:
    """A ticket, its thread (internal notes for staff only) and its SLA clocks as of now."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        ticket, _ = tickets.get_ticket(conn, actor, ticket_id)
        return ticket_read(conn, rt, actor, ticket, locale)


@post("/v1/support/tickets/{ticket_id:int}/messages", sync_to_thread=True, opt={"scope": "services:write"},
      tags=["support"], status_code=201)
def reply(request: Request, ticket_id: PathId, data: JSONBody[TicketReply]) -> TicketRead:
    """The customer writes in the ticket: one waiting for them, or solved, opens again."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        return ticket_read(conn, rt, actor, tickets.reply(conn, rt, actor, ticket_id, data.message), locale)


@get("/v1/staff/support/tickets", sync_to_thread=True, opt={"scope": "services:read"}, tags=["support"])
def staff_queue(request: Request, limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
                queue: Annotated[Literal["support", "abuse"], QueryParameter()] = "support",
                status: Annotated[Status | None, QueryParameter()] = None,
                cursor: Annotated[str | None, QueryParameter(max_length=80, description="next_cursor of the page before")
                                  ] = None) -> QueuePage:
    """A staff queue: without a status, the tickets whose clocks run, closest to their deadline
    first (``due_at``); with one, that status's tickets by id. Keyset pages."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = staff(conn, request, "ticket.read")
        rows, after = tickets.queue_page(conn, actor, queue, status=status, cursor=cursor, limit=limit)
        return QueuePage([ticket_read(conn, rt, actor, r, locale, full=False) for r in rows], after)


@post("/v1/staff/support/tickets/{ticket_id:int}/answers", sync_to_thread=True, opt={"scope": "services:write"},
      tags=["support"], status_code=200)
def answer(request: Request, ticket_id: PathId, data: JSONBody[TicketAnswer]) -> TicketRead:
    """An agent's step: a public reply or an internal note, and a new status or priority."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        ticket = tickets.answer(conn, rt, actor, ticket_id, body=data.message, internal=data.internal,
                                status=data.status, priority=data.priority)
        return ticket_read(conn, rt, actor, ticket, locale)


@post("/v1/staff/support/abuse-cases/{ticket_id:int}/decision", sync_to_thread=True, opt={"scope": "services:write"},
      tags=["support"], status_code=200)
def decide_abuse_case(request: Request, ticket_id: PathId, data: JSONBody[AbuseDecision]) -> TicketRead:
    """The abuse desk closes a case with its decision, which the customer reads in it: ``lifted``
    ends the suspension, ``upheld`` keeps it."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        return ticket_read(conn, rt, actor, abuse.decide(conn, rt, actor, ticket_id, data.decision, data.message), locale)


@get("/v1/staff/support/report", sync_to_thread=True, opt={"scope": "services:read"}, tags=["support"])
def support_report(request: Request, opened_from: Annotated[dt.date, QueryParameter()],
                   opened_to: Annotated[dt.date, QueryParameter(description="The last day, included")],
                   queue: Annotated[Literal["support", "abuse"], QueryParameter()] = "support") -> list[SupportReportRow]:
    """How a queue kept its promises over the tickets opened in the period (UTC days): per
    storefront, universe and level, the tickets, the times to first response and to resolution,
    the breaches and the service credits."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, _, locale = staff(conn, request, "staff.support")
        return [SupportReportRow(**{**r, "first_response_minutes": Percentiles(**r["first_response_minutes"]),
                                    "resolution_minutes": Percentiles(**r["resolution_minutes"]),
                                    "credits": [money(v, c, locale) for c, v in r["credits"].items()]})
                for r in reports.support_report(conn, rt, opened_from, opened_to, queue)]


ROUTES = [open_ticket, list_tickets, get_ticket, reply, staff_queue, answer, decide_abuse_case, support_report]
