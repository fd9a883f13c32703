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
