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

from core.catalog.build import (
    Catalog,
    CommitmentTerm,
    Offer,
    Plan,
    Price,
    Product,
    SupportTerms,
    UsagePrice,
    build_catalog,
    price_on,
)
from core.catalog.files import FileProblem, load_overlay_file, load_products_file
from core.catalog.specs import (
    SUPPORT_HOURS,
    SUPPORT_KIND,
    SUPPORT_PRIORITIES,
    CatalogError,
    CommitmentPoint,
    OverlaySpec,
    PlanSpec,
    PricePoint,
    Problem,
    ProductSpec,
    SlaTarget,
    SupportTierSpec,
    UsagePricePoint,
    duration_months,
)

__all__ = ["SUPPORT_HOURS", "SUPPORT_KIND", "SUPPORT_PRIORITIES", "Catalog", "CatalogError", "CommitmentPoint", "CommitmentTerm", "FileProblem", "Offer",
           "OverlaySpec", "Plan", "PlanSpec", "Price", "PricePoint", "Problem", "Product", "ProductSpec",
           "SlaTarget", "SupportTerms", "SupportTierSpec", "UsagePrice", "UsagePricePoint", "build_catalog", "duration_months",
           "load_overlay_file", "load_products_file", "price_on"]
