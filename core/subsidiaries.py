"""Storefronts and their legal entities, currencies, locales and dated tax rates, as data
(``core/data/subsidiaries.json``). No ``if country == ...`` anywhere: add a row, not a branch."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from core.money import rate_to_ppm

DATA = Path(__file__).parent / "data" / "subsidiaries.json"


@dataclass(frozen=True)
class TaxRate:
    name: str
    category: str
    rate_ppm: int
    valid_from: dt.date
    valid_to: dt.date | None
    stacked: bool = False  # charged on top of the main tax, on the same base (Québec's QST on GST)

    def in_force(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True)
class Subsidiary:
    code: str
    country: str
    currency: str
    locales: tuple[str, ...]
    default_locale: str
    legal_entity: dict
    invoice_series: str
    vat_scheme: str | None
    vat_example: str | None
    taxes: tuple[TaxRate, ...]
    selling: bool

    def tax_on(self, day: dt.date) -> TaxRate:
        """The standard rate in force on the date of supply."""
        for tax in self.taxes:
            if not tax.stacked and tax.in_force(day):
                return tax
        raise LookupError(f"no tax rate in force for {self.code} on {day}")

    def stacked_tax_on(self, day: dt.date) -> TaxRate | None:
        """A second tax on the same base in force on the date of supply, if the storefront has one."""
        return next((t for t in self.taxes if t.stacked and t.in_force(day)), None)


def load_subsidiaries(path: Path = DATA) -> dict[str, Subsidiary]:
    data = json.loads(path.read_text(encoding="utf-8"))
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
            vat_scheme=s.get("vat_scheme"),
            vat_example=s.get("vat_example"),
            selling=s.get("selling", True),
            taxes=tuple(
                TaxRate(t["name"], t["category"], rate_to_ppm(t["rate"]), dt.date.fromisoformat(t["valid_from"]),
                        dt.date.fromisoformat(t["valid_to"]) if t.get("valid_to") else None, bool(t.get("stacked")))
                for t in s["taxes"]
            ),
        )
    return out
