"""The mails of a contact change (core.customers.contacts), in the recipient's language.

The token mails carry the one-time token, the API paths to answer at and the deadline; the
outcome mails say what became of the change.
"""

from __future__ import annotations

import json

from sqlalchemy.engine import Connection

from core.customers import contacts
from core.i18n import N_, format_day, translate
from core.notify.mail import GREETING, SIGNATURE, Mail
from core.runtime import Runtime

ROLE_NAMES = {
    "admin": N_("administrative contact (holder of the service)"),
    "tech": N_("technical contact"),
    "billing": N_("billing contact"),
}
# kind -> (subject, body). Placeholders: service, requester, other (the other side), new (the
# incoming account), by (who refused or cancelled), date (the deadline).
MESSAGES = {
    "contact_change_from": (
        N_("Contact change for {service}: your answer is needed"),
        N_("{requester} asked that {other} take over your role as a contact of the service {service}. The change is "
           "made only once both you and {other} have accepted it; either of you may refuse it."),
    ),
    "contact_change_to": (
        N_("You are proposed as a contact for {service}"),
        N_("{requester} asked that you become a contact of the service {service}, in place of {other}. The change "
           "is made only once both you and {other} have accepted it; either of you may refuse it."),
    ),
    "contact_change_done": (
        N_("Contact change done for {service}"),
        N_("The change of contact of the service {service}, asked by {requester}, is done: {new} now holds the "
           "role below."),
    ),
    "contact_change_refused": (
        N_("Contact change refused for {service}"),
        N_("{by} refused the change of contact of the service {service} asked by {requester}. Nothing has changed."),
    ),
    "contact_change_expired": (
        N_("Contact change expired for {service}"),
        N_("The change of contact of the service {service} that you asked for was not accepted by both accounts "
           "before {date}. Nothing has changed; you may ask for it again."),
    ),
    "contact_change_cancelled": (
        N_("Contact change cancelled for {service}"),
        N_("{by} cancelled the change of contact of the service {service}. Nothing has changed, and the tokens "
           "sent for it are no longer valid."),
    ),
}
ROLE_LINE = N_("Role: {role}")
DEADLINE = N_("This request is valid until {date}.")
HOW_TO_ANSWER = N_("To accept, send POST {accept} with the body {example}, authenticated with the API key of your "
                   "own account: the token alone is not enough. To refuse, send POST {refuse} with the same body.")
TOKEN_LINE = N_("Your one-time token: {token}")
CONSOLE_LINE = N_("Or answer in the Manager, signed in to your own account: {url}")



def _label(account: dict) -> str:
    return f"{account['name']} ({account['handle']})"


def render(conn: Connection, rt: Runtime, item: dict) -> Mail:
    """A contact change mail in the recipient's language (called by the mail worker)."""
    kind = item["kind"]
    change = contacts._change(conn, int(item["key"].split(":")[1]))
    payload = json.loads(item["body"]) if item.get("body") else {}
    ids = contacts._parties(change) | {item["account_id"]} | ({payload["by"]} if payload.get("by") else set())
    accounts = contacts.accounts_by_id(conn, ids)
    who = accounts[item["account_id"]]
    locale = who["language"]
    service = contacts._service(conn, change["service_id"])
    plan = rt.catalog.plans.get(service["plan_code"])
    name = translate(plan.name, locale, plan.universe) if plan else service["plan_code"]
    token = payload.get("token", "")
    side = "to" if kind == contacts.TOKEN_KINDS["to"] else "from"
    role_name = ROLE_NAMES[change["role"]]
    values = {
        "name": who["name"],
        "service": f"{name} ({service['resource']})" if service["resource"] else name,
        "requester": _label(accounts[change["requested_by"]]),
        "other": _label(accounts[change["to_account_id" if side == "from" else "from_account_id"]]),
        "new": _label(accounts[change["to_account_id"]]),
        "by": _label(accounts[payload["by"]]) if payload.get("by") else "",
        "date": format_day(change["expires_at"].date(), locale),
        "role": translate(role_name, locale),
        "token": token,
        "example": json.dumps({"token": token}),
        "url": f"{rt.settings.base_url}/manager/contact-changes/{change['id']}?token={token}",
        **contacts.paths(change["id"]),
    }
    subject_id, body_id = MESSAGES[kind]
    parts = [translate(GREETING, locale), translate(body_id, locale), translate(ROLE_LINE, locale)]
    if kind in contacts.TOKEN_KINDS.values():
        parts += [translate(DEADLINE, locale), translate(HOW_TO_ANSWER, locale), translate(TOKEN_LINE, locale),
                  translate(CONSOLE_LINE, locale)]
    company = rt.storefronts[who["subsidiary"]].legal_entity["name"]
    body = "\n\n".join(p.format(**values) for p in parts)
    body += "\n\n-- \n" + translate(SIGNATURE, locale).format(company=company) + "\n"
    return Mail(who["email"], translate(subject_id, locale).format(**values), body, locale, secret=token or None)
