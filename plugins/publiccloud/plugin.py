"""The publiccloud universe: Public Cloud projects and pay-as-you-go instances.

Its catalog is data: ``catalog/products.toml`` (English names, the msgids of the ``publiccloud`` gettext
domain) and one overlay per storefront in ``catalog/countries/``. An instance plan carries its monthly cap as
the price and its hourly unit price as ``hourly``.
"""

from __future__ import annotations

import uuid

from core.context import ServiceContext
from core.universe import Universe

# Fixed namespace, so that a service always gets the same identifier.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "publiccloud.univers.net")


class PublicCloudUniverse(Universe):
    name = "publiccloud"
    delay_factor = 1.0
    technical_actions = {"instance": ("reboot", "rebuild")}

    def resource_name(self, ctx: ServiceContext) -> str:
        """A project id (32 hex digits) or an instance id (a UUID), stable for a service."""
        ident = uuid.uuid5(_NAMESPACE, f"{ctx.product_kind}/{ctx.service_id}")
        return ident.hex if ctx.product_kind == "project" else str(ident)


universe = PublicCloudUniverse()
