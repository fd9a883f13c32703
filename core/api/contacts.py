"""HTTP handlers for a service's contacts and their changes (domain: :mod:`core.customers.contacts`).

``GET /v1/services/{id}/contacts`` shows the three contacts and the pending changes to any
role on the service. The admin asks for a change (``POST /v1/services/{id}/contact-changes``)
and may cancel it (``DELETE /v1/contact-changes/{id}``); each side answers with the token it
was mailed, authenticated as itself (``POST /v1/contact-changes/{id}/accept`` or ``/refuse``).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import msgspec
from litestar import Request, delete, get, post
from litestar.params import JSONBody

from core.api.common import PathId, caller, runtime
from core.customers import contacts
from core.uow import unit_of_work

# --- schemas -------------------------------------------------------------------------------------


class ContactChangeCreate(msgspec.Struct, forbid_unknown_fields=True):
    role: Literal["admin", "tech", "billing"]
    to: str  # the incoming account's handle


class ContactChangeAnswer(msgspec.Struct, forbid_unknown_fields=True):
    token: str


class ContactRead(msgspec.Struct):
    handle: str
    name: str


class ContactChangeRead(msgspec.Struct):
    id: int
    service_id: int
    role: str
    status: Literal["pending", "done", "refused", "expired", "cancelled"]
    from_account: str  # handles
    to_account: str
    requested_by: str
    from_accepted: bool
    to_accepted: bool
    expires_at: dt.datetime
    created_at: dt.datetime
    decided_at: dt.datetime | None
    accept_path: str
    refuse_path: str


class ServiceContactsRead(msgspec.Struct):
    service_id: int
    admin: ContactRead
    tech: ContactRead
    billing: ContactRead
    pending: list[ContactChangeRead]


def change_read(conn, change: dict) -> ContactChangeRead:
    names = contacts.handles(conn, change)
    paths = contacts.paths(change["id"])
    return ContactChangeRead(
        change["id"], change["service_id"], change["role"], change["status"], names["from"], names["to"],
        names["requester"], change["from_accepted_at"] is not None, change["to_accepted_at"] is not None,
        change["expires_at"], change["created_at"], change["decided_at"], paths["accept"], paths["refuse"])


# --- handlers ------------------------------------------------------------------------------------


@get("/v1/services/{service_id:int}/contacts", sync_to_thread=True, opt={"scope": "services:read"}, tags=["contacts"])
def service_contacts(request: Request, service_id: PathId) -> ServiceContactsRead:
    """The service's admin, tech and billing contacts, and the changes pending."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, _ = caller(conn, request)
        _, people, pending = contacts.service_contacts(conn, rt, actor, service_id)
        return ServiceContactsRead(service_id, *(ContactRead(people[r]["handle"], people[r]["name"])
                                                 for r in ("admin", "tech", "billing")),
                                   [change_read(conn, c) for c in pending])


@post("/v1/services/{service_id:int}/contact-changes", sync_to_thread=True, opt={"scope": "services:write"},
      tags=["contacts"], status_code=201)
def request_change(request: Request, service_id: PathId, data: JSONBody[ContactChangeCreate]) -> ContactChangeRead:
    """The admin contact asks that another account (by handle) take one of the three roles. Both
    the outgoing and the incoming account are mailed a one-time token, valid 7 days by default."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, _ = caller(conn, request)
        change = contacts.request_change(conn, rt, actor, service_id, data.role, data.to)
        return change_read(conn, change)


@get("/v1/contact-changes/{change_id:int}", sync_to_thread=True, opt={"scope": "services:read"}, tags=["contacts"])
def get_change(request: Request, change_id: PathId) -> ContactChangeRead:
    """A change, for whoever asked for it, its two sides, and the service's contacts."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, _ = caller(conn, request)
        return change_read(conn, contacts.get_change(conn, actor, change_id))


def _answer(request: Request, change_id: int, token: str, accept: bool) -> ContactChangeRead:
    rt = runtime(request)
    with unit_of_work(rt) as conn:  # a change past its date expires now, whatever the answer below
        caller(conn, request)
        contacts.expire_changes(conn, rt, [change_id])
    with unit_of_work(rt) as conn:
        _, actor, _ = caller(conn, request)
        return change_read(conn, contacts.answer(conn, rt, actor, change_id, token, accept))


@post("/v1/contact-changes/{change_id:int}/accept", sync_to_thread=True, opt={"scope": "services:write"},
      tags=["contacts"], status_code=200)
def accept_change(request: Request, change_id: PathId, data: JSONBody[ContactChangeAnswer]) -> ContactChangeRead:
    """Accept with the token mailed to the caller's own account; the second acceptance applies it."""
    return _answer(request, change_id, data.token, True)


@post("/v1/contact-changes/{change_id:int}/refuse", sync_to_thread=True, opt={"scope": "services:write"},
      tags=["contacts"], status_code=200)
def refuse_change(request: Request, change_id: PathId, data: JSONBody[ContactChangeAnswer]) -> ContactChangeRead:
    """Refuse with the token mailed to the caller's own account: the change ends, nothing moves."""
    return _answer(request, change_id, data.token, False)


@delete("/v1/contact-changes/{change_id:int}", sync_to_thread=True, opt={"scope": "services:write"},
        tags=["contacts"], status_code=200)
def cancel_change(request: Request, change_id: PathId) -> ContactChangeRead:
    """The service's admin contact withdraws a pending change."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, _ = caller(conn, request)
        return change_read(conn, contacts.cancel_change(conn, rt, actor, change_id))


ROUTES = [service_contacts, request_change, get_change, accept_change, refuse_change, cancel_change]
