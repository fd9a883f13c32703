"""Notifications to a service's billing contact: queued, rendered with Babel, sent over SMTP.

A notification is queued in the transaction that decides it, set-based, under a unique key
(``suspended:<service>:<day>``, ``renewal_notice:<service>:<expiry>:<days before>``): a job
that runs twice, or on two workers, queues it once. The mail worker leases a batch, renders
each message in the recipient's language at sending time, sends the batch over one SMTP
connection and keeps what it sent (recipient, subject, body). A crash between sending and
recording sends a message again after the lease; its ``Message-ID`` is the same, so mail
systems drop the copy. Failures retry with backoff, then the message is parked with an alert.

Without ``UNIVERS_SMTP_URL`` messages are written as ``.eml`` files in ``<data dir>/mail``, so
a demo needs no mail server.

The mails of a contact change (``contact_change_*``) go to the accounts of the change, not to
the billing contact, and are rendered by :func:`core.contacts.render`; those that carry a
one-time token are kept without it once sent (:attr:`Mail.secret`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import String, cast, literal, literal_column, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from core import audit
from core.audit import Actor
from core.db import insert_ignore, lease_due
from core.i18n import N_, format_day, translate
from core.invoicing import number
from core.models import Account, Invoice, InvoiceLine, Notification, Service
from core.money import format_minor
from core.runtime import Runtime
from core.uow import unit_of_work

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
KINDS = ("renewal_notice", "payment_failed", "suspension_warning", "suspended", "terminated", "reactivated",
         "spending_alert", "terms_changed", "switch_invitation")


def queue(conn: Connection, rt: Runtime, kind: str, rows: Select) -> int:
    """Queue ``kind`` for each row of ``rows``: (key suffix, recipient account id, service id,
    invoice id). A key already queued is skipped. Returns how many were queued."""
    now = literal(rt.clock.now(), type_=note.c.created_at.type)
    sub = rows.subquery()
    cols = list(sub.c)
    return conn.execute(insert_ignore(conn, note).from_select(
        ["kind", "key", "account_id", "service_id", "invoice_id", "status", "attempts", "next_attempt_at", "created_at"],
        select(literal(kind), literal(kind + ":") + cast(cols[0], String), cols[1], cols[2], cols[3], literal("pending"),
               literal(0), now, now).where(literal_column("1") == 1),  # SQLite: INSERT … SELECT … ON CONFLICT needs a WHERE
    ).execution_options(preserve_rowcount=True)).rowcount


def queue_for_services(conn: Connection, rt: Runtime, kind: str, service_ids: list[int], suffix: str) -> int:
    """Queue ``kind`` to the billing contacts of these services, keyed by service and ``suffix``."""
    if not service_ids:
        return 0
    key = cast(svc.c.id, String) + literal(":" + suffix)
    return queue(conn, rt, kind, select(key, svc.c.billing_account_id, svc.c.id, literal(None, svc.c.id.type))
                 .where(svc.c.id.in_(service_ids)))


# --- rendering ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str
    locale: str
    secret: str | None = None  # a one-time token in the body: sent, but never kept (core/contacts.py)

    @property
    def kept_body(self) -> str:
        """The body as the outbox keeps it once sent: without its secret."""
        return self.body.replace(self.secret, "[redacted]") if self.secret else self.body


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
    """The message in the recipient's language, from the data as it is now."""
    if item["kind"].startswith("contact_change"):
        from core import contacts

        return contacts.render(conn, rt, item)
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
        if kind == "spending_alert":  # core/alerts.py: the month so far as it is now
            from core.alerts import reached_amounts

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


# --- delivery ----------------------------------------------------------------------------------


class Transport:
    """Where messages go: an SMTP server, or ``.eml`` files in a directory."""

    def __init__(self, url: str, directory: Path):
        self.url = urlsplit(url) if url else None
        self.directory = directory
        self.smtp: smtplib.SMTP | None = None

    def __enter__(self) -> "Transport":
        if self.url is not None:
            cls = smtplib.SMTP_SSL if self.url.scheme == "smtps" else smtplib.SMTP
            self.smtp = cls(self.url.hostname or "localhost", self.url.port or (465 if self.url.scheme == "smtps" else 25), timeout=30)
            if self.url.scheme == "smtp+starttls":
                self.smtp.starttls()
            if self.url.username:
                self.smtp.login(self.url.username, self.url.password or "")
        else:
            self.directory.mkdir(parents=True, exist_ok=True)
        return self

    def send(self, message: EmailMessage, name: str) -> None:
        if self.smtp is not None:
            self.smtp.send_message(message)
        else:
            (self.directory / f"{name}.eml").write_bytes(bytes(message))

    def __exit__(self, *exc) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except smtplib.SMTPException:
                pass


def message_for(rt: Runtime, item: dict, mail: Mail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = rt.settings.mail_from
    message["To"] = formataddr(("", mail.to)) if "<" not in mail.to else mail.to
    message["Subject"] = mail.subject
    message["Message-ID"] = f"<{hashlib.sha256(item['key'].encode()).hexdigest()[:32]}@notifications.univers>"  # the same on a resend
    message["X-Univers-Notification"] = item["kind"]
    message.set_content(mail.body)
    message["Content-Language"] = mail.locale.replace("_", "-")  # after set_content, which resets Content-*
    return message


@dataclass
class MailStats:
    sent: int = 0
    retried: int = 0
    parked: int = 0


def _claim(conn: Connection, rt: Runtime, limit: int) -> list[dict]:
    ids = lease_due(conn, note, "pending", rt.clock.now(), rt.settings.outbox_lease_seconds, limit)
    return [dict(r) for r in conn.execute(select(note).where(note.c.id.in_(ids)).order_by(note.c.id)).mappings()]


def run_mailer(rt: Runtime, limit: int = 500, batch: int = 50) -> MailStats:
    """Send due notifications (at most ``limit``), ``batch`` per SMTP connection. Safe on several workers."""
    stats = MailStats()
    while stats.sent + stats.retried + stats.parked < limit:
        with unit_of_work(rt) as conn:
            items = _claim(conn, rt, min(batch, limit - stats.sent - stats.retried - stats.parked))
        if not items:
            break
        outcomes: list[tuple[dict, Mail | None, str | None]] = []
        try:
            with Transport(rt.settings.smtp_url, Path(rt.settings.data_dir) / "mail") as transport:
                for item in items:
                    with rt.engine.connect() as conn:
                        mail = render(conn, rt, item)
                    try:
                        transport.send(message_for(rt, item, mail), f"{item['id']:08d}-{item['kind']}")
                        outcomes.append((item, mail, None))
                    except smtplib.SMTPRecipientsRefused as exc:
                        outcomes.append((item, mail, f"recipient refused: {exc.recipients}"))
        except (OSError, smtplib.SMTPException) as exc:  # the server is down: what was not sent waits
            log.warning("mail transport failed: %r", exc)
            done = {o[0]["id"] for o in outcomes}
            outcomes += [(item, None, repr(exc)) for item in items if item["id"] not in done]
        with unit_of_work(rt) as conn:
            for item, mail, error in outcomes:
                _record(conn, rt, item, mail, error, stats)
    return stats


def _record(conn: Connection, rt: Runtime, item: dict, mail: Mail | None, error: str | None, stats: MailStats) -> None:
    now = rt.clock.now()
    if error is None and mail is not None:
        conn.execute(update(note).where(note.c.id == item["id"]).values(
            status="sent", sent_at=now, locked_until=None, recipient=mail.to, subject=mail.subject[:300], body=mail.kept_body,
            last_error=None))
        stats.sent += 1
        return
    if item["attempts"] >= rt.settings.outbox_max_attempts:
        conn.execute(update(note).where(note.c.id == item["id"]).values(status="parked", locked_until=None, last_error=error[:500]))
        audit.record(conn, now, ACTOR, "account", item["account_id"], "notification.parked", None,
                     {"notification_id": item["id"], "kind": item["kind"], "error": error[:500]})
        log.error("notification %s (%s) parked after %s attempts: %s", item["id"], item["kind"], item["attempts"], error)
        stats.parked += 1
    else:
        backoff = dt.timedelta(seconds=min(3600, 30 * 2 ** (item["attempts"] - 1)))
        conn.execute(update(note).where(note.c.id == item["id"]).values(
            next_attempt_at=now + backoff, locked_until=None, last_error=error[:500]))
        stats.retried += 1
