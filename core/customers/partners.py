"""The partner programme: an account joins it per universe, then lists in one place the services
it runs for its clients as their admin or tech contact, filtered by client. Invoices still go to
each service's billing contact; a partner sees them only where it is that contact."""

from __future__ import annotations

from sqlalchemy import or_, select, union
from sqlalchemy.engine import Connection

from core import audit
from core.audit import Actor
from core.db import insert_ignore
from core.errors import Forbidden, InvalidInput, NotFound
from core.i18n import N_
from core.models import Account, Partner, Service
from core.runtime import Runtime

partner = Partner.__table__
svc = Service.__table__
acct = Account.__table__
MAX_PAGE = 200


def universes(rt: Runtime) -> list[str]:
    return sorted({p.universe for p in rt.catalog.products.values()})


def memberships(conn: Connection, account_id: int) -> list[dict]:
    q = select(partner.c.universe, partner.c.joined_at).where(partner.c.account_id == account_id).order_by(partner.c.universe)
    return [dict(r) for r in conn.execute(q).mappings()]


def partner_universes(conn: Connection, account_id: int) -> frozenset[str]:
    """The universes whose partner programme the account is a member of."""
    return frozenset(conn.execute(select(partner.c.universe).where(partner.c.account_id == account_id)).scalars())


def join(conn: Connection, rt: Runtime, actor: Actor, universe: str) -> list[dict]:
    """Join a universe's partner programme (joining twice changes nothing)."""
    if actor.is_staff or actor.account_id is None:
        raise Forbidden(N_("Only customer accounts join the partner programme."), code="not_a_customer")
    known = universes(rt)
    if universe not in known:
        raise InvalidInput(N_("Unknown universe {universe}; expected one of: {universes}."), code="unknown_universe",
                           universe=universe, universes=", ".join(known))
    now = rt.clock.now()
    added = conn.execute(insert_ignore(conn, partner).values(
        account_id=actor.account_id, universe=universe, joined_at=now)).rowcount
    if added:
        audit.record(conn, now, actor, "account", actor.account_id, "partner.joined", None, {"universe": universe})
    return memberships(conn, actor.account_id)


def client_id(conn: Connection, client: str | int | None) -> int | None:
    """A client named by id or handle (unknown: not found)."""
    if client in (None, ""):
        return None
    column = acct.c.id if str(client).isdigit() else acct.c.handle
    found = conn.execute(select(acct.c.id).where(column == (int(client) if str(client).isdigit() else client),
                                                 acct.c.is_staff.is_(False))).scalar()
    if found is None:
        raise NotFound(what="client")
    return found


def services(conn: Connection, actor: Actor, *, universe: str | None = None, client: str | int | None = None,
             after: int = 0, limit: int = 50) -> list[dict]:
    """The services of the partner's universes that it runs as admin or tech contact for others,
    by id (keyset pages over the admin and tech indexes), optionally of one client: an account
    that is another contact of the service."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(N_("The page size must be from 1 to {max}."), code="invalid_limit", max=MAX_PAGE)
    mine = [m["universe"] for m in memberships(conn, actor.account_id)] if actor.account_id else []
    if not mine:
        raise Forbidden(N_("Join the partner programme of a universe first."), code="not_a_partner")
    if universe is not None:
        if universe not in mine:
            raise Forbidden(N_("You are not a partner in the {universe} universe."), code="not_a_partner", universe=universe)
        mine = [universe]
    me = actor.account_id
    who = client_id(conn, client)
    others = or_(svc.c.admin_account_id != me, svc.c.tech_account_id != me, svc.c.billing_account_id != me)
    of_client = or_(svc.c.admin_account_id == who, svc.c.tech_account_id == who, svc.c.billing_account_id == who) if who else None
    firsts = []
    for column in (svc.c.admin_account_id, svc.c.tech_account_id):
        first = select(svc.c.id).where(column == me, svc.c.id > after, svc.c.universe.in_(mine), others)
        if of_client is not None:
            first = first.where(of_client)
        firsts.append(select(first.order_by(svc.c.id).limit(limit).subquery().c.id))
    picked = union(*firsts).subquery("picked")
    client = acct.alias("client")
    q = (select(svc, client.c.handle.label("client_handle"), client.c.name.label("client_name"))
         .join(picked, picked.c.id == svc.c.id)
         .join(client, client.c.id == svc.c.billing_account_id)
         .order_by(svc.c.id).limit(limit))
    return [dict(r) for r in conn.execute(q).mappings()]

