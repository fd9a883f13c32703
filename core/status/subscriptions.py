"""Customers who follow the work board, per universe or all of it (``*``), and the mail each of
them gets on every update: queued in the update's transaction by one ``INSERT … SELECT`` under a
unique key per (update, customer), so a retry queues nothing more; rendered in the customer's
language when sent (:mod:`core.notify.status_mails`)."""

from __future__ import annotations

import json

from sqlalchemy import String, cast, delete, literal, select
from sqlalchemy.engine import Connection

from core import audit
from core.audit import Actor
from core.db import insert_ignore
from core.errors import Forbidden, NotFound
from core.i18n import N_
from core.models import Account, Notification, StatusSubscription
from core.runtime import Runtime
from core.status.scope import check_scope

acct = Account.__table__
note = Notification.__table__
sub = StatusSubscription.__table__
ALL = "*"
KIND = "status_update"


def _universe(rt: Runtime, universe: str) -> str:
    if universe in ("all", ALL):
        return ALL
    check_scope(rt, universe, (), ())
    return universe


def _customer(actor: Actor) -> int:
    if actor.is_staff or actor.account_id is None:
        raise Forbidden(N_("Only customer accounts follow the work board."), code="not_a_customer")
    return actor.account_id


def subscribe(conn: Connection, rt: Runtime, actor: Actor, universe: str) -> tuple[dict, bool]:
    """Follow a universe (``all``: every one). Following twice changes nothing (False)."""
    account_id, universe = _customer(actor), _universe(rt, universe)
    now = rt.clock.now()
    added = conn.execute(insert_ignore(conn, sub).values(account_id=account_id, universe=universe, created_at=now)).rowcount
    if added:
        audit.record(conn, now, actor, "account", account_id, "status.subscribed", None, {"universe": universe})
    row = conn.execute(select(sub).where(sub.c.account_id == account_id, sub.c.universe == universe)).mappings().one()
    return dict(row), bool(added)


def unsubscribe(conn: Connection, rt: Runtime, actor: Actor, universe: str) -> None:
    account_id, universe = _customer(actor), _universe(rt, universe)
    if not conn.execute(delete(sub).where(sub.c.account_id == account_id, sub.c.universe == universe)).rowcount:
        raise NotFound(what="subscription")
    audit.record(conn, rt.clock.now(), actor, "account", account_id, "status.unsubscribed", {"universe": universe}, None)


def subscriptions(conn: Connection, actor: Actor) -> list[dict]:
    account_id = _customer(actor)
    return [dict(r) for r in conn.execute(select(sub).where(sub.c.account_id == account_id).order_by(sub.c.universe)).mappings()]


def queue_update_mails(conn: Connection, rt: Runtime, incident: dict, update_id: int) -> int:
    """A mail about this update to each customer following its universe (or all), open accounts
    only, of the incident's storefronts if it names some: one ``INSERT … SELECT``, keyed
    ``status_update:<update>:<account>`` (a customer following both the universe and all of
    them gets one)."""
    now = rt.clock.now()
    who = (select(sub.c.account_id).distinct()
           .join(acct, acct.c.id == sub.c.account_id)
           .where(sub.c.universe.in_([incident["universe"], ALL]), acct.c.is_staff.is_(False), acct.c.closed_at.is_(None)))
    if incident["storefronts"]:
        who = who.where(acct.c.subsidiary.in_(incident["storefronts"]))
    who = who.subquery()
    rows = select(literal(KIND, String).label("kind"),
                  (literal(f"{KIND}:{update_id}:", String) + cast(who.c.account_id, String)).label("key"),
                  who.c.account_id, literal("pending", String).label("status"), literal(0).label("attempts"),
                  literal(now, note.c.next_attempt_at.type).label("next_attempt_at"),
                  literal(now, note.c.created_at.type).label("created_at"),
                  literal(json.dumps({"incident_id": incident["id"], "update_id": update_id}), String).label("body")
                  ).where(who.c.account_id.is_not(None))  # a WHERE, so that SQLite reads ON CONFLICT as the insert's
    return conn.execute(insert_ignore(conn, note).from_select(
        ["kind", "key", "account_id", "status", "attempts", "next_attempt_at", "created_at", "body"], rows)).rowcount
