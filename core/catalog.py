"""The catalog: what each universe can sell, and what each storefront sells, at what price, from when.

Both halves are data that plugins contribute, never code the country teams must change:

* the **base catalog** (``univers_register_products`` / ``univers_register_support_tiers``):
  products, plans and support tiers with their English names (the msgids of the plugin's
  gettext domain). Built-in universes keep it in ``catalog/products.toml``.
* one **overlay per storefront** (``univers_register_overlays``): which products and plans the
  storefront sells, their local prices in its currency, each from a date, and local products
  (a ``.fr`` domain sold in FR and QC). Built-in universes keep them in
  ``catalog/countries/<STOREFRONT>.toml``.

:func:`build_catalog` checks everything together and returns the catalog *and* every problem,
each naming its plugin, storefront, file and line. ``univers catalog check`` prints them;
start-up refuses to run with any (:class:`CatalogError`).

A price applies from its date until the next one of the same plan starts. A plan is on sale in a
storefront on a day when its product is enabled there, the plan is not switched off, and a price
is in force (or the plan is free).
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.money import (
    MoneyError,
    check_currency,
    rate_to_ppm,
    to_decimal,
    to_micro,
    to_minor,
)

_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?$")
_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
SUPPORT_KIND = "support"


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


# --- problems ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a contribution: a stable rule code and where to fix it."""

    plugin: str
    rule: str
    message: str
    storefront: str | None = None
    source: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.source and self.line else (self.source or "")
        scope = f"plugin {self.plugin!r}" + (f", storefront {self.storefront}" if self.storefront else "")
        return f"{where + ': ' if where else ''}{scope}: {self.message} [{self.rule}]"


class CatalogError(ValueError):
    """The catalog breaks its rules; the message lists every problem."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# --- what plugins contribute --------------------------------------------------------------------


@dataclass(frozen=True)
class PlanSpec:
    code: str
    duration: str  # ISO 8601, e.g. P1M, P12M
    name: str | None = None  # defaults to the product's name
    engagement: str | None = None  # commitment, e.g. P12M
    free: bool = False  # sold at no charge everywhere: overlays give it no price


@dataclass(frozen=True)
class ProductSpec:
    code: str
    universe: str
    kind: str
    name: str
    description: str = ""
    plans: tuple[PlanSpec, ...] = ()
    required_options: tuple[str, ...] = ()
    attributes: dict[str, Any] = field(default_factory=dict)  # plugin-specific, e.g. a domain extension
    example_options: dict[str, Any] = field(default_factory=dict)  # valid options for the required ones (conformance, docs)
    source: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class SupportTierSpec:
    code: str
    universe: str
    level: int
    name: str
    first_response_minutes: int
    duration: str = "P1M"
    free: bool = False
    description: str = ""
    source: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class PricePoint:
    """A local price from a date (major units, exact decimals)."""

    valid_from: dt.date
    price: Decimal
    setup: Decimal = Decimal(0)
    hourly: Decimal | None = None  # informational unit price of pay-as-you-go products


@dataclass(frozen=True)
class UsagePricePoint:
    """A storefront's price of a metric billed by use, from a date: tiers of (up to this
    quantity in the month, unit price), the last one open-ended (``upto`` None). A free
    allowance is a first tier at 0. Quantities are in the metric's unit, prices in the
    storefront's currency; both exact decimals (six at most)."""

    valid_from: dt.date
    tiers: tuple[tuple[Decimal | None, Decimal], ...]


@dataclass(frozen=True)
class CommitmentPoint:
    """A storefront's savings plan terms for one length (``[commitment] 12 = [{ from = DATE,
    percent_off = "15", minimum = "50.00" }]``): the discount on the usage it covers, and the
    least monthly amount, in the storefront's currency, from a date."""

    valid_from: dt.date
    percent_off: Decimal
    minimum: Decimal


@dataclass(frozen=True)
class OverlaySpec:
    """What one storefront sells of one plugin's catalog.

    ``products`` and ``plans`` switch codes on (True) or off (False); a plan of an enabled
    product is on sale unless switched off. ``prices`` are per plan, in the storefront's currency.
    ``problems`` carries what made the file unreadable, so that a check still reports the rest.
    """

    storefront: str
    currency: str | None = None
    products: dict[str, bool] = field(default_factory=dict)
    plans: dict[str, bool] = field(default_factory=dict)
    prices: dict[str, tuple[PricePoint, ...]] = field(default_factory=dict)
    local_products: tuple[ProductSpec, ...] = ()
    usage: dict[str, tuple[UsagePricePoint, ...]] = field(default_factory=dict)  # metric code -> dated prices
    commitment: dict[int, tuple[CommitmentPoint, ...]] = field(default_factory=dict)  # months -> dated savings plan terms
    source: str | None = None
    lines: dict[str, int] = field(default_factory=dict)  # "section.key" -> line, for messages
    problems: tuple[Problem, ...] = ()


# --- reading the data files -----------------------------------------------------------------------

_HEADER = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+")
_KEY = re.compile(r'^\s*("[^"]+"|[A-Za-z0-9_.-]+)\s*=')
_AT_LINE = re.compile(r"\(at line (\d+), column \d+\)")


def key_lines(text: str) -> dict[str, int]:
    """``section.key`` → line number of a TOML file (first occurrence), for error messages."""
    out: dict[str, int] = {}
    section = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        if match := _HEADER.match(raw):
            section = match.group(1).replace('"', "")
            out.setdefault(section, number)
        elif match := _KEY.match(raw):
            out.setdefault(f"{section}.{match.group(1).strip(chr(34))}" if section else match.group(1).strip('"'), number)
    return out


class FileProblem(ValueError):
    """A data file that cannot be read; names the line when it can."""

    def __init__(self, message: str, line: int | None = None, source: str | None = None):
        self.line, self.source = line, source
        super().__init__(message)


def read_toml(path: Path) -> tuple[dict, str]:
    """The parsed file and its text (for line numbers); a parse error names the line."""
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _AT_LINE.search(str(exc))
        raise FileProblem(f"cannot be parsed: {exc}", int(match.group(1)) if match else None) from None
    return data, text


def _need(table: dict, key: str, kind: type, what: str, line: int | None):
    value = table.get(key)
    if not isinstance(value, kind) or (kind is str and not value):
        raise FileProblem(f"{what}: {key!r} must be {'a non-empty string' if kind is str else kind.__name__}", line)
    return value


def _product_spec(raw: dict, universe: str, source: str, line: int | None, code: str | None = None) -> ProductSpec:
    code = code or _need(raw, "code", str, "product", line)
    what = f"product {code!r}"
    plans = []
    for plan in _need(raw, "plans", list, what, line):
        if not isinstance(plan, dict):
            raise FileProblem(f"{what}: each plan must be a table", line)
        plans.append(PlanSpec(
            code=_need(plan, "code", str, what, line), duration=_need(plan, "duration", str, what, line),
            name=plan.get("name"), engagement=plan.get("engagement"), free=bool(plan.get("free", False)),
        ))
    return ProductSpec(
        code=code, universe=universe, kind=_need(raw, "kind", str, what, line), name=_need(raw, "name", str, what, line),
        description=raw.get("description", ""), plans=tuple(plans),
        required_options=tuple(raw.get("required_options", ())), attributes=dict(raw.get("attributes", {})),
        example_options=dict(raw.get("example_options", {})), source=source, line=line,
    )


def load_products_file(path: str | Path, universe: str) -> tuple[list[ProductSpec], list[SupportTierSpec]]:
    """Read a base catalog: ``[[products]]`` (with ``plans``) and ``[[support_tiers]]``.

    Raises :class:`FileProblem` (with the line) when the file cannot be read."""
    path = Path(path)
    try:
        return _load_products(path, universe)
    except FileProblem as exc:
        exc.source = str(path)
        raise
    except OSError as exc:
        raise FileProblem(f"cannot be read: {exc.strerror}", None, str(path)) from None


def _load_products(path: Path, universe: str) -> tuple[list[ProductSpec], list[SupportTierSpec]]:
    data, text = read_toml(path)
    source = str(path)

    def headers(section: str):  # the line of each [[section]], in order
        return iter([n for n, raw in enumerate(text.splitlines(), 1) if raw.strip() == f"[[{section}]]"])

    products, tiers = [], []
    cursor = headers("products")
    for raw in data.get("products", []):
        products.append(_product_spec(raw, universe, source, next(cursor, None)))
    cursor = headers("support_tiers")
    for raw in data.get("support_tiers", []):
        line = next(cursor, None)
        code = _need(raw, "code", str, "support tier", line)
        what = f"support tier {code!r}"
        tiers.append(SupportTierSpec(
            code=code, universe=universe, level=_need(raw, "level", int, what, line), name=_need(raw, "name", str, what, line),
            first_response_minutes=_need(raw, "first_response_minutes", int, what, line),
            duration=raw.get("duration", "P1M"), free=bool(raw.get("free", False)),
            description=raw.get("description", ""), source=source, line=line,
        ))
    return products, tiers


def _dated(raw: Any, what: str, shape: str, line: int | None) -> list[dict]:
    """The entries of a dated list (``[{ from = DATE, … }]``), each a table with a date."""
    if not isinstance(raw, list) or not raw:
        raise FileProblem(f"{what} must be a list of {{ from = DATE, {shape} }}", line)
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("from"), dt.date) or isinstance(entry.get("from"), dt.datetime):
            raise FileProblem(f"{what}: 'from' must be a date such as 2026-12-01", line)
    return raw


def _price_points(plan: str, raw: Any, line: int | None) -> tuple[PricePoint, ...]:
    points = []
    for entry in _dated(raw, f"price of plan {plan!r}", 'price = "…"', line):
        if not isinstance(entry.get("price"), str):
            raise FileProblem(f"price of plan {plan!r}: 'price' must be a string such as \"9.99\" (no floats for money)", line)
        try:
            hourly = entry.get("hourly")
            points.append(PricePoint(entry["from"], to_decimal(entry["price"]), to_decimal(entry.get("setup", "0")),
                                     to_decimal(hourly) if hourly is not None else None))
        except MoneyError as exc:
            raise FileProblem(f"price of plan {plan!r}: {exc}", line) from None
    return tuple(points)


def _usage_points(metric: str, raw: Any, line: int | None) -> tuple[UsagePricePoint, ...]:
    """``[usage] metric = [{ from = DATE, unit = "0.01", free = "1024" }]`` or, with tiers,
    ``[{ from = DATE, tiers = [{ upto = "1024", unit = "0" }, { unit = "0.01" }] }]``."""
    what = f"usage price of metric {metric!r}"
    points = []
    for entry in _dated(raw, what, 'unit = "…"', line):
        unknown = set(entry) - {"from", "unit", "free", "tiers"}
        if unknown or ("tiers" in entry) == ("unit" in entry) or ("tiers" in entry and "free" in entry):
            raise FileProblem(f"{what}: give either 'unit' (and optionally 'free') or 'tiers'", line)
        raw_tiers = entry.get("tiers")
        if raw_tiers is None:
            raw_tiers = ([{"upto": entry["free"], "unit": "0"}] if "free" in entry else []) + [{"unit": entry["unit"]}]
        if not isinstance(raw_tiers, list) or not raw_tiers or not all(isinstance(t, dict) for t in raw_tiers):
            raise FileProblem(f"{what}: 'tiers' must be a list of {{ upto = \"…\", unit = \"…\" }}", line)
        tiers = []
        try:
            for n, tier in enumerate(raw_tiers):
                last = n == len(raw_tiers) - 1
                if not isinstance(tier.get("unit"), str) or (not last and not isinstance(tier.get("upto"), str)) \
                        or (last and "upto" in tier):
                    raise FileProblem(f"{what}: each tier has 'upto' and 'unit' as strings, the last one only 'unit'", line)
                upto = to_decimal(tier["upto"]) if not last else None
                unit = to_decimal(tier["unit"])
                to_micro(unit)
                if upto is not None:
                    to_micro(upto)
                if unit < 0 or (upto is not None and (upto <= 0 or (tiers and upto <= tiers[-1][0]))):
                    raise FileProblem(f"{what}: prices are not negative and tiers rise", line)
                tiers.append((upto, unit))
        except MoneyError as exc:
            raise FileProblem(f"{what}: {exc}", line) from None
        points.append(UsagePricePoint(entry["from"], tuple(tiers)))
    return tuple(points)


def _commitment_points(months: str, raw: Any, line: int | None) -> tuple[int, tuple[CommitmentPoint, ...]]:
    what = f"savings plan of {months} months"
    if not months.isdigit() or not 1 <= int(months) <= 60:
        raise FileProblem(f"[commitment] keys are lengths in months (1 to 60), not {months!r}", line)
    points = []
    for entry in _dated(raw, what, 'percent_off = "…", minimum = "…"', line):
        if set(entry) != {"from", "percent_off", "minimum"} or not all(isinstance(entry[k], str) for k in ("percent_off", "minimum")):
            raise FileProblem(f"{what}: give 'from', and 'percent_off' and 'minimum' as strings", line)
        try:
            percent, minimum = to_decimal(entry["percent_off"]), to_decimal(entry["minimum"])
            rate_to_ppm(percent)
        except MoneyError as exc:
            raise FileProblem(f"{what}: {exc}", line) from None
        if not 0 < percent < 100 or minimum <= 0:
            raise FileProblem(f"{what}: 'percent_off' is between 0 and 100, 'minimum' is positive", line)
        points.append(CommitmentPoint(entry["from"], percent, minimum))
    return int(months), tuple(points)


def load_overlay_file(path: str | Path, universe: str) -> OverlaySpec:
    """Read ``countries/<STOREFRONT>.toml``. A file that cannot be read becomes an overlay that
    carries the problem (file and line), so that every other file is still checked."""
    path = Path(path)
    source = str(path)
    storefront = path.stem
    lines: dict[str, int] = {}
    try:
        data, text = read_toml(path)
        lines = key_lines(text)
        storefront = data.get("storefront", storefront)
        if not isinstance(storefront, str):
            raise FileProblem("'storefront' must be a string", lines.get("storefront"))
        products = data.get("products", {})
        plans = data.get("plans", {})
        for section, table in (("products", products), ("plans", plans)):
            if not isinstance(table, dict) or not all(isinstance(v, bool) for v in table.values()):
                raise FileProblem(f"[{section}] must map codes to true or false", lines.get(section))
        prices = data.get("prices", {})
        if not isinstance(prices, dict):
            raise FileProblem("[prices] must map plan codes to lists of prices", lines.get("prices"))
        usage = data.get("usage", {})
        if not isinstance(usage, dict):
            raise FileProblem("[usage] must map metric codes to lists of prices", lines.get("usage"))
        commitment = data.get("commitment", {})
        if not isinstance(commitment, dict):
            raise FileProblem("[commitment] must map lengths in months to lists of terms", lines.get("commitment"))
        local = data.get("local_products", {})
        if not isinstance(local, dict):
            raise FileProblem("[local_products.<code>] must be tables", lines.get("local_products"))
        return OverlaySpec(
            storefront=storefront, currency=data.get("currency"), products=dict(products), plans=dict(plans),
            prices={plan: _price_points(plan, raw, lines.get(f"prices.{plan}")) for plan, raw in prices.items()},
            local_products=tuple(
                _product_spec(raw, universe, source, lines.get(f"local_products.{code}"), code) for code, raw in local.items()
            ),
            usage={metric: _usage_points(metric, raw, lines.get(f"usage.{metric}")) for metric, raw in usage.items()},
            commitment=dict(_commitment_points(months, raw, lines.get(f"commitment.{months}")) for months, raw in commitment.items()),
            source=source, lines=lines,
        )
    except FileProblem as exc:
        return OverlaySpec(storefront=storefront, source=source,
                           problems=(Problem(universe, "unreadable_overlay", str(exc), storefront, source, exc.line),))


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


@dataclass(frozen=True)
class UsagePrice:
    """A metric's price in a storefront (core/rating.py): tiers of (up to, unit price), both in
    micro-units (the last ``upto`` is None), from ``valid_from`` to ``valid_to`` (exclusive)."""

    tiers: tuple[tuple[int | None, int], ...]
    valid_from: dt.date
    valid_to: dt.date | None = None


@dataclass(frozen=True)
class CommitmentTerm:
    """Savings plan terms in a storefront (core/commitments.py), from ``valid_from`` to
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
        if not _CODE.match(code):
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
        try:
            months = duration_months(tier.duration)
        except ValueError as exc:
            self.problem(plugin, "bad_duration", f"{what}: {exc}", *where)
            return
        plan = Plan(tier.code, tier.code, tier.universe, SUPPORT_KIND, tier.name, tier.duration, months, 0, tier.free)
        self.catalog.products[tier.code] = Product(
            tier.code, tier.universe, SUPPORT_KIND, tier.name, tier.description, (), (plan,),
            support_level=tier.level, first_response_minutes=tier.first_response_minutes,
        )

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
