"""The contact change of a service: its admin asks, both accounts accept, then it applies.

A service has three contacts (``admin``, ``tech``, ``billing``); ``account_id``, its holder, is
always the admin. A change of one of them runs through a :class:`~core.models.ContactChange`:

1. **request** (:func:`request_change`, permission ``service.contacts``: the admin only) names
   the role and the incoming account's handle. It is refused with no service left to change
   (``service_ended``), an unknown, closed or staff account (``unknown_account``,
   ``account_not_eligible``), an admin or billing contact of another storefront than the
   service's (``subsidiary_mismatch``; a tech contact may be anyone's), the account that
   already holds the role (``same_contact``), a change of that role already pending
   (``change_pending``) or an invoice of the service still unpaid (``unpaid_invoice``).
2. Two **one-time tokens** are drawn, one for the outgoing account and one for the incoming
   one, and mailed to each through the notification outbox. Only their SHA-256 is kept in
   ``contact_change``. Each side answers with :func:`answer`: it must present *its own* token
   while authenticated as *its own* account, so a forwarded or leaked e-mail alone changes
   nothing. A token that matches neither side of this change is ``token_invalid``, the other
   side's token (or one's own, presented by someone else) ``token_wrong_account``, a token used
   twice ``token_used``, one past ``expires_at`` ``token_expired``, and any token of a change
   that is no longer pending ``change_not_pending``.
3. Either side may **refuse**; the admin may **cancel** while it is pending
   (:func:`cancel_change`); a pending change past ``expires_at`` **expires**, lazily when one of
   its tokens is used and in bulk by the daily job (:func:`expire_changes`).
4. The second acceptance **applies** the change in the same transaction: the contact column
   moves (an admin change also moves ``account_id``), the change is ``done``. The unpaid
   invoice check runs again here; if it fails, the acceptance is rolled back with it and may be
   given again once the invoice is paid.

An outgoing account that is closed cannot sign in any more: its consent is not asked (it is
recorded as given at the request) and it gets no mail.

**Tokens in the outbox.** Notifications are rendered when they are sent, from the data as it
is then; a token cannot be read back from its hash, so the clear token is stored with its
notification when it is queued (``notification.body`` holds ``{"token": …}`` until sending).
The mail worker renders the message around it and, once sent, keeps the body with the token
replaced by ``[redacted]`` (:attr:`core.notify.mail.Mail.secret`). A token mail not sent yet
when its change ends (done, refused, cancelled, expired) is dropped with its token
(``status = 'dropped'``), so a clear token never outlives its change in the database.

Every step is an audit event on the service (``contact_change.requested``, ``.accepted``,
``.refused``, ``.cancelled``, ``.expired``, ``.applied``) with the actor and its role: its
roles on the service, plus ``outgoing:<role>`` or ``incoming:<role>`` for a side of the change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets

from sqlalchemy import String, cast, func, insert, literal, select, update
from sqlalchemy.engine import Connection

from core import audit, notices
from core.access import SERVICE_ROLES, check
from core.audit import Actor
from core.db import insert_ignore
from core.errors import Conflict, Forbidden, InvalidInput, InvalidState, NotFound
from core.i18n import N_
from core.lifecycle.services import get_service
from core.models import (
    Account,
    ContactChange,
    Invoice,
    InvoiceLine,
    Notification,
    Service,
)
from core.runtime import Runtime

cc = ContactChange.__table__
svc = Service.__table__
acct = Account.__table__
inv = Invoice.__table__
line = InvoiceLine.__table__
note = Notification.__table__
ACTOR = Actor.system("contacts")
SIDES = ("from", "to")
REDACTED = "[redacted]"
STATUS_NAMES = {"pending": N_("Waiting for answers"), "done": N_("Done"), "refused": N_("Refused"),
                "expired": N_("Expired"), "cancelled": N_("Cancelled")}

# notification kinds (the column holds 24 characters): one per side with its token, one per outcome
TOKEN_KINDS = {"from": "contact_change_from", "to": "contact_change_to"}
OUTCOME_KINDS = {"done": "contact_change_done", "refused": "contact_change_refused",
                 "expired": "contact_change_expired", "cancelled": "contact_change_cancelled"}
KINDS = (*TOKEN_KINDS.values(), *OUTCOME_KINDS.values())


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def paths(change_id: int) -> dict[str, str]:
    """The API paths a side answers at (named in its mail)."""
    return {"accept": f"/v1/contact-changes/{change_id}/accept", "refuse": f"/v1/contact-changes/{change_id}/refuse"}


# --- reading -----------------------------------------------------------------------------------


def _service(conn: Connection, service_id: int, *, lock: bool = False) -> dict | None:
    q = select(svc).where(svc.c.id == service_id)
    if lock and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).mappings().one_or_none()
    return dict(row) if row else None


def _change(conn: Connection, change_id: int, *, lock: bool = False) -> dict | None:
    q = select(cc).where(cc.c.id == change_id)
    if lock and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).mappings().one_or_none()
    return dict(row) if row else None


def _parties(change: dict) -> set[int]:
    return {change["requested_by"], change["from_account_id"], change["to_account_id"]}


def _visible_change(conn: Connection, actor: Actor, change_id: int, *, lock_service: bool = False) -> tuple[dict, dict]:
    """The change and its service, if the actor asked for it, is one of its sides, or may read
    the service (any contact role, or staff); otherwise "not found". The service row is locked
    before the change row, the order every write here takes."""
    change = _change(conn, change_id)
    if change is None:
        raise NotFound(what="contact change")
    service = _service(conn, change["service_id"], lock=lock_service)
    if actor.account_id not in _parties(change) and not actor.roles_on(service):
        raise NotFound(what="contact change")
    if lock_service:
        change = _change(conn, change_id, lock=True)
    return change, service


def get_change(conn: Connection, actor: Actor, change_id: int) -> dict:
    return _visible_change(conn, actor, change_id)[0]


def service_contacts(conn: Connection, rt: Runtime, actor: Actor, service_id: int) -> tuple[dict, dict[str, dict], list[dict]]:
    """The service, its three contacts (handle and name, by role), and its pending changes (each
    with the ``people`` it names, as :func:`with_people` gives them)."""
    row = get_service(conn, actor, service_id, action="service.read")
    pending = [dict(r) for r in conn.execute(select(cc).where(cc.c.service_id == service_id, cc.c.status == "pending",
                                                              cc.c.expires_at > rt.clock.now())
                                             .order_by(cc.c.id)).mappings()]
    ids = {row[f"{role}_account_id"] for role in SERVICE_ROLES}.union(*(_parties(c) for c in pending))
    accounts = accounts_by_id(conn, ids)
    return (row, {role: accounts[row[f"{role}_account_id"]] for role in SERVICE_ROLES},
            [_named(c, accounts) for c in pending])


def accounts_by_id(conn: Connection, ids) -> dict[int, dict]:
    """Accounts by id (handle, name, e-mail, language, storefront, closed, staff), in one query."""
    rows = conn.execute(select(acct.c.id, acct.c.handle, acct.c.name, acct.c.email, acct.c.language, acct.c.subsidiary,
                               acct.c.closed_at, acct.c.is_staff).where(acct.c.id.in_(set(ids)))).mappings()
    return {r["id"]: dict(r) for r in rows}


def _named(change: dict, accounts: dict[int, dict]) -> dict:
    people = {side: {"handle": accounts[change[column]]["handle"], "name": accounts[change[column]]["name"]}
              for side, column in (("requester", "requested_by"), ("from", "from_account_id"), ("to", "to_account_id"))}
    return {**change, "people": people}


def with_people(conn: Connection, changes: list[dict]) -> list[dict]:
    """Changes with the handle and name of their requester and their two sides (``people``), in one query."""
    if not changes:
        return []
    accounts = accounts_by_id(conn, set().union(*(_parties(c) for c in changes)))
    return [_named(c, accounts) for c in changes]


def handles(conn: Connection, change: dict) -> dict[str, str]:
    """The handles of a change's accounts: requester, from, to."""
    people = change.get("people") or with_people(conn, [change])[0]["people"]
    return {side: person["handle"] for side, person in people.items()}


def waiting_for(conn: Connection, rt: Runtime, actor: Actor, limit: int = 20) -> list[dict]:
    """The pending changes that wait for this account's answer (as the outgoing or the incoming
    side, not answered yet), oldest first, with their ``people`` and their service's plan and
    resource. Each side is found through its own index."""
    me, now = actor.account_id, rt.clock.now()
    sides = [select(cc.c.id).where(cc.c[f"{side}_account_id"] == me, cc.c.status == "pending",
                                   cc.c[f"{side}_accepted_at"].is_(None), cc.c.expires_at > now) for side in SIDES]
    ids = sorted({i for q in sides for i in conn.execute(q.limit(limit)).scalars()})[:limit]
    if not ids:
        return []
    rows = conn.execute(select(cc, svc.c.plan_code, svc.c.resource).join(svc, svc.c.id == cc.c.service_id)
                        .where(cc.c.id.in_(ids)).order_by(cc.c.id)).mappings().all()
    return with_people(conn, [dict(r) for r in rows])


def change_for(conn: Connection, rt: Runtime, actor: Actor, change_id: int) -> dict:
    """A change as one of its parties (or a contact of its service, or staff) reads it: its
    ``people``, its service's plan and resource, the ``side`` the actor is (``from``, ``to`` or
    None), and whether that side may still answer it (``may_answer``). Anyone else: not found."""
    change, service = _visible_change(conn, actor, change_id)
    side = next((s for s in SIDES if change[f"{s}_account_id"] == actor.account_id), None)
    open_ = change["status"] == "pending" and change["expires_at"] > rt.clock.now()
    return {**with_people(conn, [change])[0], "plan_code": service["plan_code"], "resource": service["resource"],
            "subsidiary": service["subsidiary"],
            "side": side, "may_answer": side is not None and open_ and change[f"{side}_accepted_at"] is None}


# --- the checks --------------------------------------------------------------------------------


def unpaid_invoices(conn: Connection, service_id: int) -> int:
    """Issued invoices (not paid, not credited) with a line for this service."""
    billed = select(line.c.id).where(line.c.invoice_id == inv.c.id, line.c.service_id == service_id).exists()
    return conn.execute(select(func.count()).select_from(inv)
                        .where(inv.c.status == "issued", inv.c.kind != "credit_note", billed)).scalar_one()


def _check_paid(conn: Connection, service_id: int) -> None:
    if unpaid_invoices(conn, service_id):
        raise Conflict(N_("This service has an unpaid invoice; its contacts can change once it is paid."),
                       code="unpaid_invoice")


def _check_open(service: dict) -> None:
    if service["state"] == "deleted":
        raise InvalidState(what="service", state=service["state"], code="service_ended")


def _eligible(conn: Connection, service: dict, role: str, target: dict | None, handle: str) -> dict:
    if target is None:
        raise InvalidInput(N_("No account has the handle {handle}."), code="unknown_account", handle=handle)
    if target["closed_at"] is not None or target["is_staff"]:
        raise InvalidInput(N_("The account {handle} cannot become a contact: it is closed or a staff account."),
                           code="account_not_eligible", handle=handle)
    if role in ("admin", "billing") and target["subsidiary"] != service["subsidiary"]:
        raise InvalidInput(N_("The admin and billing contacts must be customers of the service's storefront ({storefront})."),
                           code="subsidiary_mismatch", storefront=service["subsidiary"])
    return target


def _acting(actor: Actor, service: dict, change: dict, side: str | None = None) -> Actor:
    roles = set(actor.roles_on(service))
    if side is not None:
        roles.add(f"{'outgoing' if side == 'from' else 'incoming'}:{change['role']}")
    return actor.acting_as(roles)


# --- the steps ---------------------------------------------------------------------------------


def request_change(conn: Connection, rt: Runtime, actor: Actor, service_id: int, role: str, to_handle: str) -> dict:
    """The admin asks that ``to_handle`` become the service's ``role`` contact. Returns the change."""
    if role not in SERVICE_ROLES:
        raise InvalidInput(N_("The role must be admin, tech or billing."), code="invalid_role")
    service = get_service(conn, actor, service_id, action="service.contacts", for_update=True)
    _check_open(service)
    handle = (to_handle or "").strip()
    target = conn.execute(select(acct).where(acct.c.handle == handle)).mappings().one_or_none()
    target = _eligible(conn, service, role, dict(target) if target else None, handle)
    current = service[f"{role}_account_id"]
    if target["id"] == current:
        raise InvalidInput(N_("The account {handle} already holds this role on the service."), code="same_contact",
                           handle=handle)
    now = rt.clock.now()
    stale = list(conn.execute(select(cc.c.id).where(cc.c.service_id == service_id, cc.c.status == "pending",
                                                    cc.c.expires_at <= now)).scalars())
    if stale:  # lazily, before the sweep gets to them
        expire_changes(conn, rt, stale)
    if conn.execute(select(cc.c.id).where(cc.c.service_id == service_id, cc.c.role == role,
                                          cc.c.status == "pending")).first() is not None:
        raise Conflict(N_("A change of this contact is already pending: cancel it, or wait for its answers."),
                       code="change_pending")
    _check_paid(conn, service_id)
    outgoing = accounts_by_id(conn, [current])[current]
    tokens = {side: "cct_" + secrets.token_urlsafe(32) for side in SIDES}
    values = dict(service_id=service_id, role=role, from_account_id=current, to_account_id=target["id"],
                  requested_by=actor.account_id, status="pending", from_token_hash=hash_token(tokens["from"]),
                  to_token_hash=hash_token(tokens["to"]),
                  from_accepted_at=now if outgoing["closed_at"] is not None else None,  # a closed account cannot answer
                  to_accepted_at=None, expires_at=now + dt.timedelta(days=rt.settings.contact_change_ttl_days),
                  created_at=now)
    change_id = conn.execute(insert(cc).values(**values).returning(cc.c.id)).scalar_one()
    change = {**values, "id": change_id, "decided_at": None}
    audit.record(conn, now, actor.acting_as(actor.roles_on(service)), "service", service_id, "contact_change.requested",
                 {"role": role, "account": outgoing["handle"]},
                 {"change_id": change_id, "role": role, "account": target["handle"], "expires_at": values["expires_at"]})
    for side, account_id in (("from", current), ("to", target["id"])):
        if side == "from" and outgoing["closed_at"] is not None:
            continue
        _queue(conn, rt, TOKEN_KINDS[side], change, account_id, {"token": tokens[side]}, per_recipient=False)
    return change


def answer(conn: Connection, rt: Runtime, actor: Actor, change_id: int, token: str, accept: bool) -> dict:
    """One side accepts or refuses with its token. The second acceptance applies the change."""
    change, service = _visible_change(conn, actor, change_id, lock_service=True)
    digest = hash_token(token or "")
    side = next((s for s in SIDES if hmac.compare_digest(change[f"{s}_token_hash"], digest)), None)
    if side is None:
        raise InvalidInput(N_("This token is not valid for this contact change."), code="token_invalid")
    if change[f"{side}_account_id"] != actor.account_id:
        raise Forbidden(N_("This token was sent to another account: answer with the API key of the account that "
                           "received it."), code="token_wrong_account")
    now = rt.clock.now()
    if change["status"] == "expired" or (change["status"] == "pending" and change["expires_at"] <= now):
        raise InvalidState(N_("This contact change expired on {date}; ask for a new one."), code="token_expired",
                           date=change["expires_at"].date())
    if change["status"] != "pending":
        raise InvalidState(N_("This contact change is {state}; it can no longer be answered."),
                           code="change_not_pending", state=change["status"])
    if change[f"{side}_accepted_at"] is not None:
        raise Conflict(N_("This token was already used."), code="token_used")
    who = _acting(actor, service, change, side)
    if not accept:
        _close(conn, rt, change, "refused", who, {"side": side}, notify=_parties(change) - {actor.account_id},
               payload={"by": actor.account_id})
        return _change(conn, change_id)
    conn.execute(update(cc).where(cc.c.id == change_id).values(**{f"{side}_accepted_at": now}))
    audit.record(conn, now, who, "service", change["service_id"], "contact_change.accepted", None,
                 {"change_id": change_id, "role": change["role"], "side": side})
    other = "to" if side == "from" else "from"
    if change[f"{other}_accepted_at"] is not None:
        _apply(conn, rt, change, service, who)
    return _change(conn, change_id)


def _apply(conn: Connection, rt: Runtime, change: dict, service: dict, who: Actor) -> None:
    """Both sides agreed: the contact moves, in the transaction of the last acceptance."""
    role, column = change["role"], f"{change['role']}_account_id"
    _check_open(service)
    if service[column] != change["from_account_id"]:
        raise Conflict(N_("This contact changed since the request; ask for a new change."), code="contact_changed")
    accounts = accounts_by_id(conn, [change["to_account_id"], change["from_account_id"]])
    incoming = accounts[change["to_account_id"]]
    _eligible(conn, service, role, incoming, incoming["handle"])
    _check_paid(conn, service["id"])
    now = rt.clock.now()
    values = {column: change["to_account_id"], "updated_at": now}
    if role == "admin":
        values["account_id"] = change["to_account_id"]  # the holder is the admin contact
    conn.execute(update(svc).where(svc.c.id == service["id"]).values(**values))
    before = {"role": role, "account": accounts[change["from_account_id"]]["handle"]}
    after = {"role": role, "account": incoming["handle"], "change_id": change["id"]}
    _close(conn, rt, change, "done", who, None, notify=_parties(change), audit_values=(before, after))


def cancel_change(conn: Connection, rt: Runtime, actor: Actor, change_id: int) -> dict:
    """The service's admin (today's, whoever asked) withdraws a pending change."""
    change, service = _visible_change(conn, actor, change_id, lock_service=True)
    if not actor.roles_on(service):  # a side of the change without a role on the service: it may see, not cancel
        raise Forbidden(N_("Only the service's admin contact may cancel this change; you may refuse it."),
                        code="role_forbids")
    check(actor.roles_on(service), "service.contacts")
    if change["status"] != "pending":
        raise InvalidState(N_("This contact change is {state}; it can no longer be answered."),
                           code="change_not_pending", state=change["status"])
    _close(conn, rt, change, "cancelled", actor.acting_as(actor.roles_on(service)), None,
           notify={change["from_account_id"], change["to_account_id"], change["requested_by"]} - {actor.account_id},
           payload={"by": actor.account_id})
    return _change(conn, change_id)


def _close(conn: Connection, rt: Runtime, change: dict, status: str, who: Actor, extra: dict | None, *,
           notify: set[int], payload: dict | None = None, audit_values: tuple | None = None) -> None:
    """End a pending change: its status, its unsent token mails dropped, the audit event, the
    outcome mails."""
    now = rt.clock.now()
    conn.execute(update(cc).where(cc.c.id == change["id"]).values(status=status, decided_at=now))
    _drop_token_mails(conn, [change["id"]])
    before, after = audit_values or (None, {"change_id": change["id"], "role": change["role"], **(extra or {})})
    audit.record(conn, now, who, "service", change["service_id"],
                 "contact_change.applied" if status == "done" else f"contact_change.{status}", before, after)
    for account_id in sorted(notify):
        _queue(conn, rt, OUTCOME_KINDS[status], change, account_id, payload)


def expire_changes(conn: Connection, rt: Runtime, change_ids: list[int] | None = None) -> int:
    """Mark pending changes past ``expires_at`` as expired (all of them, or among ``change_ids``),
    set-based: one UPDATE per 500, their audit events and the requesters' mails. The daily job
    runs it; :func:`answer`'s callers run it first for the change at hand."""
    now = rt.clock.now()
    due = select(cc.c.id, cc.c.service_id, cc.c.role).where(cc.c.status == "pending", cc.c.expires_at <= now)
    if change_ids is not None:
        due = due.where(cc.c.id.in_(change_ids))
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    rows = conn.execute(due.order_by(cc.c.id)).all()
    for start in range(0, len(rows), 500):
        chunk = rows[start:start + 500]
        ids = [r.id for r in chunk]
        conn.execute(update(cc).where(cc.c.id.in_(ids)).values(status="expired", decided_at=now))
        _drop_token_mails(conn, ids)
        audit.record_many(conn, now, ACTOR, "service", "contact_change.expired",
                          [(r.service_id, None, {"change_id": r.id, "role": r.role}) for r in chunk])
        kind = OUTCOME_KINDS["expired"]
        open_requester = select(acct.c.id).where(acct.c.id == cc.c.requested_by, acct.c.closed_at.is_(None)).exists()
        notices.queue(conn, rt, kind, select(cast(cc.c.id, String), cc.c.requested_by, cc.c.service_id,
                                             literal(None, svc.c.id.type)).where(cc.c.id.in_(ids), open_requester))
    return len(rows)


# --- mails ---------------------------------------------------------------------------------------


def _queue(conn: Connection, rt: Runtime, kind: str, change: dict, account_id: int, payload: dict | None,
           *, per_recipient: bool = True) -> None:
    """Queue one mail about ``change`` to an account (not to a closed one: it has no address
    any more). The key names the change (``<kind>:<change id>[:<recipient>]``); ``payload`` is
    kept in ``body`` until the mail is sent."""
    closed = conn.execute(select(acct.c.closed_at).where(acct.c.id == account_id)).scalar_one()
    if closed is not None:
        return
    now = rt.clock.now()
    key = f"{kind}:{change['id']}" + (f":{account_id}" if per_recipient else "")
    conn.execute(insert_ignore(conn, note).values(
        kind=kind, key=key, account_id=account_id, service_id=change["service_id"], invoice_id=None, status="pending",
        attempts=0, next_attempt_at=now, created_at=now, body=json.dumps(payload) if payload else None))


def _drop_token_mails(conn: Connection, change_ids: list[int]) -> None:
    """Token mails of ended changes that were not sent (pending or parked) go, with their token."""
    keys = [f"{kind}:{i}" for i in change_ids for kind in TOKEN_KINDS.values()]
    conn.execute(update(note).where(note.c.key.in_(keys), note.c.status.in_(("pending", "parked")))
                 .values(status="dropped", body=None, locked_until=None))
