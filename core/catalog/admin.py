"""The country teams' edits to catalog overlays, written as data files for a pull request.

``univers catalog enable | disable | price`` call these functions. They edit
``<plugin>/catalog/countries/<STOREFRONT>.toml`` with tomlkit, which keeps comments, order
and layout, so that the diff a reviewer reads is the change and nothing else. Each edit checks
what it can before writing (the code exists, the storefront exists, the amount is exact in
the currency, a new price starts in the future); ``univers catalog check`` checks the rest.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import tomlkit

from core.catalog import Catalog
from core.money import MoneyError, to_decimal, to_micro, to_minor


class EditError(ValueError):
    """An edit that would break the catalog; nothing was written."""


def overlay_path(pm, catalog: Catalog, code: str, storefront: str, storefronts: dict) -> tuple[str, Path]:
    """The plugin that owns ``code`` and the overlay file of ``storefront`` in it."""
    if storefront not in storefronts:
        raise EditError(f"there is no storefront {storefront!r} (known: {', '.join(sorted(storefronts))})")
    plugin = catalog.owner.get(code)
    if plugin is None:
        raise EditError(f"no plugin contributes a product or plan {code!r}")
    source = catalog.offers.get(storefront).sources.get(plugin) if storefront in catalog.offers else None
    if source:
        return plugin, Path(source)
    home = getattr(pm.get_plugin(plugin), "catalog_dir", None)
    if home is None:
        raise EditError(f"plugin {plugin!r} does not keep its catalog in data files")
    return plugin, Path(home) / "countries" / f"{storefront}.toml"


def _load(path: Path, storefront: str, currency: str) -> tomlkit.TOMLDocument:
    if path.exists():
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    doc = tomlkit.document()
    doc.add(tomlkit.comment(f"What the {storefront} storefront sells of this universe, and at what price, in {currency}"))
    doc.add(tomlkit.comment("excluding tax. A price applies from its date; add a line to change it, never edit the past."))
    doc.add("storefront", storefront)
    doc.add("currency", currency)
    return doc


def _save(path: Path, doc: tomlkit.TOMLDocument) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")


def set_enabled(pm, catalog: Catalog, storefronts: dict, storefront: str, code: str, enabled: bool) -> Path:
    """Switch a product (or one plan of it) on or off in a storefront."""
    plugin, path = overlay_path(pm, catalog, code, storefront, storefronts)
    section = "products" if code in catalog.products else "plans"
    doc = _load(path, storefront, storefronts[storefront].currency)
    if section not in doc:
        doc.add(section, tomlkit.table())
    doc[section][code] = enabled
    _save(path, doc)
    return path


def add_price(pm, catalog: Catalog, storefronts: dict, storefront: str, plan_code: str, valid_from: dt.date,
              amount: str, today: dt.date, setup: str | None = None, hourly: str | None = None) -> Path:
    """Schedule a price for a plan in a storefront, from a date after today."""
    plan = catalog.plans.get(plan_code)
    if plan is None:
        raise EditError(f"{plan_code!r} is not a plan" + (" (it is a product: give one of its plans)" if plan_code in catalog.products else ""))
    if plan.free:
        raise EditError(f"plan {plan_code!r} is free everywhere and takes no price")
    if valid_from <= today:
        raise EditError(f"a new price must start after today ({today}); the past is never rewritten")
    currency = storefronts[storefront].currency if storefront in storefronts else "EUR"
    try:
        if to_decimal(amount) <= 0:
            raise MoneyError("a price must be positive")
        to_minor(amount, currency)
        if setup is not None and to_minor(setup, currency) < 0:
            raise MoneyError("a setup fee cannot be negative")
        if hourly is not None:
            to_micro(hourly)
    except MoneyError as exc:
        raise EditError(f"{exc} (prices are in {currency})") from None
    plugin, path = overlay_path(pm, catalog, plan_code, storefront, storefronts)
    doc = _load(path, storefront, currency)
    if "prices" not in doc:
        doc.add("prices", tomlkit.table())
    points = doc["prices"].get(plan_code)
    if points is None:
        points = tomlkit.array()
        doc["prices"][plan_code] = points
    if any(p.get("from") == valid_from for p in points):
        raise EditError(f"plan {plan_code!r} already has a price from {valid_from}")
    entry = tomlkit.inline_table()
    entry.update({"from": valid_from, "price": str(Decimal(amount))})
    if setup is not None:
        entry["setup"] = str(Decimal(setup))
    if hourly is not None:
        entry["hourly"] = str(Decimal(hourly))
    points.append(entry)
    _save(path, doc)
    return path
