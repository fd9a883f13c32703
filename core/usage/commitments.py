"""Savings plans: a project's monthly commitment for months ahead, at a discount on its usage.

A project's billing contact (or its admin, or billing staff: ``service.commit``) commits to pay
an amount ``C`` every month for a length the storefront offers (12 months), at the storefront's
discount ``d`` (``[commitment]`` of the plugin's overlay, :class:`core.catalog.CommitmentTerm`).
Every month of the plan, the monthly invoice of the project (:mod:`core.usage.metering`) carries:

* its usage at list price, one line per metric and flavour, as without a plan (``L``);
* the commitment, ``+C``, whatever the usage (kind ``commitment``);
* the usage drawn from it, ``−min(L, C / (1 − d))`` (kind ``covered``): the plan
  *covers* usage worth ``C / (1 − d)`` at list price, so what it covers costs ``d`` less.

So the month costs ``C`` while the usage stays within what the plan covers, and ``C`` plus the
usage beyond it at list price above that. The covered value is rounded half up to the minor
unit, once (:func:`covers`); everything else is sums of integers.

A plan starts on a month's first day (the next month's by default: a month is never split),
so a month is either wholly in a plan or not. A project has at most one plan in force in a
month: a new one may start when the last one ends (sign the next plan ahead). Committing is
idempotent on (project, first month): sending the same commitment again answers the plan already
made; different terms for the same month are refused. The plan binds for its length: stopping
the project does not stop it (its months are invoiced all the same, by the monthly run).
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import and_, insert, select
from sqlalchemy.engine import Connection

from core import audit
from core.audit import Actor
from core.catalog import CommitmentTerm
from core.clock import add_months
from core.errors import OUT_OF_RANGE, Conflict, InvalidInput
from core.i18n import N_
from core.lifecycle.services import acting, get_service
from core.models import Commitment
from core.money import AmountOutOfRange, MoneyError, format_minor, ppm_to_percent, to_minor
from core.runtime import Runtime
from core.usage.rating import next_month

plans = Commitment.__table__
PPM = 1_000_000


def covers(monthly_minor: int, discount_ppm: int) -> int:
    """The list value of the usage a month of the plan covers, C / (1 − d), rounded half up to
    the minor unit: the one rounding of a savings plan."""
    exact = Decimal(monthly_minor) * PPM / (PPM - discount_ppm)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def draw(list_minor: int, plan: dict | None) -> tuple[int, int]:
    """(usage covered by the plan, amount due) for a month whose usage is worth ``list_minor``
    at list price; without a plan, (0, list_minor)."""
    if plan is None:
        return 0, list_minor
    covered = min(max(list_minor, 0), covers(plan["monthly_minor"], plan["discount_ppm"]))
    return covered, list_minor + plan["monthly_minor"] - covered


def terms_on(rt: Runtime, storefront: str, universe: str, day: dt.date) -> dict[int, CommitmentTerm]:
    """The savings plans a storefront offers for a universe on a day: length in months → terms."""
    offer = rt.catalog.offers.get(storefront)
    out = {}
    for months, points in (offer.commitments.get(universe, {}) if offer else {}).items():
        term = next((t for t in reversed(points) if t.valid_from <= day), None)
        if term is not None:
            out[months] = term
    return out


def in_force(conn: Connection, service_ids: list[int], period: dt.date) -> dict[int, dict]:
    """The plan in force in ``period`` of each of these projects that has one."""
    if not service_ids:
        return {}
    rows = conn.execute(select(plans).where(plans.c.service_id.in_(service_ids), plans.c.starts_on <= period,
                                            period < plans.c.ends_on)).mappings()
    return {r["service_id"]: dict(r) for r in rows}


def list_plans(conn: Connection, actor: Actor, service_id: int) -> tuple[dict, list[dict]]:
    row = get_service(conn, actor, service_id, action="service.invoices")
    return row, [dict(r) for r in conn.execute(select(plans).where(plans.c.service_id == service_id)
                                              .order_by(plans.c.starts_on)).mappings()]


def commit(conn: Connection, rt: Runtime, actor: Actor, service_id: int, monthly: str, months: int,
           starts: dt.date | None = None) -> tuple[dict, bool]:
    """Make a savings plan for a project: (the plan, whether it is new)."""
    row = get_service(conn, actor, service_id, action="service.commit", for_update=True)  # overlaps checked under the lock
    if not rt.is_metered(row["universe"], row["kind"]):
        raise InvalidInput(N_("This service is not a project billed by use."), code="not_a_project")
    if row["state"] not in ("active", "pending"):
        raise Conflict(N_("Only a running project can take a savings plan."), code="project_not_running")
    today = rt.clock.today()
    first = next_month(dt.date(today.year, today.month, 1))
    starts = starts or first
    if starts.day != 1 or starts < first:
        raise InvalidInput(N_("A savings plan starts on the first day of a coming month, from {first}."),
                           code="invalid_start", first=first)
    term = terms_on(rt, row["subsidiary"], row["universe"], starts).get(months)
    if term is None:
        offered = sorted(terms_on(rt, row["subsidiary"], row["universe"], starts))
        raise InvalidInput(N_("No savings plan of {months} months is offered for this project (offered: {offered})."),
                           code="no_such_commitment", months=months, offered=", ".join(map(str, offered)) or "-")
    currency = row["currency"]
    try:
        monthly_minor = to_minor(monthly, currency)
    except AmountOutOfRange as exc:
        raise InvalidInput(OUT_OF_RANGE, code="amount_out_of_range", amount=str(monthly)[:40], maximum=exc.maximum,
                           currency=currency) from None
    except MoneyError:
        raise InvalidInput(N_("The amount must be a decimal number in {currency}, such as \"100.00\"."),
                           code="invalid_amount", currency=currency) from None
    if monthly_minor < term.minimum_minor:
        raise InvalidInput(N_("A savings plan is at least {minimum} a month."), code="commitment_too_small",
                           minimum=format_minor(term.minimum_minor, currency, "en"))
    ends = add_months(starts, months)
    same = conn.execute(select(plans).where(plans.c.service_id == service_id, plans.c.starts_on == starts)).mappings().first()
    if same is not None:
        if (same["monthly_minor"], same["months"]) == (monthly_minor, months):
            return dict(same), False  # the same request again: the same plan
        raise Conflict(N_("This project already has a savings plan from {day}."), code="commitment_exists", day=starts)
    overlap = conn.execute(select(plans.c.starts_on).where(plans.c.service_id == service_id, and_(
        plans.c.starts_on < ends, starts < plans.c.ends_on))).first()
    if overlap is not None:
        raise Conflict(N_("This project already has a savings plan in force in those months (from {day})."),
                       code="commitment_overlaps", day=overlap.starts_on)
    now = rt.clock.now()
    values = dict(service_id=service_id, currency=currency, monthly_minor=monthly_minor, discount_ppm=term.discount_ppm,
                  months=months, starts_on=starts, ends_on=ends, created_at=now, created_by=actor.label)
    plan_id = conn.execute(insert(plans).values(**values)).inserted_primary_key[0]
    audit.record(conn, now, acting(actor, row), "service", service_id, "service.commitment", None,
                 {"commitment_id": plan_id, "monthly_minor": monthly_minor, "currency": currency,
                  "percent_off": ppm_to_percent(term.discount_ppm), "months": months, "starts_on": starts.isoformat()})
    return {"id": plan_id, **values}, True
