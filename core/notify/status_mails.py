"""Mails of the work board (queued by :mod:`core.status.subscriptions`): an update of an incident,
to a customer who follows its universe, in the customer's language. The status and kind are
labels translated here; the title and text are staff's, in the customer's language if they wrote
one, else in English."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.engine import Connection

from core.i18n import N_, translate
from core.models import Account, Incident, IncidentUpdate
from core.notify.mail import GREETING, Mail
from core.runtime import Runtime
from core.status.board import kind_label, pick, status_label
from core.status.subscriptions import KIND

acct = Account.__table__
inc = Incident.__table__
upd = IncidentUpdate.__table__

SUBJECT = N_("Work board: {title} ({status})")
BODY = N_("News on the work board ({kind} {id}, {universe}): {title}. Its status is now: {status}.")
FOLLOW = N_("Follow it at {url}. You get these mails because you follow the work board: "
            "GET /v1/me/status-subscriptions lists what you follow.")
SIGNATURE = N_("The {company} team")


def render(conn: Connection, rt: Runtime, item: dict) -> Mail:
    payload = json.loads(item["body"])
    who = conn.execute(select(acct.c.name, acct.c.email, acct.c.language, acct.c.subsidiary)
                       .where(acct.c.id == item["account_id"])).mappings().one()
    locale = who["language"]
    incident = conn.execute(select(inc).where(inc.c.id == payload["incident_id"])).mappings().one()
    update = conn.execute(select(upd).where(upd.c.id == payload["update_id"])).mappings().one()
    title, _ = pick(incident["titles"], locale)
    text, _ = pick(update["texts"], locale)
    values = {"name": who["name"], "title": title, "id": incident["id"], "universe": incident["universe"],
              "kind": kind_label(incident["kind"], locale),
              "status": status_label(update["status"], locale),
              "url": f"{rt.settings.base_url}/v1/status/{incident['id']}"}
    company = rt.storefronts[who["subsidiary"]].legal_entity["name"]
    parts = [translate(GREETING, locale).format(**values), translate(BODY, locale).format(**values),
             "\n".join("> " + line for line in text.splitlines()), translate(FOLLOW, locale).format(**values)]
    body = "\n\n".join(parts) + "\n\n-- \n" + translate(SIGNATURE, locale).format(company=company) + "\n"
    return Mail(who["email"], translate(SUBJECT, locale).format(**values), body, locale)
