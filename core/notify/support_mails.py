"""Mails about support tickets and abuse cases (queued by :mod:`core.support.mails`), rendered in
the recipient's language from the data as it is when they are sent."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select
from sqlalchemy.engine import Connection

from core.billing.invoicing import number
from core.i18n import N_, format_moment, translate
from core.models import Account, Invoice, Service, SupportTicket
from core.money import format_minor
from core.notify.mail import GREETING, Mail
from core.runtime import Runtime
from core.support.sla import calendars

acct = Account.__table__
svc = Service.__table__
tk = SupportTicket.__table__
inv = Invoice.__table__

SIGNATURE = N_("The {company} support team")
TARGETS = {"first_response": N_("first response"), "next_response": N_("next response"), "resolution": N_("resolution")}
PRIORITIES = {"low": N_("low"), "normal": N_("normal"), "high": N_("high"), "urgent": N_("urgent")}
DESK = N_("abuse desk")
TAKE = N_("Take it now: POST /v1/staff/support/tickets/{ticket}/answers.")
REPLY = N_("Answer in the ticket: POST /v1/support/tickets/{ticket}/messages.")
# kind -> (subject, body). Placeholders: name, ticket, subject, service, target, amount, invoice, and for
# the staff's alerts priority, level, due and escalation.
MESSAGES = {
    "ticket_answered": (
        N_("Ticket {ticket}: {subject}"),
        N_("Our support team has answered your ticket {ticket} about {service}:"),
    ),
    "ticket_breached": (
        N_("Ticket {ticket}: we missed our target"),
        N_("We did not meet the {target} time of your support level on ticket {ticket} about {service}. We are "
           "sorry: the ticket stays our priority until it is solved."),
    ),
    "ticket_breached_credit": (
        N_("Ticket {ticket}: we missed our target"),
        N_("We did not meet the {target} time of your support level on ticket {ticket} about {service}. As its "
           "terms provide, {amount} is credited to your prepaid balance (credit note {invoice}), which pays your "
           "next invoice first."),
    ),
    "ticket_warning": (
        N_("Ticket {ticket}: the {target} target runs out at {due}"),
        N_("Ticket {ticket} ({priority}, {level}) about {service} has used three quarters of its {target} time, "
           "which runs out at {due}."),
    ),
    "ticket_escalated": (
        N_("Ticket {ticket}: escalation {escalation} of 3"),
        N_("The {target} target of ticket {ticket} ({priority}, {level}) about {service} ran out at {due}: the "
           "ticket is escalated to level {escalation} of 3."),
    ),
    "abuse_case_opened": (
        N_("Your service {service} is suspended for abuse"),
        N_("Your service {service} is suspended because of this report. Its data is kept. Tell us what you have "
           "done about it in abuse case {ticket}: our abuse desk answers within 4 business hours of your message."),
    ),
    "abuse_lifted": (
        N_("Abuse case {ticket}: the suspension is lifted"),
        N_("Our abuse desk has closed case {ticket} about {service}: the suspension is lifted."),
    ),
    "abuse_upheld": (
        N_("Abuse case {ticket}: the suspension stays"),
        N_("Our abuse desk has closed case {ticket} about {service}: the suspension stays in place. No data is "
           "deleted because of it."),
    ),
}


def render(conn: Connection, rt: Runtime, item: dict) -> Mail:
    kind = item["kind"]
    ticket = conn.execute(select(tk).where(tk.c.id == int(item["key"].split(":")[1]))).mappings().one()
    payload = json.loads(item["body"]) if item.get("body") else {}
    who = conn.execute(select(acct.c.name, acct.c.email, acct.c.language, acct.c.subsidiary)
                       .where(acct.c.id == item["account_id"])).mappings().one()
    locale = who["language"]
    s = conn.execute(select(svc.c.plan_code, svc.c.resource, svc.c.abuse_reason)
                     .where(svc.c.id == ticket["service_id"])).mappings().one()
    plan = rt.catalog.plans.get(s["plan_code"])
    service = translate(plan.name, locale, plan.universe) if plan else s["plan_code"]
    values = {"name": who["name"], "ticket": ticket["id"], "subject": ticket["subject"],
              "service": f"{service} ({s['resource']})" if s["resource"] else service, "target": "", "amount": "",
              "invoice": ""}
    quoted = None  # a text written by a person, quoted as it was written
    if kind == "ticket_answered":
        quoted = payload.get("message")
    elif kind in ("ticket_breached", "ticket_escalated"):
        target = TARGETS[payload["target"]]  # a variable: the extractor takes a literal argument for a msgid
        values["target"] = translate(target, locale)
    if kind == "ticket_escalated":
        priority, level = PRIORITIES[ticket["priority"]], rt.catalog.products.get(ticket["level_code"])
        values.update(priority=translate(priority, locale), escalation=payload["level"] - 1,
                      level=translate(level.name, locale, level.universe) if level else translate(DESK, locale),
                      due=format_moment(dt.datetime.fromisoformat(payload["due_at"]),
                                        calendars()[ticket["storefront"]].zone, locale))
        kind = "ticket_warning" if payload["level"] == 1 else kind
    elif kind == "ticket_breached":
        if payload.get("credit_note_id"):
            kind = "ticket_breached_credit"
            note = conn.execute(select(inv).where(inv.c.id == payload["credit_note_id"])).mappings().one()
            values["invoice"] = number(note["series"], note["fiscal_year"], note["seq"]) or ""
            values["amount"] = format_minor(note["total_minor"], note["currency"], locale)
    elif kind == "abuse_case_opened":
        quoted = s["abuse_reason"] or ticket["subject"]  # the reason, whole (the subject keeps its first 200 characters)
    elif kind == "abuse_decided":
        kind = "abuse_lifted" if payload.get("decision") == "lifted" else "abuse_upheld"
        quoted = payload.get("message")
    subject_id, body_id = MESSAGES[kind]
    parts = [translate(GREETING, locale).format(**values), translate(body_id, locale).format(**values)]
    if quoted:
        parts.append("\n".join("> " + line for line in quoted.splitlines()))
    if kind in ("ticket_answered", "abuse_case_opened"):
        parts.append(translate(REPLY, locale).format(**values))
    elif kind in ("ticket_warning", "ticket_escalated"):
        parts.append(translate(TAKE, locale).format(**values))
    company = rt.storefronts[who["subsidiary"]].legal_entity["name"]
    body = "\n\n".join(parts) + "\n\n-- \n" + translate(SIGNATURE, locale).format(company=company) + "\n"
    return Mail(who["email"], translate(subject_id, locale).format(**values), body, locale)
