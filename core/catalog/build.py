"""The validated, indexed catalog: :func:`build_catalog` checks the contributions together and
indexes what each storefront sells, at what price, from when."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from core.catalog.specs import (
    CODE,
    SUPPORT_HOURS,
    SUPPORT_KIND,
    SUPPORT_PRIORITIES,
    OverlaySpec,
    PricePoint,
    Problem,
    ProductSpec,
    SlaTarget,
    SupportTierSpec,
    duration_months,
)
from core.money import (
    MoneyError,
    check_currency,
    rate_to_ppm,
    to_micro,
    to_minor,
)

# --- the validated, indexed catalog ---------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    currency: str
    amount_minor: int
    setup_minor: int
    hourly_micro: int | None
    valid_from: dt.date
    valid_to: dt.date | None = None  # exclusive: the day the next price starts


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
    free: bool = False


@dataclass(frozen=True)
class SupportTerms:
    """A support level's promise: the hours its clocks count, a target per priority, and the share of
    the level's price credited for each breached target of a ticket."""

    hours: str
    targets: tuple[SlaTarget, ...]
    credit_percent: int = 0


@dataclass(frozen=True)
class Product:
    code: str
    universe: str
    kind: str
    name: str
    description: str
    required_options: tuple[str, ...]
    plans: tuple[Plan, ...]
    attributes: dict[str, Any] = field(default_factory=dict)
    example_options: dict[str, Any] = field(default_factory=dict)
    support_level: int | None = None
    first_response_minutes: int | None = None
    support_terms: SupportTerms | None = None
    partners_only: bool = False


@dataclass(frozen=True)
class UsagePrice:
    """A metric's price in a storefront (core/usage/rating.py): tiers of (up to, unit price), both in
    micro-units (the last ``upto`` is None), from ``valid_from`` to ``valid_to`` (exclusive)."""

    tiers: tuple[tuple[int | None, int], ...]
    valid_from: dt.date
    valid_to: dt.date | None = None


@dataclass(frozen=True)
class CommitmentTerm:
    """Savings plan terms in a storefront (core/usage/commitments.py), from ``valid_from`` to
    ``valid_to`` (exclusive)."""

    months: int
    discount_ppm: int
    minimum_minor: int
    valid_from: dt.date
    valid_to: dt.date | None = None


@dataclass
class Offer:
    """What one storefront sells: enabled products and plans, and every dated price."""

    storefront: str
    currency: str
    products: set[str] = field(default_factory=set)
    plans: set[str] = field(default_factory=set)
    prices: dict[str, list[Price]] = field(default_factory=dict)
    usage: dict[str, list[UsagePrice]] = field(default_factory=dict)  # metric code -> dated prices of use
    usage_owner: dict[str, str] = field(default_factory=dict)  # metric code -> plugin whose overlay priced it
    commitments: dict[str, dict[int, list[CommitmentTerm]]] = field(default_factory=dict)  # plugin -> months -> dated terms
    sources: dict[str, str] = field(default_factory=dict)  # plugin -> overlay file


@dataclass
class Catalog:
    products: dict[str, Product] = field(default_factory=dict)
    plans: dict[str, Plan] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)  # product or plan code -> plugin name
    offers: dict[str, Offer] = field(default_factory=dict)  # storefront -> offer

    def product_of(self, plan: Plan) -> Product:
        return self.products[plan.product_code]

    def is_enabled(self, storefront: str, plan_code: str) -> bool:
        offer = self.offers.get(storefront)
        return offer is not None and plan_code in offer.plans

    def price(self, storefront: str, plan_code: str, day: dt.date) -> Price | None:
        """The price of a plan on sale in a storefront on ``day``; None when it is not on sale."""
        if not self.is_enabled(storefront, plan_code):
            return None
        offer = self.offers[storefront]
        if self.plans[plan_code].free:
            return Price(offer.currency, 0, 0, None, dt.date.min)
        return price_on(offer.prices.get(plan_code, []), day)

    def for_storefront(self, storefront: str, day: dt.date) -> list[tuple[Product, list[tuple[Plan, Price]]]]:
        """Products on sale in a storefront on ``day``, with the plans and prices in force."""
        out = []
        for product in self.products.values():
            plans = [(plan, price) for plan in product.plans if (price := self.price(storefront, plan.code, day))]
            if plans:
                out.append((product, plans))
        return sorted(out, key=lambda item: (item[0].universe, item[0].code))


def price_on(prices: list[Price], day: dt.date) -> Price | None:
    return next((p for p in reversed(prices) if p.valid_from <= day), None)


class _Builder:
    def __init__(self, storefronts: dict[str, Any]):
        self.storefronts = storefronts
        self.catalog = Catalog()
        self.problems: list[Problem] = []

    def problem(self, plugin: str, rule: str, message: str, storefront: str | None = None,
                source: str | None = None, line: int | None = None) -> None:
        self.problems.append(Problem(plugin, rule, message, storefront, source, line))

    def claim(self, plugin: str, code: str, what: str, source: str | None, line: int | None) -> bool:
        if not CODE.match(code):
            self.problem(plugin, "bad_code", f"{what} {code!r}: codes are lower-case letters, digits and dashes", None, source, line)
            return False
        if code in self.catalog.owner:
            self.problem(plugin, "duplicate_code", f"{what} {code!r}: code already contributed by plugin {self.catalog.owner[code]!r}",
                         None, source, line)
            return False
        self.catalog.owner[code] = plugin
        return True

    def add_product(self, plugin: str, spec: Any) -> None:
        if not isinstance(spec, ProductSpec):
            self.problem(plugin, "bad_contribution", f"{spec!r} is not a ProductSpec")
            return
        where = (None, spec.source, spec.line)
        if not self.claim(plugin, spec.code, "product", spec.source, spec.line):
            return
        if not spec.plans:
            self.problem(plugin, "no_plan", f"product {spec.code!r} has no plan", *where)
        if missing := [o for o in spec.required_options if o not in spec.example_options]:
            self.problem(plugin, "missing_example_options", f"product {spec.code!r} requires options {missing} but gives no "
                         "example_options for them (valid values, used by the conformance suite)", *where)
        plans = []
        for p in spec.plans:
            if not self.claim(plugin, p.code, "plan", spec.source, spec.line):
                continue
            try:
                months = duration_months(p.duration)
                engagement = duration_months(p.engagement) if p.engagement else 0
            except ValueError as exc:
                self.problem(plugin, "bad_duration", f"plan {p.code!r}: {exc}", *where)
                continue
            plans.append(Plan(p.code, spec.code, spec.universe, spec.kind, p.name or spec.name, p.duration, months, engagement, p.free))
        self.catalog.products[spec.code] = Product(spec.code, spec.universe, spec.kind, spec.name, spec.description,
                                                   spec.required_options, tuple(plans), dict(spec.attributes),
                                                   dict(spec.example_options))

    def add_tier(self, plugin: str, tier: Any) -> None:
        if not isinstance(tier, SupportTierSpec):
            self.problem(plugin, "bad_contribution", f"{tier!r} is not a SupportTierSpec")
            return
        what, where = f"support tier {tier.code!r}", (None, tier.source, tier.line)
        if not self.claim(plugin, tier.code, "support tier", tier.source, tier.line):
            return
        if tier.level not in (1, 2, 3, 4):
            self.problem(plugin, "bad_support_level", f"{what}: level {tier.level} is outside 1-4", *where)
        if tier.first_response_minutes <= 0:
            self.problem(plugin, "bad_response_target", f"{what}: first response target must be positive", *where)
        terms = self.support_terms(plugin, tier, what, where)
        try:
            months = duration_months(tier.duration)
        except ValueError as exc:
            self.problem(plugin, "bad_duration", f"{what}: {exc}", *where)
            return
        plan = Plan(tier.code, tier.code, tier.universe, SUPPORT_KIND, tier.name, tier.duration, months, 0, tier.free)
        self.catalog.products[tier.code] = Product(
            tier.code, tier.universe, SUPPORT_KIND, tier.name, tier.description, (), (plan,),
            support_level=tier.level, first_response_minutes=tier.first_response_minutes, support_terms=terms,
            partners_only=bool(tier.partners_only),
        )

    def support_terms(self, plugin: str, tier: SupportTierSpec, what: str, where: tuple) -> SupportTerms:
        """The level's SLA terms, checked: without targets, it promises its first response at every priority."""
        if tier.hours not in SUPPORT_HOURS:
            self.problem(plugin, "bad_support_hours", f"{what}: hours {tier.hours!r} is not one of {', '.join(SUPPORT_HOURS)}",
                         *where)
        targets = tier.targets or tuple(SlaTarget(p, tier.first_response_minutes) for p in SUPPORT_PRIORITIES)
        seen = set()
        for target in targets:
            if target.priority not in SUPPORT_PRIORITIES or target.priority in seen:
                self.problem(plugin, "bad_sla_target", f"{what}: priority {target.priority!r} is unknown or given twice "
                             f"(one target each for {', '.join(SUPPORT_PRIORITIES)})", *where)
            seen.add(target.priority)
            minutes = (target.first_response, target.next_response, target.resolution)
            if target.first_response <= 0 or any(not isinstance(m, int) or m < 0 for m in minutes):
                self.problem(plugin, "bad_response_target", f"{what}, priority {target.priority!r}: the first response "
                             "must be positive and the other targets positive or 0 (no promise)", *where)
            if target.priority == "normal" and target.first_response != tier.first_response_minutes:
                self.problem(plugin, "bad_response_target", f"{what}: the normal priority's first response "
                             f"({target.first_response} min) differs from first_response_minutes "
                             f"({tier.first_response_minutes}), which the catalog shows", *where)
        credit = tier.credit_percent
        if not isinstance(credit, int) or not 0 <= credit <= 100 or (tier.free and credit):
            self.problem(plugin, "bad_service_credit", f"{what}: credit_percent {credit!r} must be 0 to 100, "
                         "and 0 on a free level (there is nothing to credit)", *where)
        return SupportTerms(tier.hours, tuple(targets), tier.credit_percent)

    def add_overlay(self, plugin: str, overlay: Any, seen: dict[tuple[str, str], str]) -> None:
        if not isinstance(overlay, OverlaySpec):
            self.problem(plugin, "bad_contribution", f"{overlay!r} is not an OverlaySpec")
            return
        self.problems.extend(overlay.problems)
        if overlay.problems:
            return
        sf, source = overlay.storefront, overlay.source

        def at(rule: str, message: str, key: str | None = None) -> None:
            self.problem(plugin, rule, message, sf, source, overlay.lines.get(key) if key else None)

        sub = self.storefronts.get(sf)
        if sub is None:
            at("unknown_storefront", f"there is no storefront {sf!r}", "storefront")
            return
        if (plugin, sf) in seen:
            at("duplicate_overlay", f"a second overlay for {sf}; the first is {seen[plugin, sf]}")
            return
        seen[plugin, sf] = source or "?"
        if overlay.currency is not None and overlay.currency != sub.currency:
            at("wrong_currency", f"currency {overlay.currency} does not match the storefront's currency {sub.currency}", "currency")
        offer = self.catalog.offers.setdefault(sf, Offer(sf, sub.currency))
        if source:
            offer.sources[plugin] = source
        mine = {code for code, owner in self.catalog.owner.items() if owner == plugin}
        for metric, points in overlay.usage.items():
            if metric in offer.usage:
                at("duplicate_usage_price", f"metric {metric!r} is priced by plugin {offer.usage_owner[metric]!r} too",
                   f"usage.{metric}")
                continue
            out: list[UsagePrice] = []
            for point in sorted(points, key=lambda p: p.valid_from):
                if out and out[-1].valid_from == point.valid_from:
                    at("duplicate_price_date", f"metric {metric!r} has two prices from {point.valid_from}", f"usage.{metric}")
                    continue
                if out:
                    out[-1] = UsagePrice(out[-1].tiers, out[-1].valid_from, point.valid_from)
                out.append(UsagePrice(tuple((None if upto is None else to_micro(upto), to_micro(unit)) for upto, unit in point.tiers),
                                      point.valid_from))
            offer.usage[metric], offer.usage_owner[metric] = out, plugin
        for months, points in overlay.commitment.items():
            out_terms: list[CommitmentTerm] = []
            for point in sorted(points, key=lambda p: p.valid_from):
                try:
                    term = CommitmentTerm(months, rate_to_ppm(point.percent_off), to_minor(point.minimum, sub.currency),
                                          point.valid_from)
                except MoneyError as exc:
                    at("bad_amount", f"savings plan of {months} months from {point.valid_from}: {exc}", f"commitment.{months}")
                    continue
                if out_terms and out_terms[-1].valid_from == term.valid_from:
                    at("duplicate_price_date", f"savings plan of {months} months has two terms from {term.valid_from}",
                       f"commitment.{months}")
                    continue
                if out_terms:
                    out_terms[-1] = CommitmentTerm(**{**out_terms[-1].__dict__, "valid_to": term.valid_from})
                out_terms.append(term)
            offer.commitments.setdefault(plugin, {})[months] = out_terms
        for code, enabled in overlay.products.items():
            if code not in mine or code not in self.catalog.products:
                at("unknown_product", f"product {code!r} does not exist in plugin {plugin!r}", f"products.{code}")
                continue
            if enabled:
                offer.products.add(code)
        for code in overlay.plans:
            if code not in mine or code not in self.catalog.plans:
                at("unknown_plan", f"plan {code!r} does not exist in plugin {plugin!r}", f"plans.{code}")
        for code, points in overlay.prices.items():
            plan = self.catalog.plans.get(code)
            key = f"prices.{code}"
            if code not in mine or plan is None:
                at("unknown_plan", f"price for plan {code!r}, which does not exist in plugin {plugin!r}", key)
                continue
            if plan.free:
                at("free_plan_priced", f"plan {code!r} is free everywhere and takes no price", key)
                continue
            offer.prices[code] = self.dated_prices(code, points, sub.currency, lambda rule, msg: at(rule, msg, key))
        for code in offer.products:
            if self.catalog.owner.get(code) != plugin:
                continue
            product = self.catalog.products[code]
            on_sale = [p for p in product.plans if overlay.plans.get(p.code, True)]
            if not on_sale:
                at("no_plan_on_sale", f"product {code!r} is enabled but all its plans are switched off", f"products.{code}")
            for plan in on_sale:
                offer.plans.add(plan.code)
                if not plan.free and not overlay.prices.get(plan.code):  # a bad price is reported as such
                    at("missing_price", f"plan {plan.code!r} of enabled product {code!r} has no price in {sub.currency}",
                       f"products.{code}")

    def dated_prices(self, plan: str, points: Iterable[PricePoint], currency: str, report) -> list[Price]:
        out: list[Price] = []
        for point in sorted(points, key=lambda p: p.valid_from):
            if out and out[-1].valid_from == point.valid_from:
                report("duplicate_price_date", f"plan {plan!r} has two prices from {point.valid_from}")
                continue
            if point.price <= 0:
                report("price_not_positive", f"plan {plan!r}: the price from {point.valid_from} must be positive, not {point.price}")
                continue
            try:
                if point.setup < 0 or (point.hourly is not None and point.hourly < 0):
                    raise MoneyError("a setup fee or hourly price cannot be negative")
                check_currency(currency)
                price = Price(currency, to_minor(point.price, currency), to_minor(point.setup, currency),
                              to_micro(point.hourly) if point.hourly is not None else None, point.valid_from)
            except MoneyError as exc:
                report("bad_amount", f"plan {plan!r}, price from {point.valid_from}: {exc}")
                continue
            if out:
                out[-1] = Price(**{**out[-1].__dict__, "valid_to": point.valid_from})
            out.append(price)
        return out


def build_catalog(
    contributions: list[tuple[str, list, list, list]],
    storefronts: dict[str, Any],
) -> tuple[Catalog, list[Problem]]:
    """Check every plugin's contribution together and index it.

    ``contributions`` holds (plugin, products, support tiers, overlays). Rules: codes unique
    across plugins; valid durations and support levels; overlays for known storefronts, in their
    currency, naming only their plugin's products and plans; every plan on sale has a positive
    price exact in the currency's minor unit (or is free); dated prices do not collide.
    """
    b = _Builder(storefronts)
    for plugin, products, tiers, overlays in contributions:
        for spec in products:
            b.add_product(plugin, spec)
        for tier in tiers:
            b.add_tier(plugin, tier)
        for overlay in overlays:
            for local in getattr(overlay, "local_products", ()):
                if b.catalog.owner.get(local.code) == plugin:
                    b.problem(plugin, "duplicate_code", f"local product {local.code!r} is defined twice", overlay.storefront,
                              local.source, local.line)
                else:
                    b.add_product(plugin, local)
    for product in b.catalog.products.values():
        for plan in product.plans:
            b.catalog.plans[plan.code] = plan
    seen: dict[tuple[str, str], str] = {}
    for plugin, _products, _tiers, overlays in contributions:
        for overlay in overlays:
            b.add_overlay(plugin, overlay, seen)
    for code, sub in storefronts.items():
        b.catalog.offers.setdefault(code, Offer(code, sub.currency))
    return b.catalog, b.problems
