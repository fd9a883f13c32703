"""HTTP handlers for the catalog, the storefronts and the plugins."""

from __future__ import annotations

import datetime as dt
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
from core.catalog.views import CatalogRead, catalog_read
from core.errors import InvalidInput
from core.i18n import N_
from core.money import ppm_to_percent
from core.plugins import describe
from core.uow import unit_of_work

# --- schemas -------------------------------------------------------------------------------------


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
