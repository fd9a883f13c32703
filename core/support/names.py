"""What a ticket's codes say, in words the reader reads: statuses, priorities, the SLA clocks'
targets and states, categories and queues. The console shows these; the API keeps the codes."""

from __future__ import annotations

from core.i18n import N_, translate

NAMES: dict[str, dict[str, str]] = {
    "status": {
        "new": N_("New"),
        "open": N_("Open"),
        "waiting_for_customer": N_("Waiting for the customer's answer"),
        "waiting_for_third_party": N_("Waiting for a third party"),
        "solved": N_("Solved"),
        "closed": N_("Closed"),
    },
    "priority": {"low": N_("Low"), "normal": N_("Normal"), "high": N_("High"), "urgent": N_("Urgent")},
    "target": {"first_response": N_("First response"), "next_response": N_("Next response"),
               "resolution": N_("Resolution")},
    "clock": {"running": N_("Running"), "paused": N_("Paused"), "met": N_("Met"), "stopped": N_("Stopped")},
    "category": {"technical": N_("The service"), "billing": N_("An invoice"), "abuse": N_("Abuse")},
    "queue": {"support": N_("Support"), "abuse": N_("Abuse desk")},
    "decision": {"lifted": N_("Suspension lifted"), "upheld": N_("Suspension upheld")},
}


def name(group: str, code: str | None, locale: str) -> str:
    """``name("status", "waiting_for_customer", "fr")``: the code in words; an unknown code as it is."""
    text = NAMES[group].get(code or "")
    return translate(text, locale) if text else (code or "")


def level(catalog, ticket: dict, locale: str) -> str:
    """The support level a ticket is served under, by its name (the abuse desk for a case)."""
    if ticket["queue"] == "abuse":
        return name("queue", "abuse", locale)
    product = catalog.products.get(ticket["level_code"])
    return translate(product.name, locale, product.universe) if product is not None else ticket["level_code"]
