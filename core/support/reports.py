"""Support reports: how a queue kept its promises over the tickets opened in a period.

One row per storefront, universe and level: how many tickets opened, were answered and solved;
the median and 90th percentile of the time to first response and to resolution, in the level's
hours (business or calendar, as its clocks count) without the time spent waiting for the customer;
the breaches per target and the service credits they gave, per currency.

The times are replayed from each ticket's log (:func:`core.support.clocks.response_times`), not
read from the clocks of its targets: a ticket answered on a level that promises no first response,
or answered and solved in one step, still has its first-response time. Tickets are read by chunks
of ids, each chunk's logs and breaches in one query each.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.engine import Connection

from core.errors import InvalidInput
from core.i18n import N_
from core.models import Invoice, SlaBreach, SupportTicket
from core.runtime import Runtime
from core.support.clocks import TARGETS, response_times
from core.support.sla import logs, terms_and_hours

tk = SupportTicket.__table__
breach = SlaBreach.__table__
inv = Invoice.__table__
CHUNK = 1000
MAX_DAYS = 365


@dataclass
class ReportRow:
    storefront: str
    universe: str
    level: str
    opened: int = 0
    answered: int = 0  # tickets with a first response (an agent's public reply)
    solved: int = 0  # solved or closed
    first_response: list[int] = field(default_factory=list)  # minutes, one per answered ticket
    resolution: list[int] = field(default_factory=list)  # minutes, one per solved ticket
    breaches: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TARGETS, 0))
    credits: dict[str, int] = field(default_factory=dict)  # currency -> minor units

    def summary(self) -> dict:
        return {"storefront": self.storefront, "universe": self.universe, "level": self.level,
                "opened": self.opened, "answered": self.answered, "solved": self.solved,
                "first_response_minutes": _percentiles(self.first_response),
                "resolution_minutes": _percentiles(self.resolution),
                "breaches": dict(self.breaches), "credits": dict(sorted(self.credits.items()))}


def _percentiles(values: list[int]) -> dict[str, int | None]:
    """The median and 90th percentile (nearest rank), None without values."""
    if not values:
        return {"count": 0, "p50": None, "p90": None}
    ordered = sorted(values)
    rank = lambda q: ordered[max(0, -(-len(ordered) * q // 100) - 1)]  # noqa: E731 - ceil(n q / 100), 1-based
    return {"count": len(ordered), "p50": rank(50), "p90": rank(90)}


def _minutes(delta: dt.timedelta) -> int:
    return int(delta // dt.timedelta(minutes=1))


def support_report(conn: Connection, rt: Runtime, first: dt.date, last: dt.date, queue: str = "support") -> list[dict]:
    """The report of a queue for the tickets opened from ``first`` to ``last`` (included, UTC days),
    a row per storefront, universe and level, in that order."""
    if last < first or (last - first).days > MAX_DAYS:
        raise InvalidInput(N_("A report covers 1 to {most} days: the first day, then the last one."),
                           code="invalid_period", most=MAX_DAYS + 1)
    since = dt.datetime.combine(first, dt.time(0), dt.timezone.utc)
    until = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), dt.timezone.utc)
    rows: dict[tuple[str, str, str], ReportRow] = {}
    after = 0
    while True:
        chunk = [dict(r) for r in conn.execute(
            select(tk.c.id, tk.c.storefront, tk.c.universe, tk.c.level_code, tk.c.queue)
            .where(tk.c.queue == queue, tk.c.created_at >= since, tk.c.created_at < until, tk.c.id > after)
            .order_by(tk.c.id).limit(CHUNK)).mappings()]
        if not chunk:
            break
        after = chunk[-1]["id"]
        _add(conn, rt, rows, chunk)
    return [rows[k].summary() for k in sorted(rows)]


def _add(conn: Connection, rt: Runtime, rows: dict, chunk: list[dict]) -> None:
    chunk_logs = logs(conn, [t["id"] for t in chunk])
    group_of = {}
    for t in chunk:
        key = (t["storefront"], t["universe"], t["level_code"])
        row = rows.get(key) or rows.setdefault(key, ReportRow(*key))
        group_of[t["id"]] = row
        row.opened += 1
        first, resolved = response_times(chunk_logs[t["id"]], terms_and_hours(rt, t)[1])
        if first is not None:
            row.answered += 1
            row.first_response.append(_minutes(first))
        if resolved is not None:
            row.solved += 1
            row.resolution.append(_minutes(resolved))
    q = (select(breach.c.ticket_id, breach.c.target, breach.c.credit_minor, inv.c.currency)
         .outerjoin(inv, inv.c.id == breach.c.credit_note_id).where(breach.c.ticket_id.in_(list(group_of))))
    for b in conn.execute(q):  # one per ticket and target (the unique key)
        row = group_of[b.ticket_id]
        row.breaches[b.target] += 1
        if b.currency is not None:
            row.credits[b.currency] = row.credits.get(b.currency, 0) + b.credit_minor
