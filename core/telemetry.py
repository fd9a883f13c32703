"""Operational metrics in Prometheus' model: what the business did, counted where it happens.

Each runtime owns a :class:`Telemetry` (its own ``CollectorRegistry``, so tests never share
counts). Domain code records in two ways, and never imports the HTTP edge:

* :func:`count` puts an increment on the connection of a unit of work; :mod:`core.uow` applies
  it once the transaction has committed and drops it on a rollback, so a counter never counts
  work that did not happen (an invoice numbered in a chunk that failed, a usage batch refused);
* a job that spans several transactions (the renewal run) calls the :class:`Telemetry` methods
  once it is done.

What the database already knows is read at scrape time instead (:class:`QueueCollector`): the
depth of the outbox, the charge queue and the mail queue, and the age of their oldest parked
item, each with a query that an index answers in time proportional to what it counts, never a
scan of the tables. No metric carries an account, a service or an invoice id as a label.

Durations are measured with a monotonic stopwatch (``time.perf_counter``, injectable), not the
business clock, which tests freeze.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from core.models import Notification, OutboxItem, Payment

if TYPE_CHECKING:
    from core.runtime import Runtime

PENDING_KEY = "univers_telemetry"
RENEWAL_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
DUNNING_STEPS = ("reminded", "retried", "warned", "suspended", "terminated", "ended", "deleted")


class Telemetry:
    """The counters and histograms of one runtime; see the README's "Metrics" for each."""

    def __init__(self, registry: CollectorRegistry | None = None, stopwatch: Callable[[], float] = time.perf_counter):
        self.registry = registry if registry is not None else CollectorRegistry()
        self.stopwatch = stopwatch
        r = self.registry
        self.renewal_runs = Counter("univers_renewal_runs", "Renewal runs finished", registry=r)
        self.renewal_duration = Histogram("univers_renewal_run_duration_seconds",
                                          "How long a renewal run took, dunning included", buckets=RENEWAL_BUCKETS, registry=r)
        self.renewal_services = Counter("univers_renewal_services", "Services the renewal runs invoiced (renewed), "
                                        "or left for the next run because their chunk failed (failed)", ["result"], registry=r)
        self.invoices_issued = Counter("univers_invoices_issued", "Invoices and credit notes issued (numbered), "
                                       "by storefront and kind", ["storefront", "kind"], registry=r)
        self.dunning_steps = Counter("univers_dunning_steps", "Dunning steps taken, by step", ["step"], registry=r)
        self.charges = Counter("univers_charges", "Gateway charges, by outcome (succeeded, failed, pending; retry: no "
                               "answer, tried again; cancelled: the invoice was paid meanwhile)", ["outcome"], registry=r)
        self.usage_records = Counter("univers_usage_records", "Usage records received, by result (ingested, "
                                     "duplicate, rejected)", ["result"], registry=r)
        self.usage_rejected = Counter("univers_usage_records_rejected", "Usage records rejected, by reason",
                                      ["reason"], registry=r)
        self._counters = {"invoices_issued": self.invoices_issued, "charges": self.charges,
                          "usage_records": self.usage_records, "usage_rejected": self.usage_rejected,
                          "dunning_steps": self.dunning_steps}

    def renewal_run(self, seconds: float, renewed: int, failed: int, dunning: dict[str, int]) -> None:
        """One renewal run is over: its duration, its services and the dunning steps it took."""
        self.renewal_runs.inc()
        self.renewal_duration.observe(seconds)
        self.renewal_services.labels("renewed").inc(renewed)
        self.renewal_services.labels("failed").inc(failed)
        for step in DUNNING_STEPS:
            self.dunning_steps.labels(step).inc(dunning.get(step, 0))

    def apply(self, pending: Iterable[tuple[str, tuple[str, ...], float]]) -> None:
        """Apply the increments a unit of work collected (:func:`count`), after its commit."""
        for name, labels, amount in pending:
            self._counters[name].labels(*labels).inc(amount)


def count(conn: Connection, name: str, amount: float, *labels: str) -> None:
    """Count ``amount`` on the counter ``name`` (labels in its order) once this connection's
    transaction commits; nothing if it rolls back."""
    if amount:
        conn.info.setdefault(PENDING_KEY, []).append((name, tuple(labels), amount))


# --- read at scrape time ---------------------------------------------------------------------

box = OutboxItem.__table__
note = Notification.__table__
pay = Payment.__table__
# queue → (table, status of what waits, status of what is parked or None); each status test is
# answered by an index: ix_outbox_due and ix_notification_due (status first), ix_payment_queued
QUEUES = {"outbox": (box, "pending", "parked"), "charges": (pay, "queued", None), "mail": (note, "pending", "parked")}


class QueueCollector(Collector):
    """Gauges read from the database when Prometheus scrapes: the depth of each queue, how many
    items are parked, and the age of the oldest parked one (since it was queued)."""

    def __init__(self, rt: Runtime):
        self.rt = rt

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("univers_queue_depth", "Items waiting in a queue (outbox: infrastructure "
                                  "actions; charges: gateway charges; mail: notifications)", labels=["queue"])
        parked = GaugeMetricFamily("univers_queue_parked", "Items parked after their last try", labels=["queue"])
        oldest = GaugeMetricFamily("univers_queue_oldest_parked_age_seconds",
                                   "Age of the oldest parked item since it was queued (0: none parked)", labels=["queue"])
        now = self.rt.clock.now()
        with self.rt.engine.connect() as conn:
            for queue, (table, waiting, stuck) in QUEUES.items():
                depth.add_metric([queue], _count(conn, table, waiting))
                if stuck is None:
                    continue
                n, first = conn.execute(select(func.count(), func.min(table.c.created_at))
                                        .where(table.c.status == stuck)).one()
                parked.add_metric([queue], n)
                oldest.add_metric([queue], _age(now, first))
        yield from (depth, parked, oldest)


def _count(conn: Connection, table, status: str) -> int:
    return conn.execute(select(func.count()).select_from(table).where(table.c.status == status)).scalar_one()


def _age(now: dt.datetime, first: dt.datetime | None) -> float:
    if first is None:
        return 0.0
    if first.tzinfo is None:  # SQLite drops the zone; the database keeps UTC
        first = first.replace(tzinfo=dt.UTC)
    return max(0.0, (now - first).total_seconds())
