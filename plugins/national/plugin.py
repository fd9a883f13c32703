"""National e-invoice formats: the documents four storefronts' tax authorities require on top of
EN 16931 (Italy's FatturaPA, Poland's KSeF FA(3), Portugal's SAF-T and ATCUD, Spain's VERI*FACTU).

A country plugin, not a universe: it sells nothing and registers through the same entry-point
group as the universes (``national``), so a deployment that needs none of these formats blocks it
like any plugin (``UNIVERS_DISABLED_PLUGINS=national``). One module per storefront, named by its
lower-case code (``it.py``, ``pl.py``...), with a ``render(ctx) -> EInvoiceDocument`` function:
adding a country is adding a module, with no registry to edit.
"""

from __future__ import annotations

import importlib
import re

from core import hookimpl
from core.context import EInvoiceContext, EInvoiceDocument

_CODE = re.compile(r"^[A-Z]{2}$")


class NationalFormats:
    @hookimpl
    def univers_render_national_einvoice(self, ctx: EInvoiceContext) -> EInvoiceDocument | None:
        if not _CODE.match(ctx.storefront or ""):
            return None
        name = f"{__package__}.{ctx.storefront.lower()}"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the country's module is there but something it imports is not
                raise
            return None
        return module.render(ctx)


plugin = NationalFormats()
