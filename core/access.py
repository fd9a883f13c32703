"""Who may do what: one permission table, checked in the domain layer.

A caller's roles on a service come from the service's row: its **admin**, **tech** and
**billing** contacts (by default all three are the account that ordered it; an account may hold
several roles, and gets the union of their rights). Staff act through their back-office role.
A partner is not a role of its own: it is its clients' admin or tech contact.

Rules that hold everywhere:

* an object the caller has no role on answers 404, as if it did not exist, so ids cannot be
  probed; a role that does not allow the action answers 403 and says which role it is;
* lists only return what the caller may see;
* system jobs (renewal, dunning, the gateway) act with every right.

The README carries a copy of the table (:func:`markdown_table`); a test checks that the two agree,
and another tries every cell of it through the API.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from core.errors import Forbidden, InvalidInput, NotFound
from core.i18n import N_

SERVICE_ROLES = ("admin", "tech", "billing")
STAFF_ROLES = ("billing_operator", "support_agent", "abuse_desk", "administrator")
ROLES = SERVICE_ROLES + STAFF_ROLES
SYSTEM = "system"

_ALL_STAFF = frozenset(STAFF_ROLES)


def _roles(*names: str) -> frozenset[str]:
    return frozenset(names)


# action -> (what it is, the roles allowed). One row per action; the README shows this table.
PERMISSIONS: dict[str, tuple[str, frozenset[str]]] = {
    # on a service, for its contacts and for staff
    "service.read": ("See the service, its state, price and contacts",
                     _roles("admin", "tech", "billing") | _ALL_STAFF),
    "service.events": ("Read the service's audit log", _roles("admin", "tech", "billing") | _ALL_STAFF),
    "service.renewal_mode": ("Choose automatic or manual renewal",
                             _roles("admin", "billing", "billing_operator", "administrator")),
    "service.stop": ("Stop at expiry, or undo the stop", _roles("admin", "administrator")),
    "service.terminate": ("Terminate now", _roles("admin", "administrator")),
    "service.technical": ("Technical actions through the plugin (reboot, reinstall...)",
                          _roles("admin", "tech", "support_agent", "administrator")),
    "service.logs": ("Read the service's infrastructure logs, and follow them live",
                     _roles("admin", "tech") | _ALL_STAFF),
    "service.logs.send": ("Send the service's infrastructure log entries (the infrastructure, with a staff key)",
                          _roles("support_agent", "administrator")),
    "service.contacts": ("Ask for a change of its admin, tech or billing contact", _roles("admin")),
    "service.invoices": ("See the service's invoices and pay them", _roles("billing") | _ALL_STAFF - {"abuse_desk"}),
    "service.commit": ("Commit to a monthly amount for a discount on usage (savings plan)",
                       _roles("admin", "billing", "billing_operator", "administrator")),
    "service.abuse": ("Suspend for abuse, with a reason the customer sees, and lift it",
                      _roles("abuse_desk", "administrator")),
    "service.restore": ("Restore a terminated service before its data is deleted",
                        _roles("support_agent", "administrator")),
    # support tickets on a service, for its contacts and for staff
    "ticket.open": ("Open a support ticket on the service (the billing contact: about invoices)",
                    _roles("admin", "tech", "billing", "support_agent", "administrator")),
    "ticket.read": ("Read its tickets (the billing contact: those about invoices; internal notes: staff only)",
                    _roles("admin", "tech", "billing") | _ALL_STAFF),
    "ticket.reply": ("Write in a ticket as the customer", _roles("admin", "tech", "billing")),
    "ticket.answer": ("Answer a ticket, set its status and priority, add internal notes",
                      _roles("support_agent", "administrator")),
    "abuse.decide": ("Answer an abuse case and close it with a decision the customer sees",
                     _roles("abuse_desk", "administrator")),
    # the back office
    "staff.customers": ("Read customers, their orders, invoices and audit log, export their data",
                        _ALL_STAFF),
    "staff.billing": ("Credit notes, VAT confirmations, renewal runs, gateway callbacks",
                      _roles("billing_operator", "administrator")),
    "staff.reports": ("Revenue, forecast and accounting exports", _roles("billing_operator", "administrator")),
    "staff.support": ("Support reports: response times, breaches and service credits per level",
                      _roles("support_agent", "abuse_desk", "administrator")),
    "staff.status": ("Publish incidents and known bugs on the work board, post their updates, resolve them",
                     _roles("support_agent", "administrator")),
    "staff.catalog": ("Check the catalog files", _roles("administrator")),
    "staff.accounts": ("Create staff accounts and keys, close customer accounts", _roles("administrator")),
    "staff.metrics": ("Read the operational metrics (Prometheus, `/metrics`)", _roles("administrator")),
}

# API key scopes: a key may be narrowed to some of them ("*" is all). Each route names the one
# it needs (core/api/app.py), the same for customers and staff.
SCOPES = ("services:read", "services:write", "billing:read", "billing:write", "account:read", "account:write")
# scopes that only mean something on a staff key: a Prometheus server scrapes /metrics with an
# administrator's key narrowed to ``metrics:read``, which opens nothing else
STAFF_SCOPES = ("metrics:read",)


def roles_on_service(row: Mapping, account_id: int | None) -> frozenset[str]:
    """The caller's contact roles on one service row (empty: it may not even see it)."""
    if account_id is None:
        return frozenset()
    return frozenset(role for role in SERVICE_ROLES if row[f"{role}_account_id"] == account_id)


def allowed(roles: Iterable[str], action: str) -> bool:
    roles = frozenset(roles)
    return SYSTEM in roles or bool(roles & PERMISSIONS[action][1])


def check(roles: Iterable[str], action: str, *, what: str = "service") -> None:
    """404 without any role (the object stays invisible), 403 with roles that do not allow it."""
    roles = frozenset(roles)
    if not roles:
        raise NotFound(what=what)
    if not allowed(roles, action):
        raise Forbidden(N_("Your role on this {what} ({roles}) does not allow this."), code="role_forbids",
                        what=what, roles=", ".join(sorted(roles)))


def parse_scopes(scopes: Iterable[str] | str | None) -> str:
    """Validate requested key scopes; returns them as stored (space-separated, or ``*``)."""
    if scopes is None or scopes == "*":
        return "*"
    items = sorted(set(scopes.split() if isinstance(scopes, str) else scopes))
    unknown = [s for s in items if s not in SCOPES + STAFF_SCOPES and s != "*"]
    if unknown or not items:
        raise InvalidInput(N_("Unknown scope {scope}; expected some of: {scopes}."), code="invalid_scope",
                           scope=", ".join(unknown) or "-", scopes=", ".join(SCOPES + STAFF_SCOPES))
    return "*" if "*" in items else " ".join(items)


def key_allows(stored: str, needed: str | None) -> bool:
    """Does a key with scopes ``stored`` allow a route needing ``needed``? A write scope
    includes reading the same area."""
    if needed is None or stored == "*":
        return True
    have = set(stored.split())
    area = needed.split(":")[0]
    return needed in have or (needed.endswith(":read") and f"{area}:write" in have)


def markdown_table() -> str:
    """The permission table as Markdown (the README's copy comes from here)."""
    head = "| action | " + " | ".join(r.replace("_", " ") for r in ROLES) + " |"
    rule = "|---|" + "---|" * len(ROLES)
    rows = [f"| {text} (`{action}`) | " + " | ".join("✓" if r in roles else "" for r in ROLES) + " |"
            for action, (text, roles) in PERMISSIONS.items()]
    return "\n".join([head, rule, *rows])
