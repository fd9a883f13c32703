"""Rating: the price of a project's month of usage, one function for the invoice and the forecast.

Prices are data of the plugin that contributes the metric (:class:`core.context.MetricSpec`):

* a metric with a ``plan`` template (publiccloud's ``instance_hours`` → ``pci-{value}-p1m``) is
  priced per dimension value by that plan in the storefront: its ``hourly`` price per unit,
  **capped** at the plan's monthly price;
* any other metric by the ``[usage]`` table of the plugin's overlay: a unit price, or tiers of
  (up to a quantity in the month, unit price); a free allowance is a first tier at 0.

The core knows no metric by name. Start-up (:func:`price_problems`, from
:func:`core.boot.load_catalog`) refuses a storefront that sells a universe without a price for
each of its metrics.

**The monthly cap, per (project, flavour).** Records carry no instance id, so the cap applies to
the month's summed hours of a flavour in a project, per *started month-equivalent*: with ``H``
hours in a month of ``M`` hours (744 in January), the line costs
``min(H × hourly, ceil(H / M) × monthly)``. One instance of a flavour — the common case — is
billed exactly as "hourly until it reaches the monthly price": at most the monthly price for the
month. Several instances that each run all month cost the monthly price each. Between those, it
may cost a little more than capping each instance would (one instance all month plus another for
ten hours pays the hourly price of both, since the second month-equivalent was started), never
less than hourly billing allows. Capping per instance needs an instance id in the records: a
later, compatible change (an optional ``resource`` column, then a GROUP BY on it).

**Rounding, once.** A line's exact amount is the sum over its tiers of quantity (micro-units) ×
unit price (micro-units), an integer in 1e-12 of the currency; it is rounded half up to the
minor unit once, then capped (the cap is already in minor units). Tax is then computed over the
summed lines by :mod:`core.billing.invoicing`, like every invoice.

**The price in force** is the one on the first day of the month: a price change applies from the
next month's invoice, and never rewrites a month already started.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from core.catalog import Catalog, Problem, UsagePrice, price_on
from core.context import MetricSpec
from core.money import precision

SCALE = 1_000_000  # quantities and unit prices are in micro-units


@dataclass(frozen=True)
class Rate:
    """The price of one metric (and dimension value) in a storefront for a month."""

    tiers: tuple[tuple[int | None, int], ...]  # (up to this quantity in micro-units, unit price in micro-units)
    cap_minor: int | None = None  # per started month-equivalent (plan-priced metrics)
    plan_code: str | None = None


@dataclass(frozen=True)
class Rated:
    """A rated line: the month's quantity, its (main) unit price and the amount, in minor units."""

    metric: str
    dimension: str | None
    quantity_micro: int
    unit_price_micro: int  # the price of the last tier reached (the hourly price, for capped metrics)
    net_minor: int
    capped: bool = False


def month_hours(period: dt.date) -> int:
    return calendar.monthrange(period.year, period.month)[1] * 24


def next_month(period: dt.date) -> dt.date:
    return dt.date(period.year + (period.month == 12), period.month % 12 + 1, 1)


def _usage_price(prices: list[UsagePrice], day: dt.date) -> UsagePrice | None:
    return next((p for p in reversed(prices) if p.valid_from <= day), None)


def rate_for(catalog: Catalog, metrics: dict[str, MetricSpec], storefront: str, metric: str, dimension: str | None,
             period: dt.date) -> Rate | None:
    """The rate of a metric in a storefront for the month starting ``period``; None without a price."""
    spec, offer = metrics.get(metric), catalog.offers.get(storefront)
    if spec is None or offer is None:
        return None
    if spec.plan is not None:
        if dimension is None:
            return None
        code = spec.plan.format(value=dimension)
        if code not in offer.plans:
            return None
        price = price_on(offer.prices.get(code, []), period)
        if price is None or price.hourly_micro is None:
            return None
        return Rate(((None, price.hourly_micro),), price.amount_minor, code)
    usage = _usage_price(offer.usage.get(metric, []), period)
    return Rate(usage.tiers) if usage else None


def rate(r: Rate, quantity_micro: int, period: dt.date, currency: str) -> tuple[int, int, bool]:
    """(net in minor units, unit price of the last tier reached, capped?) of a month's quantity."""
    exact, below, unit = 0, 0, r.tiers[0][1]
    for upto, price in r.tiers:
        top = quantity_micro if upto is None else min(quantity_micro, upto)
        if top > below:
            exact += (top - below) * price
            unit = price
        if upto is None or quantity_micro <= upto:
            break
        below = upto
    # exact is in 1e-12 of the major unit: one rounding, half up, to the minor unit
    minor = int((Decimal(exact).scaleb(precision(currency) - 12)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if r.cap_minor is not None and quantity_micro > 0:
        span = month_hours(period) * SCALE
        cap = -(-quantity_micro // span) * r.cap_minor  # per started month-equivalent
        if cap < minor:
            return cap, unit, True
    return minor, unit, False


def rate_lines(catalog: Catalog, metrics: dict[str, MetricSpec], storefront: str, currency: str, period: dt.date,
               sums: list[tuple[str, str | None, int]]) -> tuple[list[Rated], list[tuple[str, str | None]]]:
    """Rate a project's summed quantities per (metric, dimension): the lines, and what has no price."""
    out, missing = [], []
    for metric, dimension, quantity in sums:
        r = rate_for(catalog, metrics, storefront, metric, dimension, period)
        if r is None:
            missing.append((metric, dimension))
            continue
        net, unit, capped = rate(r, int(quantity), period, currency)
        out.append(Rated(metric, dimension, int(quantity), unit, net, capped))
    return out, missing


def price_problems(catalog: Catalog, metrics: dict[str, MetricSpec]) -> list[Problem]:
    """Every storefront selling a universe's products must price each of its metrics (and each
    dimension value of a plan-priced one); an overlay may not price a metric that is not its
    plugin's."""
    problems = []
    for sf, offer in sorted(catalog.offers.items()):
        universes = {catalog.products[p].universe for p in offer.products if p in catalog.products}
        for metric, plugin in offer.usage_owner.items():
            spec = metrics.get(metric)
            if spec is None or spec.universe != plugin or spec.plan is not None:
                problems.append(Problem(plugin, "unknown_metric", f"[usage] prices metric {metric!r}, which plugin {plugin!r} "
                                        "does not contribute or prices by plan", sf, offer.sources.get(plugin)))
        for spec in sorted(metrics.values(), key=lambda m: m.code):
            if spec.universe not in universes:
                continue
            source = offer.sources.get(spec.universe)
            if spec.plan is None:
                if not offer.usage.get(spec.code):
                    problems.append(Problem(spec.universe, "missing_usage_price",
                                            f"metric {spec.code!r} has no price in {offer.currency} ([usage] {spec.code} = …)",
                                            sf, source))
                continue
            for value in spec.values or ():
                code = spec.plan.format(value=value)
                points = offer.prices.get(code, [])
                if code not in offer.plans or not points or any(p.hourly_micro is None for p in points):
                    problems.append(Problem(spec.universe, "missing_usage_price",
                                            f"metric {spec.code!r}, {spec.dimension} {value!r}: plan {code!r} is not on sale "
                                            f"with an hourly price in {offer.currency}", sf, source))
    return problems
