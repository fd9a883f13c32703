"""Unit of work: one transaction, then the event hooks once it has committed.

Domain operations collect the events they cause on the connection; plugins hear about them
only after the commit, so a rollback never announces something that did not happen. The
metrics counted on the connection (:func:`core.telemetry.count`) are applied the same way.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from core.runtime import Runtime
from core.telemetry import PENDING_KEY

log = logging.getLogger("univers.events")
_KEYS = ("univers_state_changes", "univers_paid_orders", "univers_issued_invoices", PENDING_KEY)


@contextlib.contextmanager
def unit_of_work(rt: Runtime) -> Iterator[Connection]:
    with rt.engine.connect() as conn:
        for key in _KEYS:
            conn.info.pop(key, None)
        try:
            with conn.begin():
                yield conn
        except BaseException:
            for key in _KEYS:
                conn.info.pop(key, None)
            raise
        events = {key: conn.info.pop(key, []) for key in _KEYS}
    rt.telemetry.apply(events.pop(PENDING_KEY))
    fire(rt, events)


T = TypeVar("T")


def once_more_on_conflict(rt: Runtime, work: Callable[[Connection], T]) -> T:
    """``work`` in a unit of work, run a second time if a unique key raced in from another request
    (the same idempotency key posted twice at once): the second run finds what the first wrote."""
    try:
        with unit_of_work(rt) as conn:
            return work(conn)
    except IntegrityError:
        with unit_of_work(rt) as conn:
            return work(conn)


def fire(rt: Runtime, events: dict) -> None:
    ctx = rt.event_ctx()
    hook = rt.pm.hook
    try:
        if events.get("univers_issued_invoices"):
            hook.univers_on_invoices_issued(ctx=ctx, invoice_ids=events["univers_issued_invoices"])
        if events.get("univers_paid_orders"):
            hook.univers_on_orders_paid(ctx=ctx, order_ids=events["univers_paid_orders"])
        if events.get("univers_state_changes"):
            hook.univers_on_service_state_changed(ctx=ctx, changes=events["univers_state_changes"])
    except Exception:  # an event listener must never undo or block billing
        log.exception("an event hook failed")
