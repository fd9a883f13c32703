"""The Telecom universe: VoIP lines and fibre internet access, sold in France only.

A product unit's package, installed next to Univers like any other (its entry point in
``pyproject.toml``); Univers' ``core/`` knows nothing about it. Its catalog is data
(``catalog/``), its translations are in ``locales/``.

- A **VoIP line** is a monthly subscription, and its calls are billed in arrears by the minute:
  the telephony platform sends the call minutes as usage records (``POST /v1/usage``, metrics
  ``voip_minutes_national`` and ``voip_minutes_international``), priced by the ``[usage]``
  table of the storefront (national calls have a free allowance), invoiced on the 1st.
- **Fibre internet access** is monthly with a 12-month engagement.
"""

from __future__ import annotations

from core.context import DunningPolicy, MetricSpec, ServiceContext
from core.i18n import N_
from core.universe import Universe


class TelecomUniverse(Universe):
    name = "telecom"
    technical_actions = {"voip-line": ("reset_sip_password",), "internet-access": ("reboot_box",)}
    metrics = (
        MetricSpec("voip_minutes_national", "", "minute", N_("Calls to France"), service_kind="voip-line"),
        MetricSpec("voip_minutes_international", "", "minute", N_("International calls"), service_kind="voip-line"),
    )
    # a phone line is cut late: emergency calls depend on it
    dunning = DunningPolicy(reminders=(7, 1), retries=(1, 3, 7), warn_before=3, suspend_after=15, terminate_after=30,
                            delete_after=30)

    def resource_name(self, ctx: ServiceContext) -> str:
        """The SIP account of a line (``sip-0100000042``), the fibre box's name otherwise."""
        if ctx.product_kind == "voip-line":
            return f"sip-{ctx.service_id:010d}"
        return f"ftth-{ctx.service_id}"


universe = TelecomUniverse()
