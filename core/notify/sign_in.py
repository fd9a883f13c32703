"""The mail with a one-time sign-in link to the console (queued by :mod:`core.console.session`),
in the recipient's language. The link carries the token: the mail is sent with it, and kept
without it (:attr:`core.notify.mail.Mail.secret`)."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select
from sqlalchemy.engine import Connection

from core.i18n import N_, translate
from core.models import Account
from core.notify.mail import GREETING, Mail
from core.runtime import Runtime

acct = Account.__table__
SUBJECT = N_("Your sign-in link")
BODY = N_("Open this link within {minutes} minutes to sign in to your Univers account. It works once.")
IGNORE = N_("If you did not ask for it, ignore this message: nobody can sign in without the link.")


def render(conn: Connection, rt: Runtime, item: dict) -> Mail:
    payload = json.loads(item["body"])
    who = conn.execute(select(acct.c.name, acct.c.email, acct.c.language).where(acct.c.id == item["account_id"])
                       ).mappings().one()
    locale = who["language"]
    minutes = max(1, int((dt.datetime.fromisoformat(payload["expires_at"]) - rt.clock.now()).total_seconds() // 60))
    body = "\n\n".join([translate(GREETING, locale).format(name=who["name"]),
                        translate(BODY, locale).format(minutes=minutes), payload["url"], translate(IGNORE, locale)]) + "\n"
    return Mail(who["email"], translate(SUBJECT, locale), body, locale, secret=payload["token"])
