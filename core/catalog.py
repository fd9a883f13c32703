"""The catalog: products, plans, prices and support tiers contributed by plugins.

Plugins ship their catalog as data (``catalog.json`` next to the plugin) and return it from
their contribution hooks; :func:`load_catalog_file` reads that format. The core validates all
contributions together at start-up (:func:`build_catalog`) and names the plugin behind any
invalid or duplicated item.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.money import MoneyError, check_currency, to_decimal, to_micro, to_minor

_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?$")
SUPPORT_KIND = "support"


class CatalogError(ValueError):
    """A contribution that breaks a catalog rule. The message names plugin, item and rule."""

    def __init__(self, plugin: str, item: str, rule: str):
        self.plugin, self.item, self.rule = plugin, item, rule
        super().__init__(f"plugin {plugin!r}: {item}: {rule}")


def duration_months(duration: str) -> int:
    """``P1M`` → 1, ``P1Y`` → 12, ``P2Y6M`` → 30."""
    match = _DURATION.match(duration or "")
    if not match or not any(match.groups()):
        raise ValueError(f"bad ISO 8601 duration {duration!r} (expected e.g. P1M, P12M, P1Y)")
    years, months = (int(g or 0) for g in match.groups())
    total = years * 12 + months
    if total <= 0:
        raise ValueError(f"duration {duration!r} must be positive")
    return total


@dataclass(frozen=True)
class PriceSpec:
    """A price per period in one currency, in major units as exact decimals."""

    amount: Decimal
    setup: Decimal = Decimal(0)
    hourly: Decimal | None = None  # informational unit price for pay-as-you-go products


@dataclass(frozen=True)
class PlanSpec:
    code: str
    duration: str  # ISO 8601, e.g. P1M, P12M
    prices: dict[str, PriceSpec]
    engagement: str | None = None  # commitment, e.g. P12M
    name: str | None = None


@dataclass(frozen=True)
class ProductSpec:
    code: str
    universe: str
    kind: str
    name: str
    description: str
    countries: tuple[str, ...]
    plans: tuple[PlanSpec, ...]
    required_options: tuple[str, ...] = ()


@dataclass(frozen=True)
class SupportTierSpec:
    code: str
    universe: str
    level: int
    name: str
    first_response_minutes: int
    prices: dict[str, Decimal]
    countries: tuple[str, ...]
    duration: str = "P1M"


def _prices(raw: dict[str, Any]) -> dict[str, PriceSpec]:
    out = {}
    for currency, value in raw.items():
        if isinstance(value, dict):
            hourly = value.get("hourly")
            out[currency] = PriceSpec(
                to_decimal(value["price"]),
                to_decimal(value.get("setup", "0")),
                to_decimal(hourly) if hourly is not None else None,
            )
        else:
            out[currency] = PriceSpec(to_decimal(value))
    return out


def load_catalog_file(path: str | Path, universe: str) -> tuple[list[ProductSpec], list[SupportTierSpec]]:
    """Read a plugin's ``catalog.json``: ``{"products": [...], "support_tiers": [...]}``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}:{exc.colno}: {exc.msg}") from exc
    products = [
        ProductSpec(
            code=p["code"],
            universe=universe,
            kind=p["kind"],
            name=p["name"],
            description=p.get("description", ""),
            countries=tuple(p["countries"]),
            required_options=tuple(p.get("required_options", ())),
            plans=tuple(
                PlanSpec(
                    code=pl["code"],
                    duration=pl["duration"],
                    engagement=pl.get("engagement"),
                    name=pl.get("name"),
                    prices=_prices(pl["prices"]),
                )
                for pl in p["plans"]
            ),
        )
        for p in data.get("products", [])
    ]
    tiers = [
        SupportTierSpec(
            code=t["code"],
            universe=universe,
            level=int(t["level"]),
            name=t["name"],
            first_response_minutes=int(t["first_response_minutes"]),
            prices={c: to_decimal(v) for c, v in t["prices"].items()},
            countries=tuple(t["countries"]),
            duration=t.get("duration", "P1M"),
        )
        for t in data.get("support_tiers", [])
    ]
    return products, tiers


# --- the validated, indexed catalog ---------------------------------------------------------


@dataclass(frozen=True)
class Price:
    currency: str
    amount_minor: int
    setup_minor: int
    hourly_micro: int | None


@dataclass(frozen=True)
class Plan:
    code: str
    product_code: str
    universe: str
    kind: str
    name: str
    duration: str
    months: int
    engagement_months: int
    prices: dict[str, Price]


@dataclass(frozen=True)
class Product:
    code: str
    universe: str
    kind: str
    name: str
    description: str
    countries: frozenset[str]
    required_options: tuple[str, ...]
    plans: tuple[Plan, ...]
    support_level: int | None = None
    first_response_minutes: int | None = None


@dataclass
class Catalog:
    products: dict[str, Product] = field(default_factory=dict)
    plans: dict[str, Plan] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)  # product or plan code -> plugin name

    def for_storefront(self, storefront: str) -> list[Product]:
        return [p for p in self.products.values() if storefront in p.countries]

    def product_of(self, plan: Plan) -> Product:
        return self.products[plan.product_code]


def _check_prices(plugin: str, item: str, prices: dict[str, Any], storefronts: dict[str, Any], countries) -> dict[str, Price]:
    out = {}
    for currency, spec in prices.items():
        try:
            check_currency(currency)
            amount = spec.amount if isinstance(spec, PriceSpec) else spec
            setup = spec.setup if isinstance(spec, PriceSpec) else Decimal(0)
            hourly = spec.hourly if isinstance(spec, PriceSpec) else None
            if amount < 0 or setup < 0 or (hourly is not None and hourly < 0):
                raise MoneyError("negative price")
            out[currency] = Price(
                currency,
                to_minor(amount, currency),
                to_minor(setup, currency),
                to_micro(hourly) if hourly is not None else None,
            )
        except MoneyError as exc:
            raise CatalogError(plugin, item, f"price in {currency}: {exc}") from None
    for country in countries:
        sub = storefronts.get(country)
        if sub is None:
            raise CatalogError(plugin, item, f"unknown storefront {country!r}")
        if sub.currency not in out:
            raise CatalogError(plugin, item, f"sold in {country} but has no price in {sub.currency}")
    return out


def build_catalog(
    contributions: list[tuple[str, list[ProductSpec], list[SupportTierSpec]]],
    storefronts: dict[str, Any],
) -> Catalog:
    """Validate every plugin's contribution together and index it.

    Rules: codes unique across plugins, durations valid, prices non-negative and exact in the
    currency's minor unit, a price in the currency of every storefront a product is sold in,
    support tier levels 1 to 4.
    """
    catalog = Catalog()

    def claim(plugin: str, code: str, what: str) -> None:
        if code in catalog.owner:
            raise CatalogError(plugin, f"{what} {code!r}", f"code already contributed by plugin {catalog.owner[code]!r}")
        catalog.owner[code] = plugin

    for plugin, products, tiers in contributions:
        for spec in products:
            if not isinstance(spec, ProductSpec):
                raise CatalogError(plugin, repr(spec), "not a ProductSpec")
            claim(plugin, spec.code, "product")
            if not spec.plans:
                raise CatalogError(plugin, f"product {spec.code!r}", "has no plan")
            plans = []
            for p in spec.plans:
                item = f"plan {p.code!r}"
                claim(plugin, p.code, "plan")
                try:
                    months = duration_months(p.duration)
                    engagement = duration_months(p.engagement) if p.engagement else 0
                except ValueError as exc:
                    raise CatalogError(plugin, item, str(exc)) from None
                plans.append(
                    Plan(p.code, spec.code, spec.universe, spec.kind, p.name or spec.name, p.duration, months,
                         engagement, _check_prices(plugin, item, p.prices, storefronts, spec.countries))
                )
            catalog.products[spec.code] = Product(
                spec.code, spec.universe, spec.kind, spec.name, spec.description,
                frozenset(spec.countries), spec.required_options, tuple(plans),
            )
        for tier in tiers:
            if not isinstance(tier, SupportTierSpec):
                raise CatalogError(plugin, repr(tier), "not a SupportTierSpec")
            item = f"support tier {tier.code!r}"
            claim(plugin, tier.code, "support tier")
            if tier.level not in (1, 2, 3, 4):
                raise CatalogError(plugin, item, f"level {tier.level} is outside 1-4")
            if tier.first_response_minutes <= 0:
                raise CatalogError(plugin, item, "first response target must be positive")
            try:
                months = duration_months(tier.duration)
            except ValueError as exc:
                raise CatalogError(plugin, item, str(exc)) from None
            prices = _check_prices(plugin, item, tier.prices, storefronts, tier.countries)
            plan = Plan(tier.code, tier.code, tier.universe, SUPPORT_KIND, tier.name, tier.duration, months, 0, prices)
            catalog.products[tier.code] = Product(
                tier.code, tier.universe, SUPPORT_KIND, tier.name, "", frozenset(tier.countries), (), (plan,),
                support_level=tier.level, first_response_minutes=tier.first_response_minutes,
            )
    for product in catalog.products.values():
        for plan in product.plans:
            catalog.plans[plan.code] = plan
    return catalog
