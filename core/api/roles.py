"""Routes of access and roles: API keys, staff accounts, the partner programme, the abuse desk,
technical actions and the audit log. Each names its key scope; the domain checks the roles."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, delete, get, post
from litestar.params import FromPath, JSONBody, QueryParameter
from sqlalchemy import and_, or_, select

from core.api import schemas as s
from core.api.common import After, OptionalId, PathId, caller, runtime, staff
from core.customers import accounts as customers
from core.customers import partners
from core.lifecycle import services as service_ops
from core.models import AuditEvent, Invoice, Order, Payment, Service
from core.support import abuse
from core.uow import unit_of_work

events = AuditEvent.__table__
svc = Service.__table__

# --- schemas -------------------------------------------------------------------------------------


class AbuseSuspension(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class ApiKeyCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(max_length=64)] = ""
    scopes: list[str] | None = None  # default: every scope
    expires_at: dt.datetime | None = None


class ApiKeyRead(msgspec.Struct):
    id: int
    prefix: str
    name: str
    scopes: list[str]
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None


class ApiKeyCreated(msgspec.Struct):
    key: ApiKeyRead
    secret: str  # shown this once


class StaffCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    email: Annotated[str, msgspec.Meta(max_length=254)]
    role: Literal["billing_operator", "support_agent", "abuse_desk", "administrator"]
    language: str = "en"


class StaffCreated(msgspec.Struct):
    id: int
    handle: str
    role: str
    api_key: str  # shown this once


class PartnerJoin(msgspec.Struct, forbid_unknown_fields=True):
    universe: str


class PartnerRead(msgspec.Struct):
    universe: str
    joined_at: dt.datetime


class TechnicalAction(msgspec.Struct, forbid_unknown_fields=True):
    params: dict[str, Any] = {}


class TechnicalActionRead(msgspec.Struct):
    service_id: int
    action: str
    status: str  # queued: the plugin runs it through the provisioning outbox


def api_key_read(row: dict) -> ApiKeyRead:
    return ApiKeyRead(row["id"], row["prefix"], row["name"], row["scopes"].split(), row["created_at"], row["expires_at"],
                      row["revoked_at"])


# --- handlers ------------------------------------------------------------------------------------


@get("/v1/me/api-keys", sync_to_thread=True, tags=["keys"], opt={"scope": "account:read"})
def list_api_keys(request: Request) -> list[ApiKeyRead]:
    """The caller's API keys (never their secrets, which are kept hashed)."""
    with unit_of_work(runtime(request)) as conn:
        account, _, _ = caller(conn, request)
        return [api_key_read(r) for r in customers.list_keys(conn, account.id)]


@post("/v1/me/api-keys", sync_to_thread=True, tags=["keys"], opt={"scope": "account:write"}, status_code=201)
def create_api_key(request: Request, data: JSONBody[ApiKeyCreate]) -> ApiKeyCreated:
    """A further key, narrowed to some scopes and with an expiry if you like. Its secret is
    shown in this answer only."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, actor, _ = caller(conn, request)
        row, secret = customers.create_key(conn, rt, account.id, data.name, data.scopes, data.expires_at, actor)
    return ApiKeyCreated(api_key_read(row), secret)


@delete("/v1/me/api-keys/{key_id:int}", sync_to_thread=True, tags=["keys"], opt={"scope": "account:write"}, status_code=200)
def revoke_api_key(request: Request, key_id: PathId) -> ApiKeyRead:
    """Revoke a key at once; requests made with it answer 401 from now on."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, actor, _ = caller(conn, request)
        return api_key_read(customers.revoke_key(conn, rt, account.id, key_id, actor))


@post("/v1/staff/accounts", sync_to_thread=True, tags=["staff"], opt={"scope": "account:write"}, status_code=201)
def create_staff_account(request: Request, data: JSONBody[StaffCreate]) -> StaffCreated:
    """Administrators: a back-office account with its role and its own key (shown once)."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, _ = staff(conn, request, "staff.accounts")
        home = next(iter(rt.storefronts))
        row, key = customers.create_customer(conn, rt, {"subsidiary": home, "name": data.name, "email": data.email,
                                                        "language": data.language}, actor, is_staff=True, staff_role=data.role)
    return StaffCreated(row["id"], row["handle"], data.role, key)


@get("/v1/me/partner-programmes", sync_to_thread=True, tags=["partners"], opt={"scope": "account:read"})
def list_partner_programmes(request: Request) -> list[PartnerRead]:
    with unit_of_work(runtime(request)) as conn:
        account, _, _ = caller(conn, request)
        return [PartnerRead(m["universe"], m["joined_at"]) for m in partners.memberships(conn, account.id)]


@post("/v1/me/partner-programmes", sync_to_thread=True, tags=["partners"], opt={"scope": "account:write"}, status_code=201)
def join_partner_programme(request: Request, data: JSONBody[PartnerJoin]) -> list[PartnerRead]:
    """Join the partner programme of a universe."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, _ = caller(conn, request)
        return [PartnerRead(m["universe"], m["joined_at"]) for m in partners.join(conn, rt, actor, data.universe)]


@get("/v1/partner/services", sync_to_thread=True, tags=["partners"], opt={"scope": "services:read"})
def partner_services(request: Request, universe: Annotated[str | None, QueryParameter()] = None,
                     client: Annotated[str | None, QueryParameter(description="A client's id or handle")] = None,
                     after: After = 0,
                     limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50) -> s.Page:
    """Partners: the services you run for your clients as their admin or tech contact, in the
    universes whose programme you joined, optionally of one client."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        rows = partners.services(conn, actor, universe=universe, client=client, after=after, limit=limit)
    return s.Page([s.service_read(rt.catalog, r, locale) for r in rows], rows[-1]["id"] if len(rows) == limit else None)


@post("/v1/services/{service_id:int}/abuse-suspension", sync_to_thread=True, tags=["staff"],
      opt={"scope": "services:write"}, status_code=200)
def suspend_for_abuse(request: Request, service_id: PathId, data: JSONBody[AbuseSuspension]) -> s.ServiceRead:
    """Abuse desk: suspend a service for abuse, with the reason its contacts will see, and open its
    abuse case, where they answer. Separate from suspension for non-payment, and never a step
    towards deleting data."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        return s.service_read(rt.catalog, abuse.suspend(conn, rt, actor, service_id, data.reason)[0], locale)


@delete("/v1/services/{service_id:int}/abuse-suspension", sync_to_thread=True, tags=["staff"],
        opt={"scope": "services:write"}, status_code=200)
def lift_abuse(request: Request, service_id: PathId) -> s.ServiceRead:
    """Abuse desk: lift an abuse suspension (a suspension for non-payment stays); its case closes as lifted."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        return s.service_read(rt.catalog, abuse.lift(conn, rt, actor, service_id), locale)


@get("/v1/services/{service_id:int}/actions", sync_to_thread=True, tags=["services"], opt={"scope": "services:read"})
def list_technical_actions(request: Request, service_id: PathId) -> list[str]:
    """The technical actions the service's plugin offers (for its admin and tech contacts)."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, _ = caller(conn, request)
        return service_ops.technical_actions(rt, service_ops.get_service(conn, actor, service_id, action="service.technical"))


@post("/v1/services/{service_id:int}/actions/{action:str}", sync_to_thread=True, tags=["services"],
      opt={"scope": "services:write"}, status_code=202)
def run_technical_action(request: Request, service_id: PathId, action: FromPath[str]) -> TechnicalActionRead:
    """Run a technical action (reboot, reinstall...): queued for the plugin, which runs it once."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, _ = caller(conn, request)
        done = service_ops.run_technical_action(conn, rt, actor, service_id, action)
    return TechnicalActionRead(**done)


@get("/v1/me/events", sync_to_thread=True, tags=["customers"], opt={"scope": "account:read"})
def my_events(request: Request, after: After = 0,
              limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100) -> list[s.AuditEventRead]:
    """Your audit log: your account, the services you are a contact of, your orders, invoices
    and payments — who did what, when, in which role, before and after."""
    with unit_of_work(runtime(request)) as conn:
        account, actor, _ = caller(conn, request)
        me = account.id
        inv, orders, pay = Invoice.__table__, Order.__table__, Payment.__table__
        mine = or_(
            and_(events.c.entity == "account", events.c.entity_id == me),
            and_(events.c.entity == "service", events.c.entity_id.in_(select(svc.c.id).where(service_ops.visible(actor)))),
            and_(events.c.entity == "order", events.c.entity_id.in_(select(orders.c.id).where(orders.c.account_id == me))),
            and_(events.c.entity == "invoice", events.c.entity_id.in_(select(inv.c.id).where(inv.c.account_id == me))),
            and_(events.c.entity == "payment", events.c.entity_id.in_(select(pay.c.id).where(pay.c.account_id == me))),
        )
        rows = conn.execute(select(events).where(events.c.id > after, mine).order_by(events.c.id).limit(limit)).mappings()
        return [s.audit_event_read(r) for r in rows]


@get("/v1/staff/events", sync_to_thread=True, tags=["staff"], opt={"scope": "account:read"})
def staff_events(request: Request, entity: Annotated[str | None, QueryParameter()] = None,
                 entity_id: OptionalId = None,
                 actor: Annotated[str | None, QueryParameter(description="account:<handle>, staff:<handle> or system:<job>")] = None,
                 request_id: Annotated[str | None, QueryParameter(max_length=64, description="what one API request wrote (its X-Request-Id)")] = None,
                 after: After = 0,
                 limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100) -> list[s.AuditEventRead]:
    """Staff: the whole audit log, filtered."""
    with unit_of_work(runtime(request)) as conn:
        staff(conn, request, "staff.customers")
        q = select(events).where(events.c.id > after)
        if entity:
            q = q.where(events.c.entity == entity)
        if entity_id is not None:
            q = q.where(events.c.entity_id == entity_id)
        if actor:
            q = q.where(events.c.actor == actor)
        if request_id:
            q = q.where(events.c.request_id == request_id)
        return [s.audit_event_read(r) for r in conn.execute(q.order_by(events.c.id).limit(limit)).mappings()]


ROUTES = [list_api_keys, create_api_key, revoke_api_key, create_staff_account, list_partner_programmes, join_partner_programme,
          partner_services, suspend_for_abuse, lift_abuse, list_technical_actions, run_technical_action, my_events, staff_events]
