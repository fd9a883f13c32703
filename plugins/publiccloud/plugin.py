"""The publiccloud universe: Public Cloud projects and pay-as-you-go instances.

Its catalog is data: ``catalog/products.toml`` (English names, the msgids of the ``publiccloud`` gettext
domain) and one overlay per storefront in ``catalog/countries/``. An instance plan carries its monthly cap as
the price and its hourly unit price as ``hourly``.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from core.context import MetricSpec, ServiceContext
from core.i18n import N_
from core.universe import Universe

# Fixed namespace, so that a service always gets the same identifier.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "publiccloud.univers.net")


class PublicCloudUniverse(Universe):
    name = "publiccloud"
    delay_factor = 1.0
    technical_actions = {"instance": ("reboot", "rebuild")}
    # its infrastructure logs are kept the core's default 30 days (it contributes no dunning ladder)
    log_events = {
        "ddos.mitigated": ("warning", "ddos", "Attack on {ip} mitigated: {peak_mbps} Mbit/s of {vector} filtered"),
        "ddos.ended": ("info", "ddos", "Attack on {ip} over; mitigation lifted"),
    }
    # What a project is billed by use; the usage records of its projects name one of these.
    metrics = (
        MetricSpec("instance_hours", "", "hour", N_("Instance hours"), dimension="flavour",  # values: the instance flavours
                   plan="pci-{value}-p1m"),  # priced by the flavour's plan: its hourly price, capped at its monthly price
        MetricSpec("block_storage_gb_hours", "", "GB-hour", N_("Block storage")),
        MetricSpec("object_storage_gb_months", "", "GB-month", N_("Object storage")),
        MetricSpec("egress_gb", "", "GB", N_("Outgoing traffic")),
    )

    def metric_specs(self) -> list[MetricSpec]:
        """The instance flavours are the catalog's instance products (``pci-b3-8`` runs flavour ``b3-8``)."""
        flavours = tuple(p.code.removeprefix("pci-") for p in self.catalog()[0] if p.kind == "instance")
        return [replace(m, values=flavours) if m.dimension == "flavour" else m for m in super().metric_specs()]

    def resource_name(self, ctx: ServiceContext) -> str:
        """A project id (32 hex digits) or an instance id (a UUID), stable for a service."""
        ident = uuid.uuid5(_NAMESPACE, f"{ctx.product_kind}/{ctx.service_id}")
        return ident.hex if ctx.product_kind == "project" else str(ident)


universe = PublicCloudUniverse()
