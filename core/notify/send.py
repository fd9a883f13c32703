"""Sending notices: the mail worker leases a batch, renders each message in the recipient's
language at sending time, sends the batch over one SMTP connection and keeps what it sent
(recipient, subject, body).

A crash between sending and recording sends a message again after the lease; its
``Message-ID`` is the same, so mail systems drop the copy. Failures retry with backoff, then the
message is parked with an alert. Without ``UNIVERS_SMTP_URL`` messages are written as ``.eml``
files in ``<data dir>/mail``, so a demo needs no mail server. A file is not a delivery: it holds
what the database keeps, a one-time token (a contact change's, a sign-in link's) replaced by
``[redacted]``; the token is only ever in a message actually sent to its recipient.
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

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from core import audit
from core.audit import Actor
from core.db import lease_due
from core.models import Notification
from core.notify import contact_changes, sign_in, status_mails, support_mails
from core.notify import mail as notices
from core.notify.mail import Mail
from core.runtime import Runtime
from core.support.mails import KINDS as SUPPORT_KINDS
from core.uow import unit_of_work

log = logging.getLogger("univers.mail")
note = Notification.__table__
ACTOR = Actor.system("mail")


def render(conn: Connection, rt: Runtime, item: dict) -> Mail:
    """The message in the recipient's language, from the data as it is now."""
    if item["kind"].startswith("contact_change"):
        return contact_changes.render(conn, rt, item)
    if item["kind"] in SUPPORT_KINDS:
        return support_mails.render(conn, rt, item)
    if item["kind"] == status_mails.KIND:
        return status_mails.render(conn, rt, item)
    if item["kind"] == "sign_in_link":
        return sign_in.render(conn, rt, item)
    return notices.render(conn, rt, item)


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

    def send(self, rt: Runtime, item: dict, mail: Mail, name: str) -> None:
        if self.smtp is not None:
            self.smtp.send_message(message_for(rt, item, mail))
        else:  # a file on this server, readable by whoever reads the data directory: without the token
            (self.directory / f"{name}.eml").write_bytes(bytes(message_for(rt, item, mail.kept())))

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
        down: set[int] = set()  # not sent because the server could not be reached: no fault of theirs
        try:
            with Transport(rt.settings.smtp_url, Path(rt.settings.data_dir) / "mail") as transport:
                for item in items:
                    with rt.engine.connect() as conn:
                        mail = render(conn, rt, item)
                    try:
                        transport.send(rt, item, mail, f"{item['id']:08d}-{item['kind']}")
                        outcomes.append((item, mail, None))
                    except smtplib.SMTPRecipientsRefused as exc:
                        outcomes.append((item, mail, f"recipient refused: {exc.recipients}"))
        except (OSError, smtplib.SMTPException) as exc:  # the server is down: what was not sent waits
            log.warning("mail transport failed: %r", exc)
            done = {o[0]["id"] for o in outcomes}
            down = {item["id"] for item in items if item["id"] not in done}
            outcomes += [(item, None, repr(exc)) for item in items if item["id"] in down]
        with unit_of_work(rt) as conn:
            for item, mail, error in outcomes:
                _record(conn, rt, item, mail, error, stats, server_down=item["id"] in down)
    return stats


def _record(conn: Connection, rt: Runtime, item: dict, mail: Mail | None, error: str | None, stats: MailStats,
            server_down: bool = False) -> None:
    """Keep what was sent; else retry with backoff, and park after the last attempt. A message
    that waited only because the server was down is never parked: it waits, retried at most an
    hour apart, and goes once the server is back (an outage of hours loses no mail)."""
    now = rt.clock.now()
    if error is None and mail is not None:
        conn.execute(update(note).where(note.c.id == item["id"]).values(
            status="sent", sent_at=now, locked_until=None, recipient=mail.to, subject=mail.subject[:300], body=mail.kept_body,
            last_error=None))
        stats.sent += 1
        return
    if item["attempts"] >= rt.settings.outbox_max_attempts and not server_down:
        conn.execute(update(note).where(note.c.id == item["id"]).values(status="parked", locked_until=None, last_error=error[:500]))
        audit.record(conn, now, ACTOR, "account", item["account_id"], "notification.parked", None,
                     {"notification_id": item["id"], "kind": item["kind"], "error": error[:500]})
        log.error("notification %s (%s) parked after %s attempts: %s", item["id"], item["kind"], item["attempts"], error)
        stats.parked += 1
    else:
        backoff = dt.timedelta(seconds=min(3600, 30 * 2 ** min(item["attempts"] - 1, 7)))
        conn.execute(update(note).where(note.c.id == item["id"]).values(
            next_attempt_at=now + backoff, locked_until=None, last_error=error[:500]))
        stats.retried += 1
