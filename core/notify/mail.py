"""The billing notices to a service's billing contact, rendered with Babel in the reader's language.

Notices are queued by the domain that decides them (:mod:`core.notices`) and rendered when they
are sent (:mod:`core.notify.send`), from the data as it is then. The mails of a contact change
go to the accounts of the change and are rendered by :mod:`core.notify.contact_changes`; those
that carry a one-time token are kept without it once sent (:attr:`Mail.secret`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.engine import Connection

from core.audit import Actor
from core.billing.invoicing import number
from core.i18n import N_, format_day, translate
from core.models import Account, Invoice, InvoiceLine, Notification, Service
from core.money import format_minor
from core.runtime import Runtime

log = logging.getLogger("univers.mail")
note = Notification.__table__
svc = Service.__table__
acct = Account.__table__
inv = Invoice.__table__
line = InvoiceLine.__table__
ACTOR = Actor.system("mail")

GREETING = N_("Hello {name},")
SIGNATURE = N_("The {company} billing team")
# kind -> (subject, body). Placeholders: name, service, date, amount, invoice.
MESSAGES = {
    "renewal_notice": (
        N_("Your service {service} renews on {date}"),
        N_("Your service {service} renews automatically on {date}. Invoice {invoice} for {amount} is waiting for "
           "payment: pay it, or top up your prepaid balance, to keep the service running. To stop the service "
           "instead, turn its automatic renewal off before that date."),
    ),
    "renewal_notice_uninvoiced": (
        N_("Your service {service} renews on {date}"),
        N_("Your service {service} renews automatically on {date}, for {amount}. There is nothing to do to keep it. "
           "To stop the service instead, turn its automatic renewal off before that date."),
    ),
    "payment_failed": (
        N_("Payment failed for invoice {invoice}"),
        N_("We could not collect {amount} for invoice {invoice}. We will try again in the coming days; you can also "
           "pay it now or top up your prepaid balance. Services still unpaid on {date} will be suspended."),
    ),
    "suspension_warning": (
        N_("Your service {service} will be suspended on {date}"),
        N_("Invoice {invoice} for {amount} is still unpaid. Your service {service} will be suspended on {date} "
           "unless it is paid. Its data is kept, and the service comes back as soon as the payment arrives."),
    ),
    "suspended": (
        N_("Your service {service} is suspended"),
        N_("Your service {service} is suspended because invoice {invoice} for {amount} is unpaid. Its data is kept. "
           "Pay the invoice and the service comes back at once, with the paid period served in full. Without "
           "payment, the service will be terminated on {date}."),
    ),
    "terminated": (
        N_("Your service {service} is terminated"),
        N_("Your service {service} is terminated. Its data will be deleted on {date}; until then, our support team "
           "can still restore it."),
    ),
    "reactivated": (
        N_("Your service {service} is active again"),
        N_("Thank you: your payment has arrived and your service {service} is active again. It is paid until {date}."),
    ),
    "terms_changed": (
        N_("New terms for your service {service}"),
        N_("The terms of your service {service} change. To keep it renewing, accept the new terms before {date}: "
           "one click in your customer area, nothing to send or sign. Without them, the service ends on {date}."),
    ),
    "switch_invitation": (
        N_("Keep your service {service}: renew onto the new contract"),
        N_("Your service {service} comes from our previous billing system and ends on {date}. Accept the new "
           "contract, with automatic renewal, and it carries on without interruption: one click in your customer "
           "area, nothing to send or sign. Without it, the service ends on {date}."),
    ),
    "spending_alert": (
        N_("Your project {service} has reached its spending alert"),
        N_("Your project {service} has used {amount} (excluding tax) since {date}, which reaches the alert threshold "
           "of {threshold} you set. You will not be warned again this month unless you raise the threshold. Its "
           "consumption so far and its forecast to the month's end are in your customer area."),
    ),
}
# --- rendering ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str
    locale: str
    secret: str | None = None  # a one-time token in the body: sent, but never kept (contact_changes.py)

    @property
    def kept_body(self) -> str:
        """The body as the outbox keeps it once sent: without its secret."""
        return self.body.replace(self.secret, "[redacted]") if self.secret else self.body

    def kept(self) -> "Mail":
        """The message as it may be kept (an ``.eml`` file): its body without the secret."""
        return replace(self, body=self.kept_body, secret=None)


def _open_invoice(conn: Connection, service_id: int, period_start: dt.date | None = None) -> dict | None:
    """The unpaid invoice billing this service (for this period if given), if any."""
    q = (select(inv.c.series, inv.c.fiscal_year, inv.c.seq, inv.c.total_minor, inv.c.currency)
         .join(line, line.c.invoice_id == inv.c.id)
         .where(line.c.service_id == service_id, inv.c.status == "issued", inv.c.kind == "renewal")
         .order_by(inv.c.due_on.desc()).limit(1))
    if period_start is not None:
        q = q.where(line.c.period_start == period_start)
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


def render(conn: Connection, rt: Runtime, item: dict) -> Mail:
    """A billing notice in the recipient's language, from the data as it is now."""
    who = conn.execute(select(acct.c.name, acct.c.email, acct.c.language, acct.c.subsidiary)
                       .where(acct.c.id == item["account_id"])).mappings().one()
    locale = who["language"]
    kind = item["kind"]
    values = {"name": who["name"], "service": "", "date": "", "amount": "", "invoice": "", "threshold": ""}

    def money(minor: int, currency: str) -> str:
        return format_minor(minor, currency, locale)

    if item["service_id"] is not None:
        s = conn.execute(select(svc).where(svc.c.id == item["service_id"])).mappings().one()
        ladder = rt.ladder(s["universe"])
        plan = rt.catalog.plans.get(s["plan_code"])
        name = translate(plan.name, locale, plan.universe) if plan else s["plan_code"]
        values["service"] = f"{name} ({s['resource']})" if s["resource"] else name
        open_invoice = _open_invoice(conn, s["id"], s["expires_on"] if kind in ("renewal_notice", "suspension_warning") else None)
        if open_invoice:
            values["invoice"] = number(open_invoice["series"], open_invoice["fiscal_year"], open_invoice["seq"]) or ""
            values["amount"] = money(open_invoice["total_minor"], open_invoice["currency"])
        day = {
            "renewal_notice": s["expires_on"],
            "suspension_warning": s["expires_on"] + dt.timedelta(days=ladder.suspend_after),
            "suspended": (s["suspended_on"] or rt.clock.today()) + dt.timedelta(days=ladder.terminate_after),
            "terminated": (s["terminated_on"] or rt.clock.today()) + dt.timedelta(days=ladder.delete_after),
            "reactivated": s["expires_on"],
            "terms_changed": s["terms_due_by"],
            "switch_invitation": s["terms_due_by"],
        }.get(kind)
        if kind == "spending_alert":  # core/usage/alerts.py: the month so far as it is now
            from core.usage.alerts import reached_amounts

            amounts = reached_amounts(conn, rt, s["id"])
            today = rt.clock.today()
            day = dt.date(today.year, today.month, 1)
            if amounts is not None:
                values["amount"], values["threshold"] = money(amounts[0], amounts[2]), money(amounts[1], amounts[2])
        if kind == "renewal_notice" and not open_invoice:
            kind = "renewal_notice_uninvoiced"
            values["amount"] = money(s["price_minor"], s["currency"])
    else:
        i = conn.execute(select(inv).where(inv.c.id == item["invoice_id"])).mappings().one()
        values["invoice"] = number(i["series"], i["fiscal_year"], i["seq"]) or ""
        values["amount"] = money(i["total_minor"], i["currency"])
        services = conn.execute(select(svc.c.universe, svc.c.expires_on).join(line, line.c.service_id == svc.c.id)
                                .where(line.c.invoice_id == i["id"], svc.c.state == "active")).all()
        day = min((e + dt.timedelta(days=rt.ladder(u).suspend_after) for u, e in services),
                  default=i["due_on"] + dt.timedelta(days=rt.ladder("*").suspend_after))
    values["date"] = format_day(day, locale) if day else ""
    subject_id, body_id = MESSAGES[kind]
    company = rt.storefronts[who["subsidiary"]].legal_entity["name"]
    body = "\n\n".join([translate(GREETING, locale).format(**values), translate(body_id, locale).format(**values),
                        "-- \n" + translate(SIGNATURE, locale).format(company=company)])
    return Mail(who["email"], translate(subject_id, locale).format(**values), body + "\n", locale)
