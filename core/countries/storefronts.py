"""Storefronts and their legal entities, currencies, locales, invoice series and tax regimes, as
data (``core/data/subsidiaries.json``; the dated rates are in ``taxes.json``, see
:mod:`core.countries.tax`). No ``if country == ...`` anywhere: add a row, not a branch."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from core.countries.tax import TaxRate, TaxTable, load_taxes, rates_on

DATA = Path(__file__).parents[1] / "data" / "subsidiaries.json"


@dataclass(frozen=True)
class Subsidiary:
    code: str
    country: str
    currency: str
    locales: tuple[str, ...]
    default_locale: str
    legal_entity: dict
    invoice_series: str
    credit_note_series: str  # its own gapless numbering (FR, ES and PT rules)
    vat_scheme: str | None
    vat_example: str | None
    selling: bool
    tax_regime: str  # eu | domestic | ca | us: see core/countries/tax.py
    tax_zone: str  # the zone of a domestic customer
    default_region: str | None
    taxes: tuple[TaxRate, ...]  # the rates of its home zone
    withdrawal_days: int = 0  # a consumer's right of withdrawal from a distance contract (14 in the EU and GB); 0: none
    fiscal_chain: str | None = None  # pt | es: every issued document is a link of a hash chain (core/billing/chain.py)
    fiscal: dict = field(default_factory=dict)  # that chain's data: time zone, series codes, software certificate...
    # what the storefront's national e-invoice needs of a buyer beyond the account (Italy's codice
    # destinatario, PEC, codice fiscale, address), each name with the pattern a value must match
    einvoice_fields: dict[str, str] = field(default_factory=dict)

    def tax_on(self, day: dt.date) -> TaxRate:
        """The home zone's main rate in force on the date of supply."""
        return rates_on(self.taxes, day, self.tax_zone)[0]

    def stacked_tax_on(self, day: dt.date) -> TaxRate | None:
        """A second tax on the same base in force on the date of supply, if the home zone has one."""
        return rates_on(self.taxes, day, self.tax_zone)[1]


def load_subsidiaries(path: Path = DATA, taxes: TaxTable | None = None) -> dict[str, Subsidiary]:
    data = json.loads(path.read_text(encoding="utf-8"))
    taxes = taxes or load_taxes()
    out = {}
    for s in data["storefronts"]:
        out[s["code"]] = Subsidiary(
            code=s["code"],
            country=s["country"],
            currency=s["currency"],
            locales=tuple(s["locales"]),
            default_locale=s["default_locale"],
            legal_entity=s["legal_entity"],
            invoice_series=s["invoice_series"],
            credit_note_series=s["credit_note_series"],
            vat_scheme=s.get("vat_scheme"),
            vat_example=s.get("vat_example"),
            selling=s.get("selling", True),
            tax_regime=s["tax_regime"],
            tax_zone=s["tax_zone"],
            default_region=s.get("default_region"),
            taxes=taxes.zones[s["tax_zone"]],
            withdrawal_days=int(s.get("withdrawal_days", 0)),
            fiscal_chain=s.get("fiscal_chain"),
            fiscal=s.get("fiscal", {}),
            einvoice_fields=dict(s.get("einvoice_fields", {})),
        )
    return out
