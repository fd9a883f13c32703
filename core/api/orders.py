"""HTTP handlers for orders (domain: :mod:`core.ordering.orders`)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from litestar import Request, Response, get, post
from litestar.params import HeaderParameter, JSONBody
from sqlalchemy import select

from core.api import schemas as s
from core.api.common import (
    PathId,
    caller,
    runtime,
)
from core.billing import invoicing, views
from core.billing.views import InvoiceRead, Money
from core.models import Account, Service
from core.ordering import orders as order_ops
from core.runtime import Runtime
from core.uow import once_more_on_conflict, unit_of_work

# --- schemas -------------------------------------------------------------------------------------


class OrderRead(msgspec.Struct):
    id: int
    status: str
    subsidiary: str
    total: Money
    created_at: dt.datetime
    invoice: InvoiceRead | None
    services: list[s.ServiceRead]
    withdrawal_until: dt.date | None = None  # a consumer may withdraw until this day (included), unless it waived it
    withdrawal_waived: bool = False
    withdrawn_at: dt.datetime | None = None


def order_read(rt: Runtime, conn, account_id: int | None, order_id: PathId, locale: str) -> OrderRead:
    row = order_ops.get_order(conn, account_id, order_id)
    invoice = None
    if row["invoice_id"]:
        invoice = views.invoice_read(rt, *invoicing.load_invoice(conn, None, row["invoice_id"]), locale)
    svc = Service.__table__
    services = [s.service_read(rt.catalog, dict(r), locale) for r in conn.execute(select(svc).where(svc.c.order_id == order_id).order_by(svc.c.id)).mappings()]
    cur = row["currency"]
    from core.ordering.withdrawal import deadline

    buyer = conn.execute(select(Account.__table__.c.kind).where(Account.__table__.c.id == row["account_id"])).scalar()
    days = rt.storefronts[row["subsidiary"]].withdrawal_days if buyer == "person" else 0
    return OrderRead(row["id"], row["status"], row["subsidiary"], s.money(row["total_minor"], cur, locale), row["created_at"],
                       invoice, services, deadline(row, days) if days else None, row["withdrawal_waived_at"] is not None,
                       row["withdrawn_at"])


# --- handlers ------------------------------------------------------------------------------------


@post("/v1/orders", sync_to_thread=True, opt={"scope": "services:write"}, tags=["orders"], status_code=201)
def create_order(request: Request, data: JSONBody[s.OrderCreate],
                 idempotency_key: Annotated[str, HeaderParameter(name="Idempotency-Key", description="Required: one key per order")] = "") -> Response[OrderRead]:
    """One-click order: the cart is validated, invoiced and charged in one call. The same
    Idempotency-Key with the same body returns the same order (200) and charges nothing more."""
    rt = runtime(request)
    body = msgspec.to_builtins(data)

    def place(conn):
        account, actor, locale = caller(conn, request)
        return (account, locale, *order_ops.checkout(conn, rt, account, body, idempotency_key, actor, locale))

    account, locale, order_id, created = once_more_on_conflict(rt, place)
    with unit_of_work(rt) as conn:
        result = order_read(rt, conn, account.id, order_id, locale)
    return Response(result, status_code=201 if created else 200)


@get("/v1/orders/{order_id:int}", sync_to_thread=True, opt={"scope": "services:read"}, tags=["orders"])
def get_order(request: Request, order_id: PathId) -> OrderRead:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, actor, locale = caller(conn, request)
        return order_read(rt, conn, None if actor.is_staff else account.id, order_id, locale)
