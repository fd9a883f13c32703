"""Typed objects passed to and returned from plugin hooks.

Hooks take one context object, so fields can be added later without breaking plugins
(pluggy silently ignores default arguments in hook implementations).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


@dataclass(frozen=True)
class PluginContext:
    """What a contribution hook may read: the settings and the clock."""

    settings: Any
    clock: Any


@dataclass(frozen=True)
class ServiceContext:
    """A service handed to a dispatch hook (provision, suspend, resume, terminate)."""

    service_id: int
    universe: str
    product_code: str
    plan_code: str
    product_kind: str
    account_handle: str
    subsidiary: str
    options: dict[str, Any]
    idempotency_key: str
    now: dt.datetime
    settings: Any = None


@dataclass(frozen=True)
class OrderLineContext:
    """An order line handed to ``univers_validate_order_line`` before anything is written."""

    universe: str
    product_code: str
    plan_code: str
    product_kind: str
    quantity: int
    options: dict[str, Any]
    subsidiary: str
    locale: str
    attributes: Mapping[str, Any] = field(default_factory=dict)  # the product's plugin-specific data


@dataclass(frozen=True)
class TranslationDomain:
    """A gettext domain: catalogs in ``locales_dir/<lang>/LC_MESSAGES/<domain>.po``, its
    template in ``locales_dir/<domain>.pot``, extracted from Python files and catalog data
    files under ``sources``."""

    domain: str
    locales_dir: Path
    sources: Path


@dataclass(frozen=True)
class LineProblem:
    """A reason why an order line is refused: a stable code, and a message in the reader's locale."""

    code: str
    message: str
    field: str | None = None


@dataclass(frozen=True)
class ActionResult:
    """What a dispatch hook reports back.

    ``done``: the infrastructure did it (``resource`` names what it made or touched).
    ``retry``: a transient failure; the outbox will try again with backoff, then park it.
    """

    status: Literal["done", "retry"]
    resource: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class EInvoiceContext:
    """An issued invoice or credit note to render in a storefront's national e-invoice format."""

    storefront: str
    invoice: dict[str, Any]  # the invoice as the API shows it (JSON-ready), with seller and buyer
    locale: str


@dataclass(frozen=True)
class EInvoiceDocument:
    content: bytes
    media_type: str
    filename: str


@dataclass(frozen=True)
class EventContext:
    """Passed to event hooks: the clock's time of the event and the settings."""

    now: dt.datetime
    settings: Any = None


@dataclass(frozen=True)
class StateChange:
    service_id: int
    universe: str
    before: str
    after: str
    reason: str


@dataclass
class Contributions:
    """What one plugin contributed, as listed by ``univers plugins``."""

    name: str
    version: str
    hooks: list[str] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    plans: list[str] = field(default_factory=list)
    support_tiers: list[str] = field(default_factory=list)
