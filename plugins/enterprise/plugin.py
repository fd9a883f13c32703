"""The enterprise universe: Hosted Private Cloud packs (VMware), sold with a commitment.

Its catalog is data: ``catalog/products.toml`` (English names, the msgids of the ``enterprise`` gettext
domain) and one overlay per storefront in ``catalog/countries/``. Delivering a private cloud is the slowest
action of all, hence the largest delay factor of the simulator.
"""

from __future__ import annotations

from core.context import DunningPolicy, ServiceContext
from core.universe import Universe


class EnterpriseUniverse(Universe):
    name = "enterprise"
    delay_factor = 6.0
    # a hosted private cloud gets a long grace
    technical_actions = {"private-cloud": ("reboot_host", "snapshot")}
    dunning = DunningPolicy(reminders=(30, 14, 7, 1), retries=(1, 3, 5, 10, 20), warn_before=5, suspend_after=30,
                             terminate_after=30, delete_after=90, logs_kept=365)  # its logs kept a year
    log_events = {
        "host.replaced": ("notice", "intervention", "Host {host} of {resource} replaced; its virtual machines moved live"),
    }

    def resource_name(self, ctx: ServiceContext) -> str:
        """The private cloud's name, after its first public address, e.g. ``pcc-51-210-3-117``."""
        sid = ctx.service_id
        return f"pcc-51-210-{(sid // 254) % 256}-{sid % 254 + 1}"


universe = EnterpriseUniverse()
