"""HTTP handlers for the catalog, the storefronts and the plugins."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.params import QueryParameter

from core import labels
from core.api.common import (
    locale_of,
    runtime,
    staff,
)
from core.billing.views import Money, money
from core.errors import InvalidInput
from core.i18n import N_, format_day, format_months, translate
from core.money import (
    UNIT_SCALE,
    ppm_to_percent,
)
from core.plugins import describe
from core.uow import unit_of_work

# --- schemas -------------------------------------------------------------------------------------


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


# --- handlers ------------------------------------------------------------------------------------


@get("/v1/plugins", sync_to_thread=False, tags=["plugins"])
def list_plugins(request: Request) -> list[PluginRead]:
    rt = runtime(request)
    return [PluginRead(c.name, c.version, c.hooks, c.products, c.plans, c.support_tiers) for c in describe(rt.pm, rt.catalog)]


@get("/v1/catalog", sync_to_thread=False, tags=["catalog"])
def catalog(request: Request, storefront: Annotated[str, QueryParameter(description="Storefront code, e.g. FR")] = "FR",
            at: Annotated[dt.date | None, QueryParameter(description="Show the prices in force on this date (default: today)")] = None,
            ) -> CatalogRead:
    """What a storefront sells, in its currency, in the reader's language (Accept-Language, or
    the storefront's own), with the prices in force on a date and those scheduled after it."""
    rt = runtime(request)
    sub = rt.storefronts.get(storefront.upper())
    if sub is None:
        raise InvalidInput(N_("Unknown or closed storefront {storefront}."), code="unknown_storefront", storefront=storefront)
    locale = locale_of(request) if request.headers.get("accept-language") else sub.default_locale
    return catalog_read(rt.catalog, sub, locale, at or rt.clock.today())


@get("/v1/storefronts", sync_to_thread=False, tags=["catalog"])
def list_storefronts(request: Request) -> list[StorefrontRead]:
    """The storefronts: currency, languages, legal entity and the taxes in force today."""
    rt = runtime(request)
    locale = locale_of(request)
    return [storefront_read(sub, rt.clock.today(), locale) for sub in rt.storefronts.values()]


@get("/v1/staff/catalog/problems", sync_to_thread=True, opt={"scope": "services:read"}, tags=["staff"])
def catalog_problems(request: Request) -> list[ProblemRead]:
    """Staff: what ``univers catalog check`` says of the data files on disk now (empty when a
    restart would accept them). The running catalog itself passed the check at start-up."""
    from core.boot import load_catalog

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        staff(conn, request, "staff.catalog")
    _catalog, _domains, problems = load_catalog(rt.pm, rt.settings, rt.clock, rt.storefronts)
    return [ProblemRead(p.rule, p.plugin, p.message, p.storefront, p.source, p.line) for p in problems]
