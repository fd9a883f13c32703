"""Support in the Manager: a ticket's page (its thread as the customer reads it, its clocks, the
reply form) and the form that opens one on a service. The domain checks who may open, read and
write (:mod:`core.support.tickets`), as for the API. :func:`ticket_view` is also the back
office's view of a ticket (with the internal notes, which only staff read)."""

from __future__ import annotations

from babel.dates import format_timedelta
from litestar import Request, Response, get, post
from litestar.params import FromPath

from core.billing.views import plan_name
from core.console.customer import Form
from core.console.render import locale_of, page
from core.console.web import back, posted, record_id, runtime, signed_in
from core.i18n import DEFAULT_LOCALE, format_when, normalise
from core.support import names, sla, tickets
from core.uow import unit_of_work


def ticket_view(conn, rt, who, ticket_id: int, locale: str) -> dict:
    """The ticket as the visitor may read it: its thread, its clocks in words (what is due when, on
    its storefront's wall clock), its level by name."""
    ticket, row = tickets.get_ticket(conn, who.actor, ticket_id)
    zone = sla.calendars()[ticket["storefront"]].zone
    clocks = []
    for c in sla.hours_and_clocks(conn, rt, ticket, rt.clock.now())[1]:
        due = format_when(c.due_at, zone, locale) if c.due_at is not None else ""
        if c.state == "paused":
            due = format_timedelta(c.remaining, locale=normalise(locale) or DEFAULT_LOCALE)
        clocks.append({"target": names.name("target", c.target, locale), "state": names.name("clock", c.state, locale),
                       "paused": c.state == "paused", "breached": c.breached, "due": due,
                       "met": format_when(c.met_at, zone, locale) if c.met_at is not None else ""})
    service = {"id": ticket["service_id"], "name": plan_name(rt.catalog, row["plan_code"], locale), "resource": row["resource"]}
    return {"ticket": ticket, "service": service, "events": tickets.thread(conn, who.actor, ticket["id"]), "clocks": clocks,
            "level": names.level(rt.catalog, ticket, locale)}


@get("/manager/tickets/{ticket_id:str}", sync_to_thread=True, include_in_schema=False)
def ticket_page(request: Request, ticket_id: FromPath[str]) -> Response:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "services:read")
        view = ticket_view(conn, rt, who, record_id(ticket_id), locale_of(request, who))
    return page(request, who, "ticket.html", **view,
                may_reply=not who.actor.is_staff and view["ticket"]["status"] != "closed")


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
