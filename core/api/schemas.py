"""API schemas (msgspec). Separate from the tables: table rows never leak into responses."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec

from core.billing.views import Money, money, plan_name
from core.clock import add_months

# --- requests --------------------------------------------------------------------------------


class PaymentChoice(msgspec.Struct, forbid_unknown_fields=True):
    method: Literal["balance", "test"] = "balance"
    outcome: Literal["success", "decline", "pending"] | None = None


class OrderItem(msgspec.Struct, forbid_unknown_fields=True):
    plan: str
    quantity: int = 1
    options: dict[str, str] = {}
    renewal_mode: Literal["automatic", "manual", "terminate"] = "automatic"


class OrderCreate(msgspec.Struct, forbid_unknown_fields=True):
    items: list[OrderItem]
    payment: PaymentChoice = msgspec.field(default_factory=PaymentChoice)
    currency: str | None = None  # the currency the customer saw; refused if not the storefront's
    price_date: dt.date | None = None  # the date of the prices the customer saw; refused unless today
    accept: list[str] = []  # the content hashes of the contract versions accepted (see POST /v1/orders/dry-run)
    waive_withdrawal: bool = False  # a consumer asks for delivery at once and waives the right of withdrawal


# --- responses -------------------------------------------------------------------------------


class CustomerRead(msgspec.Struct):
    id: int
    handle: str
    subsidiary: str
    kind: str
    name: str
    email: str
    language: str
    country: str
    region: str | None
    vat_number: str | None
    vat_verified: bool
    vat_confirmed_on: dt.date | None
    tax_zone: str
    currency: str
    balance: Money
    payment_method: str
    einvoice: dict[str, str] | None = None  # the buyer's national e-invoice data (Italy, Poland), as the storefront asks it


class ServiceRead(msgspec.Struct):
    id: int
    universe: str
    product: str
    plan: str
    name: str
    kind: str
    state: str
    renewal_mode: str
    subsidiary: str
    price: Money
    period_months: int
    quantity: int
    start_on: dt.date
    expires_on: dt.date
    billed_until: dt.date
    engagement_end: dt.date | None
    ends_on: dt.date | None
    options: dict[str, Any]
    resource: str | None
    contacts: dict[str, int]
    order_id: int | None
    abuse: AbuseRead | None = None  # suspended for abuse: the reason, shown to the customer
    incidents: list[IncidentLink] = []  # the open incidents of the work board touching it (core/api/status.py)


class IncidentLink(msgspec.Struct):
    """An open incident of the work board, on the page of a service it touches."""

    id: int
    kind: str  # incident | known_bug
    status: str  # investigating | identified | fixing
    title: str  # in the reader's language, else English
    url: str  # its page, readable without a key


class AbuseRead(msgspec.Struct):
    reason: str
    since: dt.datetime


class Page(msgspec.Struct):
    items: list[Any]
    next_after: int | None


class AuditEventRead(msgspec.Struct):
    id: int
    at: dt.datetime
    actor: str
    action: str
    before: Any
    after: Any
    role: str | None = None  # the actor's role on the object: admin+billing, abuse_desk, system...
    entity: str = "service"
    entity_id: int | None = None
    request_id: str | None = None  # the API request that wrote it (its X-Request-Id); none for a job's


def audit_event_read(row) -> AuditEventRead:
    import json

    return AuditEventRead(row["id"], row["at"], row["actor"], row["action"], json.loads(row["before"]) if row["before"] else None,
                          json.loads(row["after"]) if row["after"] else None, row["role"], row["entity"], row["entity_id"],
                          row.get("request_id"))


# --- builders --------------------------------------------------------------------------------


def ends_on(row: dict) -> dt.date | None:
    """When a service ends: the day it was terminated; for one set to stop, its expiry, or while
    an engagement runs the first renewal date from its end (it renews until then)."""
    if not (row["renewal_mode"] == "terminate" and row["state"] in ("active", "suspended", "pending")):
        return row.get("terminated_on")
    end, engaged = row["expires_on"], row["engagement_end"]
    while end is not None and engaged is not None and end < engaged and row["period_months"]:
        end = add_months(end, row["period_months"])  # one period at a time, as the renewal run moves it
    return end


def customer_read(rt, a: dict, locale: str) -> CustomerRead:
    a = a if isinstance(a, dict) else a.model_dump()  # a row, or an Account
    cur = rt.storefronts[a["subsidiary"]].currency
    return CustomerRead(a["id"], a["handle"], a["subsidiary"], a["kind"], a["name"], a["email"], a["language"], a["country"],
                          a["region"], a["vat_number"], a["vat_verified"], a["vat_confirmed_on"], a["tax_zone"], cur,
                          money(a["balance_minor"], cur, locale), a["payment_method"], a.get("einvoice"))


def service_read(catalog, row: dict, locale: str, incidents: list[IncidentLink] | None = None) -> ServiceRead:
    ends = ends_on(row)
    return ServiceRead(
        id=row["id"], universe=row["universe"], product=row["product_code"], plan=row["plan_code"],
        name=plan_name(catalog, row["plan_code"], locale), kind=row["kind"],
        state=row["state"], renewal_mode=row["renewal_mode"], subsidiary=row["subsidiary"],
        price=money(row["price_minor"], row["currency"], locale), period_months=row["period_months"],
        quantity=row["quantity"], start_on=row["start_on"], expires_on=row["expires_on"], billed_until=row["billed_until"],
        engagement_end=row["engagement_end"], ends_on=ends, options=row["options"] or {}, resource=row["resource"],
        contacts={"admin": row["admin_account_id"], "tech": row["tech_account_id"], "billing": row["billing_account_id"]},
        order_id=row["order_id"],
        abuse=AbuseRead(row["abuse_reason"], row["abuse_since"]) if row.get("abuse_since") else None,
        incidents=incidents or [],
    )


