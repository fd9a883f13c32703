"""The price list in the database: every storefront's dated prices, copied from the overlays.

Renewal is set-based SQL, so the price in force on each service's renewal date must be a join
away (:func:`price_in_force`). :func:`sync_prices` writes the catalog's prices at start-up, under
a lock, and refuses to rewrite the past: a price already in force cannot change or appear
after the fact, because services were sold and renewed at it. Change a price with a new line
dated from tomorrow or later.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, delete, insert, select, text, update
from sqlalchemy.engine import Connection

from core.catalog import Catalog, Problem
from core.models import CatalogPrice

prices = CatalogPrice.__table__
OPEN_END = dt.date(9999, 12, 31)
_COMPARED = ("valid_to", "currency", "amount_minor", "setup_minor", "hourly_micro")


def catalog_rows(catalog: Catalog) -> dict[tuple[str, str, dt.date], dict]:
    rows = {}
    for storefront, offer in catalog.offers.items():
        for plan_code, points in offer.prices.items():
            for p in points:
                rows[storefront, plan_code, p.valid_from] = {
                    "storefront": storefront, "plan_code": plan_code, "valid_from": p.valid_from,
                    "valid_to": p.valid_to or OPEN_END, "currency": p.currency, "amount_minor": p.amount_minor,
                    "setup_minor": p.setup_minor, "hourly_micro": p.hourly_micro,
                }
    return rows


def sync_prices(conn: Connection, catalog: Catalog, today: dt.date) -> list[Problem]:
    """Make the table equal to the catalog's prices; returns problems (and writes nothing) when
    that would change a price that started on or before ``today``."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("LOCK TABLE catalog_price IN SHARE ROW EXCLUSIVE MODE"))  # one start-up syncs at a time
    wanted = catalog_rows(catalog)
    have = {(r["storefront"], r["plan_code"], r["valid_from"]): dict(r) for r in conn.execute(select(prices)).mappings()}
    problems = []
    if have:
        for key in sorted(set(wanted) | set(have)):
            storefront, plan_code, valid_from = key
            old, new = have.get(key), wanted.get(key)
            if valid_from > today or _same(old, new, ("currency", "amount_minor", "setup_minor", "hourly_micro")):
                continue
            what = "was removed" if new is None else "is new" if old is None else "was changed"
            plugin = catalog.owner.get(plan_code, "?")
            source = catalog.offers[storefront].sources.get(plugin) if storefront in catalog.offers else None
            problems.append(Problem(
                plugin, "price_history_rewritten",
                f"the price of {plan_code!r} from {valid_from} {what}, but it is already in force: add a new price "
                f"dated from tomorrow or later instead", storefront, source))
    if problems:
        return problems
    gone = [k for k in have if k not in wanted]
    for storefront, plan_code, valid_from in gone:
        conn.execute(delete(prices).where(prices.c.storefront == storefront, prices.c.plan_code == plan_code,
                                          prices.c.valid_from == valid_from))
    new = [row for key, row in wanted.items() if key not in have]
    if new:
        conn.execute(insert(prices), new)
    for key, row in wanted.items():
        if key in have and not _same(have[key], row, _COMPARED):
            conn.execute(update(prices).where(prices.c.storefront == key[0], prices.c.plan_code == key[1],
                                              prices.c.valid_from == key[2]).values(**{c: row[c] for c in _COMPARED}))
    return []


def _same(old: dict | None, new: dict | None, columns: tuple[str, ...]) -> bool:
    return old is not None and new is not None and all(old[c] == new[c] for c in columns)


def price_in_force(storefront, plan_code, day):
    """Join condition: the catalog price of (storefront, plan) in force on ``day``."""
    return and_(prices.c.storefront == storefront, prices.c.plan_code == plan_code,
                prices.c.valid_from <= day, day < prices.c.valid_to)
