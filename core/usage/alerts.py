"""Spending alerts of pay-as-you-go projects: a threshold per project, a notification once a month.

The billing contact of a project (``service.invoices``: who sees what it costs) sets a
threshold in the project's currency, excluding tax. :func:`check_alerts` (from the scheduler,
every ``UNIVERS_ALERT_MINUTES``) prices the month so far of every project whose alert has not
been notified this month — the monthly run's own rating and savings plan draw
(:func:`core.usage.metering.month_cost`), so the alert and the invoice agree — and queues a
``spending_alert`` notification for those whose amount due has reached their threshold.

**Once per month.** The notification's unique key is (project, month, threshold), and the
alert's ``notified_period`` is set in the same transaction with a conditional ``UPDATE``: a
second run, or a second scheduler, queues nothing more. Setting a new threshold clears
``notified_period``, so a raised threshold warns again when it is reached in turn.

**Set-based, in chunks.** A check reads one chunk of alerts by service id, sums their records
in one ``GROUP BY`` (the rating index), rates the sums in Python (a few lines per project) and
writes the crossings in two statements. It never reads a record twice per chunk.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, or_, select, update
from sqlalchemy.engine import Connection

from core import audit, notices
from core.audit import Actor
from core.db import upsert
from core.errors import InvalidInput, NotFound
from core.i18n import N_
from core.lifecycle.services import acting, get_service
from core.models import Service, SpendingAlert, UsageRecord
from core.money import MoneyError, to_minor
from core.runtime import Runtime
from core.uow import unit_of_work

alerts, svc, records = SpendingAlert.__table__, Service.__table__, UsageRecord.__table__
ACTOR = Actor.system("spending-alerts")
CHUNK = 2000
MAX_THRESHOLD_MINOR = 10**15


def _project(conn: Connection, rt: Runtime, actor: Actor, service_id: int, *, for_update: bool = False) -> dict:
    row = get_service(conn, actor, service_id, action="service.invoices", for_update=for_update)
    if not rt.is_metered(row["universe"], row["kind"]):
        raise InvalidInput(N_("This service is not a project billed by use."), code="not_a_project")
    return row


def get_alert(conn: Connection, rt: Runtime, actor: Actor, service_id: int) -> dict:
    _project(conn, rt, actor, service_id)
    row = conn.execute(select(alerts).where(alerts.c.service_id == service_id)).mappings().first()
    if row is None:
        raise NotFound(N_("This project has no spending alert."), code="no_spending_alert")
    return dict(row)


def set_alert(conn: Connection, rt: Runtime, actor: Actor, service_id: int, threshold: str) -> dict:
    """Set (or change) a project's threshold; it warns again this month if it is reached."""
    row = _project(conn, rt, actor, service_id, for_update=True)
    currency = row["currency"]
    try:
        minor = to_minor(threshold, currency)
    except MoneyError:
        minor = None
    if minor is None or not 0 < minor <= MAX_THRESHOLD_MINOR:
        raise InvalidInput(N_("The threshold must be a positive amount in {currency}, such as \"100.00\"."),
                           code="invalid_threshold", currency=currency)
    now = rt.clock.now()
    before = conn.execute(select(alerts.c.threshold_minor).where(alerts.c.service_id == service_id)).scalar_one_or_none()
    values = dict(service_id=service_id, threshold_minor=minor, currency=currency, set_at=now, set_by=actor.label,
                  notified_period=None)
    conn.execute(upsert(conn, alerts, values, ["service_id"]))
    audit.record(conn, now, acting(actor, row), "service", service_id, "service.spending_alert",
                 None if before is None else {"threshold_minor": before}, {"threshold_minor": minor, "currency": currency})
    return values


def delete_alert(conn: Connection, rt: Runtime, actor: Actor, service_id: int) -> None:
    row = _project(conn, rt, actor, service_id, for_update=True)
    before = conn.execute(select(alerts.c.threshold_minor).where(alerts.c.service_id == service_id)).scalar_one_or_none()
    if before is None:
        raise NotFound(N_("This project has no spending alert."), code="no_spending_alert")
    conn.execute(delete(alerts).where(alerts.c.service_id == service_id))
    audit.record(conn, rt.clock.now(), acting(actor, row), "service", service_id, "service.spending_alert",
                 {"threshold_minor": before}, None)


@dataclass
class AlertCheck:
    checked: int = 0
    notified: int = 0


def check_chunk(conn: Connection, rt: Runtime, period: dt.date, after: int, limit: int) -> tuple[int, AlertCheck]:
    """Price the month so far of the next ``limit`` alerts not notified this month; notify those
    reached. Returns the last service id (0 when none was left) and what was done."""
    from core.usage.metering import month_costs

    done = AlertCheck()
    due = conn.execute(
        select(alerts.c.service_id.label("id"), alerts.c.threshold_minor, svc.c.subsidiary, svc.c.currency)
        .join(svc, svc.c.id == alerts.c.service_id)
        .where(alerts.c.service_id > after, or_(alerts.c.notified_period.is_(None), alerts.c.notified_period < period))
        .order_by(alerts.c.service_id).limit(limit)).all()
    if not due:
        return 0, done
    costs = month_costs(conn, rt, period, due)
    reached = {d.id: d.threshold_minor for d in due if costs[d.id]["due_minor"] >= d.threshold_minor}
    if reached:
        for threshold in set(reached.values()):  # the key names the threshold: a new one warns again
            notices.queue_for_services(conn, rt, "spending_alert", [s for s, t in reached.items() if t == threshold],
                                             f"{period:%Y-%m}:{threshold}")
        conn.execute(update(alerts).where(alerts.c.service_id.in_(list(reached)), or_(
            alerts.c.notified_period.is_(None), alerts.c.notified_period < period)).values(notified_period=period))
        audit.record_many(conn, rt.clock.now(), ACTOR, "service", "service.spending_alert_reached",
                          [(s, None, {"period": f"{period:%Y-%m}", "threshold_minor": t}) for s, t in sorted(reached.items())])
    done.checked, done.notified = len(due), len(reached)
    return due[-1].id, done


def check_alerts(rt: Runtime, *, chunk: int = CHUNK) -> AlertCheck:
    """Check every spending alert against its project's month so far (safe to run anywhere, any time)."""
    today = rt.clock.today()
    period = dt.date(today.year, today.month, 1)
    total, cursor = AlertCheck(), 0
    while True:
        with unit_of_work(rt) as conn:
            cursor, done = check_chunk(conn, rt, period, cursor, chunk)
        if not cursor:
            return total
        total.checked += done.checked
        total.notified += done.notified


def reached_amounts(conn: Connection, rt: Runtime, service_id: int) -> tuple[int, int, str] | None:
    """(amount due so far this month, threshold, currency) of a project's alert, for its message."""
    from core.usage.metering import month_costs

    row = conn.execute(select(alerts.c.service_id.label("id"), alerts.c.threshold_minor, svc.c.subsidiary, svc.c.currency)
                       .join(svc, svc.c.id == alerts.c.service_id).where(alerts.c.service_id == service_id)).first()
    if row is None:
        return None
    today = rt.clock.today()
    cost = month_costs(conn, rt, dt.date(today.year, today.month, 1), [row])[service_id]
    return cost["due_minor"], row.threshold_minor, row.currency
