"""Leaving with one's data: the export of an account (``univers-export``, see :mod:`core.portability.export`)
and its closure, for the customer itself and for staff."""

from __future__ import annotations

import msgspec
from litestar import Request, Response, delete, get, post

from core.api import schemas as s
from core.api.common import PathId, caller, runtime, staff
from core.portability import closure, export
from core.portability import format as export_format
from core.runtime import Runtime
from core.uow import unit_of_work


def _document(rt: Runtime, account_id: int) -> Response[export_format.AccountExport]:
    """The export, typed: the OpenAPI schema publishes its format."""
    with unit_of_work(rt) as conn:
        document = export.export_account(conn, rt, account_id)
    name = f"univers-export-{document['account']['handle']}-{rt.clock.today().isoformat()}.json"
    return Response(msgspec.convert(document, export_format.AccountExport), media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _closed(rt: Runtime, row: dict, locale: str) -> s.CustomerRead:
    return s.customer_read(rt, row, locale)


@get("/v1/me/export", sync_to_thread=True, opt={"scope": "account:read"}, tags=["account"], media_type="application/json")
def export_me(request: Request) -> Response[export_format.AccountExport]:
    """Everything about your account as one JSON file (format `univers-export`, version 1):
    the account, API key metadata, the services you are a contact of, orders, invoices and
    credit notes with their PDF, payments, the prepaid balance and the audit log. Another
    Univers system imports it as it is (`univers import`)."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, _, _ = caller(conn, request)
    return _document(rt, account.id)


@delete("/v1/me", sync_to_thread=True, opt={"scope": "account:write"}, tags=["account"], status_code=200)
def close_me(request: Request) -> s.CustomerRead:
    """Close your account. Refused while a service you are a contact of has not ended
    (`account_has_services`), an invoice is unpaid (`account_has_unpaid`) or a payment is in
    progress (`account_has_pending_payments`). Your personal data is then erased and your API
    keys stop working; invoices are kept, as the law requires. Export your data first."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, actor, locale = caller(conn, request)
        row = closure.close_account(conn, rt, account.id, actor)
    return _closed(rt, row, locale)


@get("/v1/staff/customers/{customer_id:int}/export", sync_to_thread=True, opt={"scope": "account:read"}, tags=["account", "staff"],
     media_type="application/json")
def export_customer(request: Request, customer_id: PathId) -> Response[export_format.AccountExport]:
    """Staff: a customer's export, the same file as `GET /v1/me/export`."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        staff(conn, request, "staff.customers")
    return _document(rt, customer_id)


@post("/v1/staff/customers/{customer_id:int}/close", sync_to_thread=True, opt={"scope": "account:write"}, tags=["account", "staff"],
      status_code=200)
def close_customer(request: Request, customer_id: PathId) -> s.CustomerRead:
    """Staff: close a customer's account, under the same conditions as `DELETE /v1/me`."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = staff(conn, request, "staff.accounts")
        row = closure.close_account(conn, rt, customer_id, actor)
    return _closed(rt, row, locale)


ROUTES = [export_me, close_me, export_customer, close_customer]
