"""The baremetal universe: dedicated servers (Kimsufi, Rise, Advance, Scale, High Grade).

Its catalog is data: ``catalog/products.toml`` (English names, the msgids of the ``baremetal`` gettext
domain) and one overlay per storefront in ``catalog/countries/``. Delivering a server takes longest of all the
universes, hence the large delay factor of the simulator.
"""

from __future__ import annotations

from core.context import DunningPolicy, ServiceContext
from core.universe import Universe

# 7919 is prime and coprime with 90_000, so 90_000 consecutive service ids get distinct host numbers.
_HOST_SPACE = 90_000
_HOST_STEP = 7919


class BaremetalUniverse(Universe):
    name = "baremetal"
    delay_factor = 4.0
    # an idle server is expensive to keep: a shorter ladder
    technical_actions = {"server": ("reboot", "reinstall", "rescue")}
    # its infrastructure logs are kept 90 days
    dunning = DunningPolicy(suspend_after=6, terminate_after=10, delete_after=20, logs_kept=90)
    # what the datacentre reports beyond the lifecycle (core/universe.py LOG_EVENTS)
    log_events = {
        "disk.failed": ("error", "hardware", "Disk {slot} of {resource} failed: {reason}"),
        "disk.replaced": ("notice", "intervention", "Disk {slot} of {resource} replaced by a technician; the RAID array is rebuilding"),
        "link.down": ("error", "network", "Network link {port} of {resource} down"),
    }

    def resource_name(self, ctx: ServiceContext) -> str:
        """The server's reverse DNS name, e.g. ``ns31337.ip-51-91-42.eu``."""
        sid = ctx.service_id
        host = 10_000 + (sid * _HOST_STEP) % _HOST_SPACE
        block = (sid * 37) % 254 + 1
        return f"ns{host:05d}.ip-51-91-{block}.eu"


universe = BaremetalUniverse()
