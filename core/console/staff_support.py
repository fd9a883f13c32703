"""Support in the back office: the queues (support, and the abuse desk's cases), each with the
tickets whose clocks run closest to their deadline first, or one status's tickets, in keyset
pages; a ticket's page with its whole thread (internal notes too) and its clocks; and the forms
that answer it, add an internal note, change its status or priority, or (for an abuse case)
decide it. Reading a queue is the API's ``ticket.read`` row of the permission table; the forms
are shown to the roles that may use them (``ticket.answer``, ``abuse.decide``), and the domain
refuses them to the others if posted (:mod:`core.support.tickets`, :mod:`core.support.abuse`)."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.params import FromPath

from core.access import allowed, key_allows
from core.console.customer import Form
from core.console.render import locale_of, page
from core.console.tickets import ticket_view
from core.console.web import back, posted, record_id, runtime, signed_in
from core.customers.contacts import accounts_by_id
from core.errors import InvalidInput
from core.i18n import N_
from core.support import abuse, names, tickets
from core.support.clocks import PRIORITIES, STATUSES
from core.uow import unit_of_work

QUEUES = ("support", "abuse")
PAGE = 50


@get("/backoffice/support", sync_to_thread=True, include_in_schema=False)
def queue(request: Request) -> Response:
    """One queue: without a status the tickets whose clocks run, the closest deadline first; with a
    status, that status's tickets by number. The next page starts after the last row (a cursor)."""
    rt = runtime(request)
    q = request.query_params
    chosen = q.get("queue") if q.get("queue") in QUEUES else "support"
    status = q.get("status") if q.get("status") in STATUSES else None
    cursor = (q.get("cursor") or "")[:80] or None
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "services:read", staff_action="ticket.read")
        rows, next_cursor = tickets.queue_page(conn, who.actor, chosen, status=status, cursor=cursor, limit=PAGE)
        customers = accounts_by_id(conn, {r["account_id"] for r in rows})
    locale, now = locale_of(request, who), rt.clock.now()
    items = [{**r, "customer": customers[r["account_id"]], "level": names.level(rt.catalog, r, locale),
              "late": r["due_at"] is not None and r["due_at"] <= now} for r in rows]
    return page(request, who, "staff_support.html", rows=items, queue=chosen, queues=QUEUES, shown=status,
                statuses=STATUSES, next_cursor=next_cursor)


@get("/backoffice/tickets/{ticket_id:str}", sync_to_thread=True, include_in_schema=False)
def ticket_page(request: Request, ticket_id: FromPath[str]) -> Response:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "services:read", staff_action="ticket.read")
        view = ticket_view(conn, rt, who, record_id(ticket_id), locale_of(request, who))
        customer = accounts_by_id(conn, [view["ticket"]["account_id"]])[view["ticket"]["account_id"]]
    ticket, role = view["ticket"], {who.actor.staff_role}
    writes = key_allows(who.actor.scopes, "services:write") and ticket["status"] != "closed"
    abuse_case = ticket["queue"] == "abuse"
    return page(request, who, "staff_ticket.html", **view, customer=customer, priorities=PRIORITIES,
                statuses=[s for s in tickets.STAFF_STATUSES if not (abuse_case and s in ("solved", "closed"))],
                may_answer=writes and allowed(role, "abuse.decide" if abuse_case else "ticket.answer"),
                may_decide=writes and abuse_case and allowed(role, "abuse.decide"))


@post("/backoffice/tickets/{ticket_id:str}/answers", sync_to_thread=True, include_in_schema=False)
def answer(request: Request, ticket_id: FromPath[str], data: Form) -> Response:
    """A public answer or an internal note, and a new status or priority: each is optional, one is needed."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "services:write", staff_action="ticket.read")
        posted(who, data)
        ticket = tickets.answer(conn, rt, who.actor, record_id(ticket_id), body=_given(data, "message"),
                                internal=bool(data.get("internal")), status=_given(data, "status"),
                                priority=_given(data, "priority"))
    return back(f"/backoffice/tickets/{ticket['id']}")


@post("/backoffice/tickets/{ticket_id:str}/decision", sync_to_thread=True, include_in_schema=False)
def decide(request: Request, ticket_id: FromPath[str], data: Form) -> Response:
    """The abuse desk closes a case: the suspension lifted or upheld, with a message the customer reads."""
    decision = str(data.get("decision") or "")
    if decision not in abuse.DECISIONS:
        raise InvalidInput(N_("The decision is lifted or upheld."), code="invalid_decision")
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "services:write", staff_action="ticket.read")
        posted(who, data)
        case = abuse.decide(conn, rt, who.actor, record_id(ticket_id), decision, _given(data, "message"))
    return back(f"/backoffice/tickets/{case['id']}")


def _given(data: dict, name: str) -> str | None:
    value = str(data.get(name) or "").strip()
    return value or None


ROUTES = [queue, ticket_page, answer, decide]
