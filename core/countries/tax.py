"""Who pays which tax: tax zones as dated data (``core/data/taxes.json``) and the rules that put
a customer in one.

A **zone** is a list of dated rates: ``FR`` (VAT 20 %), ``CA-ON`` (HST 13 %), ``CA-QC`` (GST 5 %
and QST 9.975 % stacked on the same base), ``RC`` (EU reverse charge, 0 %, category AE), ``OUT``
(outside the scope of the storefront's tax, category O). :func:`zone_for` decides a customer's
zone from the storefront's regime, the customer's country and region, and whether a VAT number
was *confirmed* (format-valid is not enough). The zone is stored on the account, so set-based
renewal joins it to the ``tax_rate`` table (:func:`sync_rates`) and prices every line at the
rate in force on its date of supply.

Regimes (a storefront's ``tax_regime``):

* ``eu``: domestic customers pay the storefront's rate; EU businesses with a confirmed VAT
  number elsewhere get reverse charge; EU consumers elsewhere pay their own country's rate
  (OSS, art. 58); customers outside the EU are outside the scope.
* ``domestic`` (GB, SG): the home rate for customers of that country, else outside the scope.
* ``ca``: the customer's province (GST, HST, or GST + QST).
* ``us``: a state's sales tax only where a zone ``US-<STATE>`` is configured; by default not
  collected (zone ``US``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, insert, select, text
from sqlalchemy.engine import Connection

from core.i18n import N_
from core.models import TaxRateRow
from core.money import rate_to_ppm

DATA = Path(__file__).parents[1] / "data" / "taxes.json"
OPEN_END = dt.date(9999, 12, 31)
REVERSE_CHARGE, OUTSIDE, NOT_COLLECTED = "RC", "OUT", "US"
MENTIONS = {
    "AE": N_("Reverse charge: VAT to be accounted for by the customer (Article 196 of Council Directive 2006/112/EC)."),
    "O": N_("Not subject to the seller's VAT: the place of supply is outside its territory."),
}


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
class TaxTable:
    zones: dict[str, tuple[TaxRate, ...]]
    eu_members: frozenset[str]
    regions: dict[str, tuple[str, ...]]

    def rates(self, zone: str, day: dt.date) -> tuple[TaxRate, TaxRate | None]:
        """The main rate and the stacked one (or None) of a zone on the date of supply."""
        return rates_on(self.zones[zone], day, zone)


def rates_on(rates: tuple[TaxRate, ...], day: dt.date, zone: str) -> tuple[TaxRate, TaxRate | None]:
    """Of a zone's dated rates, the main one and the stacked one (or None) in force on ``day``."""
    in_force = [t for t in rates if t.in_force(day)]
    main = next((t for t in in_force if not t.stacked), None)
    if main is None:
        raise LookupError(f"no tax rate in force in zone {zone} on {day}")
    return main, next((t for t in in_force if t.stacked), None)


def load_taxes(path: Path = DATA) -> TaxTable:
    data = json.loads(path.read_text(encoding="utf-8"))
    zones = {
        zone: tuple(
            TaxRate(r["name"], r["category"], rate_to_ppm(r["rate"]), dt.date.fromisoformat(r["valid_from"]),
                    dt.date.fromisoformat(r["valid_to"]) if r.get("valid_to") else None, bool(r.get("stacked")))
            for r in rows
        )
        for zone, rows in data["zones"].items()
    }
    return TaxTable(zones, frozenset(data["eu_members"]), {k: tuple(v) for k, v in data.get("regions", {}).items()})


def zone_for(taxes: TaxTable, sub, country: str, region: str | None, kind: str, vat_confirmed: bool) -> str:
    """The tax zone of a customer of storefront ``sub`` (see the module docstring)."""
    regime = sub.tax_regime
    if regime == "eu":
        if country == sub.country:
            return sub.tax_zone
        if country in taxes.eu_members:
            return REVERSE_CHARGE if kind == "company" and vat_confirmed else country
        return OUTSIDE
    if regime == "ca":
        return f"CA-{region or sub.default_region}" if country == "CA" else OUTSIDE
    if regime == "us":
        return f"US-{region}" if country == "US" and f"US-{region}" in taxes.zones else NOT_COLLECTED if country == "US" else OUTSIDE
    return sub.tax_zone if country == sub.country else OUTSIDE


def sync_rates(conn: Connection, taxes: TaxTable) -> None:
    """Copy the zones into ``tax_rate`` (start-up, under a lock), for set-based renewal."""
    table = TaxRateRow.__table__
    if conn.dialect.name == "postgresql":
        conn.execute(text("LOCK TABLE tax_rate IN SHARE ROW EXCLUSIVE MODE"))
    rows = [
        {"zone": zone, "name": r.name, "valid_from": r.valid_from,
         "valid_to": r.valid_to + dt.timedelta(days=1) if r.valid_to else OPEN_END, "stacked": r.stacked,
         "category": r.category, "rate_ppm": r.rate_ppm}
        for zone, rates in taxes.zones.items() for r in rates
    ]
    if sorted(tuple(r.values()) for r in rows) == sorted(tuple(r) for r in conn.execute(select(*table.c))):
        return
    conn.execute(delete(table))
    conn.execute(insert(table), rows)
