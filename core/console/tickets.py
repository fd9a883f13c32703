"""Support in the Manager: a ticket's page (its thread as the customer reads it, its clocks, the
reply form) and the form that opens one on a service. The domain checks who may open, read and
write (:mod:`core.support.tickets`), as for the API."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.params import FromPath

from core.console.customer import Form
from core.console.render import page
from core.console.web import back, posted, record_id, runtime, signed_in
from core.support import sla, tickets
from core.uow import unit_of_work


@get("/manager/tickets/{ticket_id:str}", sync_to_thread=True, include_in_schema=False)
def ticket_page(request: Request, ticket_id: FromPath[str]) -> Response:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "services:read")
        ticket, _ = tickets.get_ticket(conn, who.actor, record_id(ticket_id))
        events = tickets.thread(conn, who.actor, ticket["id"])
        clocks = sla.hours_and_clocks(conn, rt, ticket, rt.clock.now())[1]
    return page(request, who, "ticket.html", ticket=ticket, events=events, clocks=clocks,
                may_reply=not who.actor.is_staff and ticket["status"] != "closed")


@post("/manager/tickets/{ticket_id:str}/messages", sync_to_thread=True, include_in_schema=False)
def reply(request: Request, ticket_id: FromPath[str], data: Form) -> Response:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "services:write")
        posted(who, data)
        ticket = tickets.reply(conn, rt, who.actor, record_id(ticket_id), str(data.get("message") or ""))
    return back(f"/manager/tickets/{ticket['id']}")


@post("/manager/services/{service_id:str}/tickets", sync_to_thread=True, include_in_schema=False)
def open_ticket(request: Request, service_id: FromPath[str], data: Form) -> Response:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "services:write")
        posted(who, data)
        ticket = tickets.open_ticket(conn, rt, who.actor, record_id(service_id), subject=str(data.get("subject") or ""),
                                     body=str(data.get("message") or ""), priority=str(data.get("priority") or "normal"),
                                     category=str(data.get("category") or "technical"))
    return back(f"/manager/tickets/{ticket['id']}")


ROUTES = [ticket_page, reply, open_ticket]
