"""What an incident may name: a universe of the catalog, its own products, open storefronts."""

from __future__ import annotations

from collections.abc import Iterable

from core.customers.partners import universes
from core.errors import InvalidInput
from core.i18n import N_
from core.runtime import Runtime


def check_scope(rt: Runtime, universe: str, products: Iterable[str], storefronts: Iterable[str]) -> tuple[list, list]:
    """The universe must exist, the products be its own, the storefronts open ones."""
    known = universes(rt)
    if universe not in known:
        raise InvalidInput(N_("Unknown universe {universe}; expected one of: {universes}."), code="unknown_universe",
                           universe=universe, universes=", ".join(known))
    products, storefronts = sorted(set(products)), sorted({s.upper() for s in storefronts})
    for code in products:
        product = rt.catalog.products.get(code)
        if product is None or product.universe != universe:
            raise InvalidInput(N_("Unknown product {product} in universe {universe}."), code="unknown_product",
                               product=code, universe=universe)
    for code in storefronts:
        if code not in rt.storefronts:
            raise InvalidInput(N_("Unknown or closed storefront {storefront}."), code="unknown_storefront", storefront=code)
    return products, storefronts
