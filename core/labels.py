"""Words printed on customer documents, marked for translation in the core domain.

Country data (``core/data/subsidiaries.json``) names its taxes in English; those names are
msgids here, so that a French invoice says TVA and a Québec one says TPS and TVQ.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from babel.dates import format_date, format_interval
from babel.numbers import format_percent

from core.i18n import DEFAULT_LOCALE, N_, normalise, translate

DOCUMENT_TITLES = {
    "order": N_("Invoice"),
    "renewal": N_("Renewal invoice"),
    "usage": N_("Invoice for usage"),
    "credit_note": N_("Credit note"),
}
TAX_NAMES = {
    "VAT": N_("VAT"),
    "GST": N_("GST"),
    "HST": N_("HST"),
    "QST": N_("QST"),
    "Sales tax": N_("Sales tax"),
}
STATUSES = {
    "draft": N_("Draft"),
    "issued": N_("Awaiting payment"),
    "paid": N_("Paid"),
    "credited": N_("Cancelled by a credit note"),
}
CREDIT_NOTE_STATUS = N_("Settled")
# the roles of the permission table (core/access.py): a service's contacts and the staff's desks
ROLES = {
    "admin": N_("Administrative contact"),
    "tech": N_("Technical contact"),
    "billing": N_("Billing contact"),
    "billing_operator": N_("Billing operator"),
    "support_agent": N_("Support agent"),
    "abuse_desk": N_("Abuse desk"),
    "administrator": N_("Administrator"),
    "system": N_("System"),
}

# what a service's history says happened (its audit events' actions, core/audit.py), in words
AUDIT_ACTIONS = {
    "service.created": N_("Ordered"),
    "service.delivered": N_("Delivered"),
    "service.renewal_invoiced": N_("Renewal invoiced"),
    "service.renewal_mode_changed": N_("Renewal mode changed"),
    "service.stop_scheduled": N_("Stop at expiry scheduled"),
    "service.stop_cancelled": N_("Stop at expiry cancelled"),
    "service.suspended": N_("Suspended for non-payment"),
    "service.reactivated": N_("Reactivated"),
    "service.terminated": N_("Terminated"),
    "service.terminated_on_request": N_("Terminated on request"),
    "service.ended": N_("Ended at expiry"),
    "service.withdrawn": N_("Withdrawn from the order"),
    "service.deleted": N_("Deleted with its data"),
    "service.restored": N_("Restored"),
    "service.technical_action": N_("Technical action requested"),
    "service.abuse_suspended": N_("Suspended for abuse"),
    "service.abuse_lifted": N_("Abuse suspension lifted"),
    "service.terms_due": N_("New terms to accept"),
    "service.terms_deadline": N_("Deadline for the new terms passed"),
    "service.terms_accepted": N_("New terms accepted"),
    "service.switch_invited": N_("Invited to move to a current plan"),
    "service.spending_alert": N_("Spending alert set"),
    "service.spending_alert_reached": N_("Spending alert reached"),
    "service.commitment": N_("Savings plan taken"),
    "service.legacy_imported": N_("Imported from the previous system"),
    "contact_change.requested": N_("Contact change requested"),
    "contact_change.accepted": N_("Contact change accepted"),
    "contact_change.applied": N_("Contact change applied"),
    "contact_change.expired": N_("Contact change expired"),
    "usage.period_closed": N_("Usage month closed"),
    "outbox.parked": N_("Infrastructure action stopped after its retries"),
    "infrastructure.provision": N_("Delivered by the infrastructure"),
    "infrastructure.suspend": N_("Suspended by the infrastructure"),
    "infrastructure.resume": N_("Resumed by the infrastructure"),
    "infrastructure.terminate": N_("Stopped by the infrastructure"),
    "infrastructure.restore": N_("Restored by the infrastructure"),
    "infrastructure.delete": N_("Deleted by the infrastructure"),
    "infrastructure.technical": N_("Technical action done"),
    "account.created": N_("Account created"),
    "account.imported": N_("Account imported"),
    "account.closed": N_("Account closed"),
    "account.signed_in": N_("Signed in to the Manager"),
    "account.signed_out": N_("Signed out of the Manager"),
    "account.payment_method_changed": N_("Payment method changed"),
    "account.vat_confirmed": N_("VAT number confirmed"),
    "account.einvoice_changed": N_("E-invoice details changed"),
    "status.subscribed": N_("Work board followed"),
    "status.unsubscribed": N_("Work board no longer followed"),
    "order.created": N_("Order placed"),
    "order.paid": N_("Order paid"),
    "order.withdrawal_waived": N_("Right of withdrawal waived"),
    "order.withdrawn": N_("Order withdrawn"),
    "invoice.issued": N_("Invoice issued"),
    "invoice.paid": N_("Invoice paid"),
    "invoice.credited": N_("Invoice credited"),
    "credit_note.issued": N_("Credit note issued"),
    "contract.accepted": N_("Terms accepted"),
    "api_key.created": N_("API key created"),
    "api_key.revoked": N_("API key revoked"),
    "partner.joined": N_("Joined the partner programme"),
    "notification.parked": N_("E-mail not sent after its retries"),
    "ticket.opened": N_("Ticket opened"),
    "ticket.replied": N_("Customer replied"),
    "ticket.answered": N_("Support answered"),
    "ticket.noted": N_("Internal note added"),
    "ticket.escalated": N_("Ticket escalated"),
    "ticket.breached": N_("Support target missed"),
    "abuse.case_opened": N_("Abuse case opened"),
    "abuse.decided": N_("Abuse case decided"),
    "status.opened": N_("Incident published"),
    "status.updated": N_("Incident updated"),
    "status.resolved": N_("Incident resolved"),
}

# what a national e-invoice needs of the buyer (the storefront's ``einvoice_fields``), in words
EINVOICE_FIELDS = {
    "codice_destinatario": N_("Recipient code (codice destinatario)"),
    "pec": N_("Certified e-mail (PEC)"),
    "codice_fiscale": N_("Tax code (codice fiscale)"),
    "address": N_("Address"),
    "postcode": N_("Postcode"),
    "city": N_("City"),
    "province": N_("Province"),
}


def einvoice_field(name: str, locale: str) -> str:
    return translate(EINVOICE_FIELDS[name], locale) if name in EINVOICE_FIELDS else name


def audit_action(code: str, locale: str) -> str:
    """An audit event's action in words; an action without words (a plugin's own) stays its code."""
    return translate(AUDIT_ACTIONS[code], locale) if code in AUDIT_ACTIONS else code


def title(kind: str, locale: str) -> str:
    return translate(DOCUMENT_TITLES.get(kind, DOCUMENT_TITLES["order"]), locale)


def status(value: str, locale: str, kind: str = "order") -> str:
    if kind == "credit_note" and value == "paid":
        return translate(CREDIT_NOTE_STATUS, locale)
    return translate(STATUSES[value], locale) if value in STATUSES else value


def roles(value: str | None, locale: str) -> str:
    """Roles as the audit log and a ticket's thread keep them (``admin+billing``, ``support_agent``,
    ``incoming:tech``), in words: ``Administrative contact, Billing contact``."""
    names = []
    for part in (value or "").split("+"):
        code = part.rsplit(":", 1)[-1]
        if code:
            names.append(translate(ROLES[code], locale) if code in ROLES else code)
    return ", ".join(names)


def percent(rate_percent: str, locale: str) -> str:
    """``20%`` in English, ``20 %`` in French, ``9,975 %`` in Québec: the locale's own pattern."""
    return format_percent(Decimal(rate_percent) / 100, locale=normalise(locale) or DEFAULT_LOCALE, decimal_quantization=False)


def tax_label(name: str, rate_percent: str, locale: str) -> str:
    return f"{translate(TAX_NAMES.get(name, name), locale)} {percent(rate_percent, locale)}"


def period(start, end, locale: str) -> str:
    """A billing period as the reader writes it, e.g. ``5 janv. – 5 févr. 2026``."""
    return format_interval(start, end, skeleton="yMMMd", locale=normalise(locale) or DEFAULT_LOCALE)


def served(start, end_exclusive, locale: str) -> str:
    """What a line covers: its days, the last one included (``5 janv. – 4 févr. 2026``), or the
    day of a one-off charge."""
    last = end_exclusive - dt.timedelta(days=1)
    if last <= start:
        return format_date(start, format="medium", locale=normalise(locale) or DEFAULT_LOCALE)
    return period(start, last, locale)
