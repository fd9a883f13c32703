"""API schemas (msgspec). Separate from the tables: table rows never leak into responses."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from babel.numbers import format_currency, format_decimal

from core import labels
from core.clock import add_months
from core.i18n import DEFAULT_LOCALE, format_day, format_months, normalise, translate
from core.invoicing import number
from core.money import (
    UNIT_SCALE,
    cash_increment,
    cash_minor,
    format_minor,
    from_minor,
    ppm_to_percent,
)
from core.tax import MENTIONS


class Money(msgspec.Struct):
    amount_minor: int
    amount: str
    currency: str
    formatted: str


def money(minor: int, currency: str, locale: str) -> Money:
    return Money(minor, str(from_minor(minor, currency)), currency, format_minor(minor, currency, locale))


# --- requests --------------------------------------------------------------------------------


class CustomerCreate(msgspec.Struct, forbid_unknown_fields=True):
    subsidiary: str
    name: str
    email: str
    kind: Literal["person", "company"] = "person"
    language: str | None = None
    vat_number: str | None = None
    country: str | None = None  # ISO 3166 code; default the storefront's country
    region: str | None = None  # province or state (CA, US), where the tax depends on it


class VatConfirmation(msgspec.Struct, forbid_unknown_fields=True):
    method: str  # how it was confirmed, e.g. "VIES consultation WAPIAAAAW1234567"
    confirmed_on: dt.date


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


class RenewalModeUpdate(msgspec.Struct, forbid_unknown_fields=True):
    mode: Literal["automatic", "manual", "terminate"]


class TopUp(msgspec.Struct, forbid_unknown_fields=True):
    amount: str
    method: Literal["test"] = "test"
    outcome: Literal["success", "decline", "pending"] | None = None


class GatewayResolution(msgspec.Struct, forbid_unknown_fields=True):
    outcome: Literal["succeeded", "failed"]


class CreditLine(msgspec.Struct, forbid_unknown_fields=True):
    line_id: int
    amount: str | None = None  # in the invoice's currency; default: all that is left of the line


class CreditNoteCreate(msgspec.Struct, forbid_unknown_fields=True):
    reason: str
    lines: list[CreditLine] | None = None  # none: credit the whole invoice


class RenewalRunRequest(msgspec.Struct, forbid_unknown_fields=True):
    at: dt.date | None = None


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


class CustomerCreated(msgspec.Struct):
    customer: CustomerRead
    api_key: str


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


class AbuseRead(msgspec.Struct):
    reason: str
    since: dt.datetime


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


class InvoiceLineRead(msgspec.Struct):
    id: int
    kind: str
    description: str
    service_id: int | None
    plan: str
    period_start: dt.date
    period_end: dt.date
    period_text: str
    quantity: int
    unit_price: Money
    net: Money
    tax_category: str
    tax_rate: str
    tax_rate_text: str  # as the reader writes it; "5 % + 9,975 %" where a tax is stacked
    metric: str | None = None  # a usage line's metric (its dimension is `plan`)
    quantity_exact: str | None = None  # a usage line's exact quantity, e.g. "74400.5" (the month's sum)
    unit_price_exact: str | None = None  # a usage line's exact unit price in the currency, e.g. "0.000055"


class TaxRead(msgspec.Struct):
    name: str
    category: str
    rate: str
    label: str
    base: Money
    tax: Money


class PaymentRead(msgspec.Struct):
    id: int
    invoice_id: int | None
    purpose: str
    method: str
    status: str
    amount: Money
    gateway_ref: str | None
    failure_code: str | None
    created_at: dt.datetime
    settled_at: dt.datetime | None


class PartyRead(msgspec.Struct):
    name: str
    country: str
    region: str | None = None
    tax_id: str | None = None
    city: str | None = None


class InvoiceRead(msgspec.Struct):
    id: int
    number: str | None
    title: str
    kind: str
    status: str
    status_text: str
    subsidiary: str
    currency: str
    issued_on: dt.date | None
    due_on: dt.date
    seller: PartyRead
    buyer: PartyRead
    net: Money
    tax: Money
    total: Money
    lines: list[InvoiceLineRead]
    taxes: list[TaxRead]
    mentions: list[str]
    payments: list[PaymentRead]
    credits: str | None = None  # a credit note: the number of the invoice it corrects
    reason: str | None = None
    cash_total: Money | None = None  # what to pay in cash where coins stop short of the minor unit (CZK, CAD)


class OrderRead(msgspec.Struct):
    id: int
    status: str
    subsidiary: str
    total: Money
    created_at: dt.datetime
    invoice: InvoiceRead | None
    services: list[ServiceRead]
    withdrawal_until: dt.date | None = None  # a consumer may withdraw until this day (included), unless it waived it
    withdrawal_waived: bool = False
    withdrawn_at: dt.datetime | None = None


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


def audit_event_read(row) -> AuditEventRead:
    import json

    return AuditEventRead(row["id"], row["at"], row["actor"], row["action"], json.loads(row["before"]) if row["before"] else None,
                          json.loads(row["after"]) if row["after"] else None, row["role"], row["entity"], row["entity_id"])


class PriceRead(msgspec.Struct):
    price: Money
    setup: Money
    hourly: str | None
    valid_from: dt.date | None
    valid_from_text: str | None


class PlanRead(msgspec.Struct):
    code: str
    name: str
    duration: str
    duration_text: str
    engagement_months: int
    engagement_text: str | None
    price: PriceRead
    upcoming: list[PriceRead] = []


class ProductRead(msgspec.Struct):
    code: str
    universe: str
    kind: str
    name: str
    description: str
    plans: list[PlanRead]
    support_level: int | None = None
    first_response_minutes: int | None = None


class CatalogRead(msgspec.Struct):
    storefront: str
    currency: str
    locale: str
    at: dt.date
    products: list[ProductRead]


def price_read(price, locale: str) -> PriceRead:
    cur = price.currency
    hourly = str((Decimal(price.hourly_micro) / UNIT_SCALE).normalize()) if price.hourly_micro is not None else None
    start = price.valid_from if price.valid_from != dt.date.min else None
    return PriceRead(money(price.amount_minor, cur, locale), money(price.setup_minor, cur, locale), hourly, start,
                     format_day(start, locale) if start else None)


def catalog_read(catalog, sub, locale: str, day: dt.date) -> CatalogRead:
    """What a storefront sells on ``day``, as its customers read it in ``locale``."""
    products = []
    offer = catalog.offers[sub.code]
    for product, plans in catalog.for_storefront(sub.code, day):
        domain = product.universe
        products.append(ProductRead(
            product.code, product.universe, product.kind, translate(product.name, locale, domain),
            translate(product.description, locale, domain) if product.description else "",
            [PlanRead(plan.code, translate(plan.name, locale, domain), plan.duration, format_months(plan.months, locale),
                      plan.engagement_months,
                      format_months(plan.engagement_months, locale) if plan.engagement_months else None,
                      price_read(price, locale),
                      [price_read(p, locale) for p in offer.prices.get(plan.code, []) if p.valid_from > day])
             for plan, price in plans],
            product.support_level, product.first_response_minutes,
        ))
    return CatalogRead(sub.code, sub.currency, locale, day, products)


class TaxRateRead(msgspec.Struct):
    name: str
    category: str
    rate: str
    label: str
    valid_from: dt.date
    valid_to: dt.date | None


class StorefrontRead(msgspec.Struct):
    code: str
    country: str
    currency: str
    locales: list[str]
    default_locale: str
    legal_entity: dict[str, Any]
    invoice_series: str
    taxes: list[TaxRateRead]


def storefront_read(sub, day: dt.date, locale: str) -> StorefrontRead:
    taxes = [t for t in (sub.tax_on(day), sub.stacked_tax_on(day)) if t]
    return StorefrontRead(sub.code, sub.country, sub.currency, list(sub.locales), sub.default_locale, sub.legal_entity,
                          sub.invoice_series,
                          [TaxRateRead(t.name, t.category, ppm_to_percent(t.rate_ppm), labels.tax_label(t.name, ppm_to_percent(t.rate_ppm), locale),
                                       t.valid_from, t.valid_to) for t in taxes])


class OverdueRead(msgspec.Struct):
    id: int
    number: str
    subsidiary: str
    customer: str
    buyer_name: str
    due_on: dt.date
    days_overdue: int
    total: Money
    payment_pending: bool


class RevenueRead(msgspec.Struct):
    month: str
    subsidiary: str
    universe: str
    net: Money
    documents: int


class ForecastRowRead(msgspec.Struct):
    day: dt.date
    subsidiary: str
    universe: str
    currency: str
    renewing: int  # services that renew that day (automatically, or set to stop but still engaged)
    renewing_net: Money
    stopping: int  # services set to stop that end that day (churn)
    stopping_net: Money  # what they would have renewed for


class ForecastTotalRead(msgspec.Struct):
    currency: str
    renewing: int
    renewing_net: Money
    stopping: int
    stopping_net: Money


class ForecastRead(msgspec.Struct):
    start: dt.date
    end: dt.date  # the last day, included
    days: int
    rows: list[ForecastRowRead]
    totals: list[ForecastTotalRead]  # one per currency; currencies are never added together


def forecast_read(report, locale: str) -> ForecastRead:
    def measures(r: dict) -> dict:
        cur = r["currency"]
        return {"renewing": r["renewing"], "renewing_net": money(r["renewing_minor"], cur, locale),
                "stopping": r["stopping"], "stopping_net": money(r["stopping_minor"], cur, locale)}

    return ForecastRead(report.start, report.end, report.days,
                        [ForecastRowRead(r["day"], r["subsidiary"], r["universe"], r["currency"], **measures(r)) for r in report.rows],
                        [ForecastTotalRead(t["currency"], **measures(t)) for t in report.totals()])


class ProblemRead(msgspec.Struct):
    rule: str
    plugin: str
    message: str
    storefront: str | None
    source: str | None
    line: int | None


class PluginRead(msgspec.Struct):
    name: str
    version: str
    hooks: list[str]
    products: list[str]
    plans: list[str]
    support_tiers: list[str]


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


def service_read(catalog, row: dict, locale: str) -> ServiceRead:
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
    )


def api_key_read(row: dict) -> ApiKeyRead:
    return ApiKeyRead(row["id"], row["prefix"], row["name"], row["scopes"].split(), row["created_at"], row["expires_at"],
                      row["revoked_at"])


def plan_name(catalog, plan_code: str, locale: str) -> str:
    plan = catalog.plans.get(plan_code)
    return translate(plan.name, locale, plan.universe) if plan else plan_code


def line_description(catalog, row: dict, locale: str, metrics: dict | None = None) -> str:
    if row["kind"] == "usage":  # product_code: the metric; plan_code: its dimension ("" if none)
        spec = (metrics or {}).get(row["product_code"])
        name = translate(spec.name, locale, spec.universe) if spec and spec.name else row["product_code"]
        what = f"{name} {row['plan_code']}" if row["plan_code"] else name
        loc = normalise(locale) or DEFAULT_LOCALE
        quantity = format_decimal(Decimal(row["quantity_micro"] or 0).scaleb(-6), locale=loc, decimal_quantization=False)
        price = format_currency(Decimal(row["unit_price_micro"] or 0).scaleb(-6), row.get("currency") or "EUR", locale=loc,
                                currency_digits=False, decimal_quantization=False)
        return translate("{name}: {quantity} × {unit_price}", locale).format(name=what, quantity=quantity, unit_price=price)
    if row["kind"] == "commitment":  # core/commitments.py
        return translate("Savings plan: the month's commitment", locale)
    if row["kind"] == "covered":
        return translate("Usage covered by the savings plan, at list price", locale)
    name = plan_name(catalog, row["plan_code"], locale)
    if row["kind"] == "setup":
        return translate("Setup fee: {name}", locale).format(name=name)
    return name


def _exact(line: dict) -> dict:
    """A usage line's metric, and its exact quantity and unit price (micro-units), as decimal strings."""
    def text(micro: int | None) -> str | None:
        return None if micro is None else format(Decimal(micro).scaleb(-6).normalize(), "f")

    return {"metric": line["product_code"], "quantity_exact": text(line["quantity_micro"]),
            "unit_price_exact": text(line["unit_price_micro"])}


def invoice_read(rt, row: dict, lines: list[dict], taxes: list[dict], payments: list[dict], locale: str) -> InvoiceRead:
    cur = row["currency"]
    catalog = rt.catalog
    entity = rt.storefronts[row["subsidiary"]].legal_entity
    seller = PartyRead(entity["name"], entity["country"], None, entity.get("tax_id"), entity.get("city"))
    return InvoiceRead(
        id=row["id"], number=number(row["series"], row["fiscal_year"], row["seq"]), title=labels.title(row["kind"], locale),
        kind=row["kind"], status=row["status"], status_text=labels.status(row["status"], locale, row["kind"]), subsidiary=row["subsidiary"], currency=cur, issued_on=row["issued_on"],
        due_on=row["due_on"], seller=seller, buyer=PartyRead(row["buyer_name"], row["buyer_country"], row["buyer_region"],
                                                             row["buyer_vat_number"]),
        net=money(row["net_minor"], cur, locale), tax=money(row["tax_minor"], cur, locale),
        total=money(row["total_minor"], cur, locale),
        lines=[InvoiceLineRead(
            id=ln["id"], kind=ln["kind"], description=line_description(catalog, {**ln, "currency": cur}, locale, rt.metrics), service_id=ln["service_id"], plan=ln["plan_code"],
            period_start=ln["period_start"], period_end=ln["period_end"],
            period_text=labels.served(ln["period_start"], ln["period_end"], locale), quantity=ln["quantity"],
            unit_price=money(ln["unit_price_minor"], cur, locale), net=money(ln["net_minor"], cur, locale),
            tax_category=ln["tax_category"], tax_rate=ppm_to_percent(ln["tax_rate_ppm"]),
            tax_rate_text=" + ".join(labels.percent(ppm_to_percent(r), locale)
                                     for r in (ln["tax_rate_ppm"], ln["tax2_rate_ppm"]) if r is not None),
            **(_exact(ln) if ln["kind"] == "usage" else {}),
        ) for ln in lines],
        taxes=[TaxRead(t["name"], t["category"], ppm_to_percent(t["rate_ppm"]), labels.tax_label(t["name"], ppm_to_percent(t["rate_ppm"]), locale),
                       money(t["base_minor"], cur, locale),
                       money(t["tax_minor"], cur, locale)) for t in taxes],
        mentions=[translate(MENTIONS[c], locale) for c in sorted({t["category"] for t in taxes}) if c in MENTIONS],
        payments=[payment_read(p, locale) for p in payments],
        credits=row.get("credits"), reason=row["reason"],
        cash_total=money(cash_minor(row["total_minor"], cur), cur, locale) if cash_increment(cur) > 1 else None,
    )


def payment_read(p: dict, locale: str) -> PaymentRead:
    return PaymentRead(
        id=p["id"], invoice_id=p["invoice_id"], purpose=p["purpose"], method=p["method"], status=p["status"],
        amount=money(p["amount_minor"], p["currency"], locale), gateway_ref=p["gateway_ref"],
        failure_code=p["failure_code"], created_at=p["created_at"], settled_at=p["settled_at"],
    )
