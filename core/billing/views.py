"""The invoice as its reader sees it, in the reader's language.

One structure serves the API, the PDF and the e-invoices, so the three never disagree on a
description, a period or an amount. Amounts are given exactly in minor units and formatted by
Babel.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec
from babel.numbers import format_currency, format_decimal

from core import labels
from core.billing.invoicing import number
from core.countries.tax import MENTIONS
from core.i18n import DEFAULT_LOCALE, normalise, translate
from core.money import (  # noqa: F401 - Money and money are the API's, from here as before
    Money,
    cash_increment,
    cash_minor,
    money,
    ppm_to_percent,
)


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


# --- builders --------------------------------------------------------------------------------


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
    if row["kind"] == "commitment":  # core/usage/commitments.py
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
