"""What plugins contribute to the catalog (products, plans, support tiers, overlays), and the
problems found in it."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?$")
CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
SUPPORT_KIND = "support"
SUPPORT_HOURS = ("business", "calendar")  # a level's clocks count its storefront's business hours, or every hour
SUPPORT_PRIORITIES = ("low", "normal", "high", "urgent")


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
class SlaTarget:
    """What a support level promises for one priority, in minutes of its hours (0: no promise)."""

    priority: str
    first_response: int
    next_response: int = 0
    resolution: int = 0


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
    hours: str = "business"
    targets: tuple[SlaTarget, ...] = ()
    credit_percent: int = 0
    partners_only: bool = False  # Fast-Path: sold only to members of the universe's partner programme


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
