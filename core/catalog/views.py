"""The catalog as a storefront's customers read it, in their language: what it sells on a day,
each plan with its price in force, the prices to come and the support terms. The API's
``GET /v1/catalog``, the CLI's ``univers catalog show`` and the console's order page show this
one view."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec

from core.i18n import format_day, format_months, translate
from core.money import UNIT_SCALE, Money, money


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


class SlaTargetRead(msgspec.Struct):
    priority: str
    first_response_minutes: int
    next_response_minutes: int | None  # None: no promise
    resolution_minutes: int | None


class SupportTermsRead(msgspec.Struct):
    hours: str  # business: the storefront's support calendar; calendar: every hour
    targets: list[SlaTargetRead]
    credit_percent: int  # of the level's price, per breached target of a ticket


class ProductRead(msgspec.Struct):
    code: str
    universe: str
    kind: str
    name: str
    description: str
    plans: list[PlanRead]
    support_level: int | None = None
    first_response_minutes: int | None = None
    support_terms: SupportTermsRead | None = None
    partners_only: bool = False  # Fast-Path: for members of the universe's partner programme only


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


def support_terms_read(terms) -> SupportTermsRead | None:
    if terms is None:
        return None
    return SupportTermsRead(terms.hours, [SlaTargetRead(t.priority, t.first_response, t.next_response or None,
                                                        t.resolution or None) for t in terms.targets],
                            terms.credit_percent)


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
            product.support_level, product.first_response_minutes, support_terms_read(product.support_terms),
            product.partners_only,
        ))
    return CatalogRead(sub.code, sub.currency, locale, day, products)
