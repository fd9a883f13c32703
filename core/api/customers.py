"""HTTP handlers for customer accounts: sign-up, the account itself, its payment method, and staff's VAT confirmation."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import msgspec
from litestar import Request, get, post, put
from litestar.params import JSONBody
from sqlalchemy import select

from core.api import schemas as s
from core.api.common import (
    PathId,
    caller,
    locale_of,
    runtime,
    staff,
)
from core.customers import accounts as customers
from core.models import Account
from core.uow import unit_of_work

# --- schemas -------------------------------------------------------------------------------------


class CustomerCreate(msgspec.Struct, forbid_unknown_fields=True):
    subsidiary: str
    name: str
    email: str
    kind: Literal["person", "company"] = "person"
    language: str | None = None
    vat_number: str | None = None
    country: str | None = None  # ISO 3166 code; default the storefront's country
    region: str | None = None  # province or state (CA, US), where the tax depends on it
    # what the storefront's national e-invoice needs of the buyer (Italy: codice_destinatario, pec,
    # codice_fiscale, address, postcode, city, province; Poland: address, postcode, city)
    einvoice: dict[str, str] | None = None


class VatConfirmation(msgspec.Struct, forbid_unknown_fields=True):
    method: str  # how it was confirmed, e.g. "VIES consultation WAPIAAAAW1234567"
    confirmed_on: dt.date


class CustomerCreated(msgspec.Struct):
    customer: s.CustomerRead
    api_key: str


# --- handlers ------------------------------------------------------------------------------------


@post("/v1/customers", sync_to_thread=True, tags=["customers"], status_code=201)
def create_customer(request: Request, data: JSONBody[CustomerCreate]) -> CustomerCreated:
    """Sign up: creates the account and returns its API key, shown only this once."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, key = customers.create_customer(conn, rt, {f: getattr(data, f) for f in data.__struct_fields__})
    return CustomerCreated(s.customer_read(rt, account, locale_of(request)), key)


@get("/v1/me", sync_to_thread=True, opt={"scope": "account:read"}, tags=["customers"])
def me(request: Request) -> s.CustomerRead:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, _, locale = caller(conn, request)
    return s.customer_read(rt, account, locale)


@put("/v1/me/payment-method", sync_to_thread=True, opt={"scope": "billing:write"}, tags=["customers"])
def set_payment_method(request: Request, data: JSONBody[s.PaymentChoice]) -> s.CustomerRead:
    """The method renewals are charged to: the prepaid balance or the (scriptable) test gateway."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, actor, locale = caller(conn, request)
        customers.set_payment_method(conn, rt, account, data.method, data.outcome, actor)
        row = conn.execute(select(Account.__table__).where(Account.__table__.c.id == account.id)).mappings().one()
    return s.customer_read(rt, dict(row), locale)


@put("/v1/me/einvoice", sync_to_thread=True, opt={"scope": "billing:write"}, tags=["customers"])
def set_einvoice(request: Request, data: JSONBody[dict[str, str]]) -> s.CustomerRead:
    """Correct the account's national e-invoice data, all of it at once, as the storefront's
    ``einvoice_fields`` name them (Italy: codice_destinatario, pec, codice_fiscale, address...;
    Poland: address, postcode, city); ``{}`` removes it. Issued invoices keep what they were
    issued with; the next ones carry the new data."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, actor, locale = caller(conn, request)
        customers.set_einvoice(conn, rt, account, data, actor)
        row = conn.execute(select(Account.__table__).where(Account.__table__.c.id == account.id)).mappings().one()
    return s.customer_read(rt, dict(row), locale)


@post("/v1/staff/customers/{customer_id:int}/vat-confirmation", sync_to_thread=True, opt={"scope": "billing:write"}, tags=["staff"], status_code=200)
def confirm_vat_number(request: Request, customer_id: PathId, data: JSONBody[VatConfirmation]) -> s.CustomerRead:
    """Staff: record that a customer's VAT number was confirmed valid, when and how. An EU
    business in another member state is then invoiced under reverse charge."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = staff(conn, request, "staff.billing")
        row = customers.confirm_vat_number(conn, rt, customer_id, data.confirmed_on, data.method, actor)
    return s.customer_read(rt, row, locale)
