"""The renewal forecast: what renews, and for how much, on each day of the next N days, by
universe, storefront and currency, with what stops on the same days (churn) beside it.

One set-based statement, whatever the number of services:

1. the live services (active or suspended, renewing automatically or set to stop) whose expiry
   falls before the end of the window, read through the ``(state, expires_on)`` index, are
   grouped by everything their renewals depend on (expiry, period, plan, storefront…);
2. the renewal dates of each distinct (expiry, period) pair are projected with a recursive CTE:
   a monthly service expiring on 10 January renews on 10 February and 10 March too. The dates
   are added one period at a time, exactly as the renewal run moves them (31 January →
   28 February → 28 March), and there are only a few hundred such pairs, not one per service;
3. each group meets its dates and the price in force on each of them, and the counts and
   amounts are summed per (day, universe, storefront, currency).

A renewal costs what the renewal run will invoice (:func:`core.renewal.run.renewal_price`): the
price already invoiced for a period that is billed and not yet paid, the service's own price
while an engagement runs, otherwise the catalog price in force on that day times the quantity.
Renewals are invoiced and charged a few days ahead: one already paid has moved the expiry and
is no longer to come, one invoiced but unpaid still is (once, at its invoiced amount).
A service set to stop renews while its engagement runs and stops on the first renewal date
after it: that date, and only that one, counts it as churn, for the amount it would have
renewed at. Services renewed by hand (``manual``) are in neither column. A service whose new
terms are not accepted (``terms_due_by``, core/ordering/contracts.py) renews until that date and stops on
the first renewal date from it, whatever its mode, unless the terms are accepted first.

Amounts are integers in minor units; currencies are never added together.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field

from sqlalchemy import BigInteger, Date, and_, case, cast, func, null, or_, select
from sqlalchemy.engine import Connection

from core.catalog.price_list import price_in_force, prices
from core.db import sql_add_months
from core.errors import InvalidInput
from core.i18n import N_
from core.models import Service
from core.money import from_minor

svc = Service.__table__
LIVE_STATES = ("active", "suspended")
MODES = ("automatic", "terminate")  # "manual" renews only if the customer acts: not forecast
MAX_DAYS = 366
MEASURES = ("renewing", "renewing_minor", "stopping", "stopping_minor")
CSV_COLUMNS = ["day", "subsidiary", "universe", "currency", "renewing", "renewing_net", "stopping", "stopping_net"]


@dataclass(frozen=True)
class Forecast:
    """Rows of (day, universe, subsidiary, currency) with something renewing or stopping;
    days with nothing are left out."""

    start: dt.date
    days: int
    rows: list[dict] = field(default_factory=list)

    @property
    def end(self) -> dt.date:
        """The last day of the window (included)."""
        return self.start + dt.timedelta(days=self.days - 1)

    @property
    def currencies(self) -> list[str]:
        return sorted({r["currency"] for r in self.rows})

    def totals(self) -> list[dict]:
        """Counts and amounts over the whole window, one entry per currency."""
        out: dict[str, dict] = {}
        for r in self.rows:
            total = out.setdefault(r["currency"], {"currency": r["currency"], **dict.fromkeys(MEASURES, 0)})
            for m in MEASURES:
                total[m] += r[m]
        return [out[c] for c in sorted(out)]


def check_days(days: int) -> None:
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(N_("A forecast covers 1 to {limit} days, not {days}."), code="invalid_forecast_days",
                           limit=MAX_DAYS, days=days)


def forecast(conn: Connection, start: dt.date, days: int) -> Forecast:
    """What renews and what stops on each day of ``[start, start + days)``."""
    check_days(days)
    end = start + dt.timedelta(days=days)
    keys = (svc.c.expires_on, svc.c.period_months, svc.c.billed_until, svc.c.engagement_end, svc.c.renewal_mode,
            svc.c.terms_due_by, svc.c.universe, svc.c.subsidiary, svc.c.currency, svc.c.plan_code)
    groups = (
        select(*keys, func.count().label("services"), func.sum(svc.c.quantity).label("quantity"),
               func.sum(svc.c.price_minor).label("kept"))
        .where(svc.c.state.in_(LIVE_STATES), svc.c.expires_on < end,
               or_(svc.c.renewal_mode.in_(MODES), svc.c.terms_due_by.is_not(None)))
        .group_by(*keys)
        .cte("forecast_groups")
    )
    # renewal dates per (expiry, period): the expiry itself, then one period after another
    chain = (
        select(groups.c.expires_on.label("anchor"), groups.c.period_months.label("months"),
               groups.c.expires_on.label("day"), cast(null(), Date).label("prev"))
        .distinct()
        .cte("forecast_dates", recursive=True)
    )
    following = sql_add_months(chain.c.day, chain.c.months)
    chain = chain.union_all(
        select(chain.c.anchor, chain.c.months, following, chain.c.day).where(chain.c.months > 0, following < end))

    def kept_price(day):
        """On ``day`` the price is already set: the period is invoiced, or an engagement runs."""
        return or_(day < groups.c.billed_until, and_(groups.c.engagement_end.is_not(None), day < groups.c.engagement_end))

    day = chain.c.day
    terms = groups.c.terms_due_by  # new terms to accept by then, or it ends (core/ordering/contracts.py)

    def unaccepted(when):
        return and_(terms.is_not(None), when >= terms)

    renews = and_(or_(groups.c.renewal_mode == "automatic", kept_price(day)), or_(kept_price(day), ~unaccepted(day)))
    stops = or_(
        and_(groups.c.renewal_mode == "terminate", ~kept_price(day), or_(chain.c.prev.is_(None), kept_price(chain.c.prev))),
        and_(groups.c.renewal_mode != "terminate", unaccepted(day), ~kept_price(day),
             or_(chain.c.prev.is_(None), ~unaccepted(chain.c.prev), kept_price(chain.c.prev))),
    )
    amount = case((or_(kept_price(day), prices.c.amount_minor.is_(None)), groups.c.kept),
                  else_=prices.c.amount_minor * groups.c.quantity)

    def total(condition, value):
        return cast(func.sum(case((condition, value), else_=0)), BigInteger)

    q = (
        select(day.label("day"), groups.c.universe, groups.c.subsidiary, groups.c.currency,
               total(renews, groups.c.services).label("renewing"), total(renews, amount).label("renewing_minor"),
               total(stops, groups.c.services).label("stopping"), total(stops, amount).label("stopping_minor"))
        .select_from(
            groups.join(chain, and_(chain.c.anchor == groups.c.expires_on, chain.c.months == groups.c.period_months))
            .outerjoin(prices, price_in_force(groups.c.subsidiary, groups.c.plan_code, day)))
        .where(day >= start, or_(renews, stops))
        .group_by(day, groups.c.universe, groups.c.subsidiary, groups.c.currency)
        .order_by(day, groups.c.currency, groups.c.subsidiary, groups.c.universe)
    )
    return Forecast(start, days, [dict(r) for r in conn.execute(q).mappings()])


def forecast_csv(report: Forecast) -> str:
    """The rows as CSV: comma separated, ISO dates, dot decimals in the currency's unit."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in report.rows:
        writer.writerow({"day": r["day"].isoformat(), "subsidiary": r["subsidiary"], "universe": r["universe"],
                         "currency": r["currency"], "renewing": r["renewing"],
                         "renewing_net": from_minor(r["renewing_minor"], r["currency"]), "stopping": r["stopping"],
                         "stopping_net": from_minor(r["stopping_minor"], r["currency"])})
    return buf.getvalue()
