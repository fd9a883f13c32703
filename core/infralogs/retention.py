"""How long infrastructure log entries are kept: ``logs_kept`` days of their universe's ladder
(:class:`core.context.DunningPolicy`, data of each universe plugin; the core's default for a
universe that sets none). A service's entries also go with its data (the outbox's ``delete``,
core/lifecycle/outbox.py).

The purge is set-based in chunks: each statement deletes at most ``chunk`` entries of one
universe by id, found through the page index ``(service_id, at, id)``, and commits, so that
neither engine holds a long write lock and a crash loses nothing (the next run goes on).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import delete, select

from core.models import InfraLogEntry, Service
from core.runtime import Runtime
from core.uow import unit_of_work

logs = InfraLogEntry.__table__
svc = Service.__table__


@dataclass
class Purged:
    deleted: int = 0
    by_universe: dict[str, int] = field(default_factory=dict)


def purge(rt: Runtime, chunk: int = 10_000) -> Purged:
    """Delete the entries older than their universe's retention: one pass per universe of the
    catalog, then one for services of a universe no plugin sells any more (the core's default).
    Safe to run again or on several workers (a row deleted twice is deleted once)."""
    done = Purged()
    now = rt.clock.now()
    known = sorted({p.universe for p in rt.catalog.products.values()})
    passes = [(u, svc.c.universe == u, rt.ladder(u).logs_kept) for u in known]
    passes.append(("*", svc.c.universe.not_in(known) if known else svc.c.id.is_not(None), rt.ladder("*").logs_kept))
    for universe, mine, days in passes:
        before = now - dt.timedelta(days=days)
        services = select(svc.c.id).where(mine)
        while True:
            with unit_of_work(rt) as conn:
                ids = select(logs.c.id).where(logs.c.service_id.in_(services), logs.c.at < before).limit(chunk)
                n = conn.execute(delete(logs).where(logs.c.id.in_(ids.scalar_subquery())),
                                 execution_options={"preserve_rowcount": True}).rowcount
            if n:
                done.deleted += n
                done.by_universe[universe] = done.by_universe.get(universe, 0) + n
            if n < chunk:
                break
    return done
