"""The dunning ladder, run daily after the renewal: remind, retry, warn, suspend, terminate,
delete — each universe on its own ladder (:class:`core.context.DunningPolicy`).

Every step is a set-based statement over the services of one universe, keyed so that a run
repeated the same day (a crash, a second worker) does nothing twice: reminders, warnings and
retries have unique keys, transitions only move services still in the state they left.

Rules that never bend, whatever the ladder says:

* nothing is suspended, terminated or deleted while a payment is queued or pending;
* a paid period is always served: suspension counts from ``expires_on``, the end of what was
  paid, and money that arrives moves it (reactivating a suspended service in the same
  transaction, see :func:`core.payments.settlement.settle`);
* a terminated service keeps its data until the retention period ends, and staff can restore
  it until then (:func:`restore`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from sqlalchemy import String, and_, cast, literal, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from core import notices
from core.audit import Actor
from core.context import DunningPolicy
from core.customers.contacts import expire_changes
from core.errors import InvalidState
from core.lifecycle.state import transition
from core.models import Account, Invoice, InvoiceLine, Service
from core.payments.charges import queue_charges
from core.payments.settlement import pending_payment_for
from core.renewal.due import due_condition
from core.runtime import Runtime

svc = Service.__table__
acct = Account.__table__
inv = Invoice.__table__
line = InvoiceLine.__table__
ACTOR = Actor.system("dunning")


def scopes(rt: Runtime, present: set[str]) -> Iterator[tuple[DunningPolicy, ColumnElement]]:
    """(ladder, SQL condition on the service's universe) for each universe with its own
    ladder, then the core's default for every other universe; only where services are."""
    own = sorted(u for u in rt.dunning if u != "*")
    for universe in own:
        if universe in present:
            yield rt.dunning[universe], svc.c.universe == universe
    if present - set(own):
        yield rt.dunning["*"], svc.c.universe.not_in(own) if own else literal(True)


def renews():
    """The service will renew at expiry: automatic, or set to stop while an engagement runs."""
    return or_(svc.c.renewal_mode == "automatic",
               and_(svc.c.renewal_mode == "terminate", svc.c.engagement_end.is_not(None), svc.c.expires_on < svc.c.engagement_end))


def _windows(days: tuple[int, ...], ascending: bool) -> Iterator[tuple[int, int | None]]:
    """Each step with the next one: a step is due from its day until the next step's day, so a
    day the job did not run is caught up, and the key makes each step happen once."""
    ordered = sorted(days, reverse=not ascending)
    for i, day in enumerate(ordered):
        yield day, ordered[i + 1] if i + 1 < len(ordered) else None


def _ids(conn: Connection, where) -> list[int]:
    return list(conn.execute(select(svc.c.id).where(where).order_by(svc.c.id)).scalars())


def run_dunning(conn: Connection, rt: Runtime, today: dt.date, summary) -> None:
    """One day of dunning, for every universe. ``summary`` counts what happened."""
    unblocked = ~pending_payment_for(svc.c.id)
    # Services set to stop end at expiry, once their engagement is over (no dunning: nothing is owed);
    # so do those whose new terms were not accepted by their deadline (core/ordering/contracts.py).
    stopping = or_(svc.c.renewal_mode == "terminate",
                   and_(svc.c.terms_due_by.is_not(None), svc.c.expires_on >= svc.c.terms_due_by))
    ending = _ids(conn, and_(svc.c.state.in_(("active", "suspended")), stopping, svc.c.expires_on <= today,
                             or_(svc.c.engagement_end.is_(None), svc.c.expires_on >= svc.c.engagement_end)))
    summary.ended += len(transition(conn, rt, ending, "terminated", "service.ended", ACTOR,
                                    outbox_action="terminate", values={"terminated_on": today}))
    present = set(conn.execute(select(svc.c.universe).where(svc.c.state.in_(("active", "suspended", "terminated")))
                               .distinct()).scalars())
    for ladder, mine in scopes(rt, present):
        # Renewal notices before expiry, to what will renew and is not paid yet. A reminder
        # longer than the period itself would arrive right after the last renewal: skipped.
        for days, closer in _windows(ladder.reminders, ascending=False):
            summary.reminded += notices.queue(conn, rt, "renewal_notice", select(
                cast(svc.c.id, String) + literal(":") + cast(svc.c.expires_on, String) + literal(f":D-{days}"),
                svc.c.billing_account_id, svc.c.id, literal(None, svc.c.id.type),
            ).where(mine, svc.c.state == "active", renews(), svc.c.expires_on <= today + dt.timedelta(days=days),
                    svc.c.expires_on > today + dt.timedelta(days=closer or 0), svc.c.period_months * 28 > days, unblocked))
        # Payment retries after expiry: a new attempt (its own idempotency key) per step.
        for days, later in _windows(ladder.retries, ascending=True):
            window = inv.c.due_on <= today - dt.timedelta(days=days)
            if later is not None:
                window = and_(window, inv.c.due_on > today - dt.timedelta(days=later))
            open_invoices = select(inv.c.id).where(
                inv.c.status == "issued", inv.c.kind == "renewal", window,
                select(line.c.id).join(svc, svc.c.id == line.c.service_id).where(line.c.invoice_id == inv.c.id, mine).exists())
            summary.retried += queue_charges(conn, rt, inv.c.id.in_(open_invoices), f"retry-D+{days}")
        # Warning before suspension, then suspension: only what is unpaid past its expiry.
        suspend_on = today - dt.timedelta(days=ladder.suspend_after)
        if ladder.warn_before:
            warn_on = today - dt.timedelta(days=ladder.suspend_after - ladder.warn_before)
            summary.warned += notices.queue(conn, rt, "suspension_warning", select(
                cast(svc.c.id, String) + literal(":") + cast(svc.c.expires_on, String), svc.c.billing_account_id, svc.c.id,
                literal(None, svc.c.id.type),
            ).where(mine, svc.c.state == "active", svc.c.expires_on <= warn_on, svc.c.expires_on > suspend_on, unblocked))
        # a service still due is paid through its expiry and waits for its renewal (another
        # worker's chunk may be billing it right now): it is not unpaid
        expired = _ids(conn, and_(mine, svc.c.state == "active", svc.c.expires_on <= suspend_on, unblocked,
                                  ~due_condition(today)))
        summary.suspended += len(transition(conn, rt, expired, "suspended", "service.suspended", ACTOR,
                                            outbox_action="suspend", values={"suspended_on": today}, notify="suspended"))
        abandoned = _ids(conn, and_(mine, svc.c.state == "suspended", svc.c.suspended_on.is_not(None),
                                    svc.c.suspended_on <= today - dt.timedelta(days=ladder.terminate_after), unblocked))
        summary.terminated += len(transition(conn, rt, abandoned, "terminated", "service.terminated", ACTOR,
                                             outbox_action="terminate", values={"terminated_on": today}, notify="terminated"))
        expired_data = _ids(conn, and_(mine, svc.c.state == "terminated", svc.c.terminated_on.is_not(None),
                                       svc.c.terminated_on <= today - dt.timedelta(days=ladder.delete_after), unblocked))
        summary.deleted += len(transition(conn, rt, expired_data, "deleted", "service.deleted", ACTOR,
                                          outbox_action="delete", values={"deleted_on": today}))
    # Contact changes not accepted by both accounts in time lapse (also done lazily when used).
    summary.contact_changes_expired += expire_changes(conn, rt)


def restore(conn: Connection, rt: Runtime, service_id: int, actor: Actor) -> dict:
    """Staff: bring a terminated service back from its kept data. It comes back active if its
    paid period still runs, otherwise suspended (the ladder's grace starts again today), and
    renewing automatically."""
    from core.lifecycle.services import get_service

    today = rt.clock.today()
    row = get_service(conn, actor, service_id, action="service.restore", for_update=True)
    if row["state"] != "terminated":
        raise InvalidState(what="service", state=row["state"], code="service_not_restorable")
    to_state = "active" if row["expires_on"] > today else "suspended"
    transition(conn, rt, [service_id], to_state, "service.restored", actor, outbox_action="restore",
               values={"terminated_on": None, "renewal_mode": "automatic",
                       "suspended_on": None if to_state == "active" else today})
    return {"id": service_id, "state": to_state}
