"""Usage records of pay-as-you-go projects: ingestion, closed periods and the month so far.

A record says that a project (a service billed by use: a service of a product kind that a metric
of its universe measures, ``MetricSpec.service_kind``) used a quantity of a metric
(contributed by its universe's plugin, :class:`core.context.MetricSpec`) at a moment. Its sender
names it with an id of its own; the pair (project, id) is unique in ``usage_record``, so a
record sent twice — in one batch or in two, by a retry after a timeout — counts once.

Ingestion is set-based whatever the batch size: the records are written into a per-connection
staging table (binary ``COPY`` on PostgreSQL, ``executemany`` on SQLite), then one statement checks
them all against the services and the closed periods and inserts the good ones
(``INSERT … SELECT … ON CONFLICT DO NOTHING``) and lists the rejected ones with their reasons (on
PostgreSQL one data-modifying ``WITH``; on SQLite, which has none, a second ``SELECT``). Python
only parses: it never queries per record.

Quantities are integers of micro-units (millionths of the metric's unit): exact on both
engines, which the later rating sums and prices in SQL. A record is billed in the UTC month of
its timestamp (``period``, its first day); once that month is closed for a project
(:func:`close_period`, by the monthly run, :mod:`core.usage.metering`), late records for it are
refused; how a batch and the run's close never lose a record is told in :mod:`core.usage.metering`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Annotated

import msgspec
from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Integer,
    MetaData,
    Table,
    Text,
    and_,
    case,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.engine import Connection

from core import telemetry
from core.access import PERMISSIONS, SERVICE_ROLES
from core.audit import Actor
from core.clock import UTC
from core.db import exact_sum, exact_total, insert_ignore
from core.errors import InvalidInput, TooLarge
from core.i18n import N_
from core.lifecycle.services import get_service
from core.models import Service, UsagePeriod, UsageRecord, UTCDateTime
from core.runtime import Runtime

MAX_BATCH = 10_000  # records per request
SCALE = 1_000_000  # quantities are kept in micro-units
MAX_MICRO = 2**63 - 1
MAX_ID = 2**63 - 1
INGEST_ACTION = "service.technical"  # who may send a project's usage: its admin and tech contacts (and support staff)

records, periods, svc = UsageRecord.__table__, UsagePeriod.__table__, Service.__table__

# Why a record is refused: a stable code, and what its sender reads (in its language).
REASONS: dict[str, str] = {
    "project_not_found": N_("No such project."),
    "not_a_project": N_("This service is not a project billed by use."),
    "role_forbids": N_("Your role on this project does not allow sending its usage."),
    "invalid_id": N_("A record id is 1 to 64 characters."),
    "unknown_metric": N_("This project's universe has no such metric."),
    "invalid_dimension": N_("The dimension is missing, not expected, or not one this metric knows."),
    "invalid_quantity": N_("The quantity must be a number with at most 6 decimals."),
    "negative_quantity": N_("The quantity cannot be negative."),
    "future_timestamp": N_("The timestamp is in the future."),
    "closed_period": N_("This month is already invoiced for this project; late records are refused."),
}


class UsageRecordIn(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One record as its sender writes it."""

    id: str  # the sender's own id, unique per project (1 to 64 characters)
    project: int  # the project's service id
    metric: str
    quantity: msgspec.Raw  # a decimal string ("0.000125") or a JSON number, at most 6 decimals: read exactly by to_micro
    at: Annotated[dt.datetime, msgspec.Meta(tz=True)]  # RFC 3339, with its offset
    dimension: str | None = None  # e.g. the instance flavour ("b3-8") for instance hours


class UsageBatch(msgspec.Struct, forbid_unknown_fields=True):
    records: list[UsageRecordIn]


def decode_batch(body: bytes) -> list[UsageRecordIn]:
    """Parse a request body straight into records (msgspec, no intermediate dicts)."""
    try:
        batch = msgspec.json.decode(body, type=UsageBatch)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise InvalidInput(N_("The usage batch is malformed: {error}"), code="invalid_usage_batch", error=str(exc)) from None
    if len(batch.records) > MAX_BATCH:
        raise TooLarge(N_("A usage batch holds at most {max} records; this one has {count}."), code="too_many_records",
                       max=MAX_BATCH, count=len(batch.records))
    return batch.records


@dataclass
class Ingested:
    """What became of a batch: ``accepted`` new records, ``duplicates`` already known (or sent twice
    in the batch), and the ``rejected`` ones as (position in the batch, reason code)."""

    received: int
    accepted: int
    duplicates: int
    rejected: list[tuple[int, str]] = field(default_factory=list)


# The staging table: one per connection (a temporary table), emptied after each batch.
_staging_meta = MetaData()
staging = Table(
    "usage_in_v1", _staging_meta,
    Column("pos", Integer), Column("record_id", Text), Column("project", BigInteger), Column("metric", Text),
    Column("dimension", Text), Column("quantity_micro", BigInteger), Column("at", UTCDateTime()),
    Column("period", Date), Column("bad", Text),
    prefixes=["TEMPORARY"],
)
_COLUMNS = "pos, record_id, project, metric, dimension, quantity_micro, at, period, bad"
_PG_STAGING = ("CREATE TEMPORARY TABLE IF NOT EXISTS usage_in_v1 (pos integer, record_id text, project bigint, metric text, "
               "dimension text, quantity_micro bigint, at timestamptz, period date, bad text) ON COMMIT DELETE ROWS")
_PG_TYPES = ["int4", "text", "int8", "text", "text", "int8", "timestamptz", "date", "text"]  # of _PG_STAGING's columns
_SQLITE_STAGING = ("CREATE TEMPORARY TABLE IF NOT EXISTS usage_in_v1 (pos INTEGER, record_id TEXT, project INTEGER, metric TEXT, "
                   "dimension TEXT, quantity_micro INTEGER, at TEXT, period TEXT, bad TEXT)")

_EXACT = decimal.Context(prec=40, Emax=999, Emin=-999,
                         traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow, decimal.Underflow])


_PLAIN = re.compile(rb'("?)(-?)([0-9]{1,13})(?:\.([0-9]{1,6}))?\1')  # the common case, read without Decimal
_PAD = [10**6, 10**5, 10**4, 10**3, 100, 10, 1]
_UNREAD = object()


def to_micro(quantity: decimal.Decimal | msgspec.Raw | str) -> int | None:
    """The quantity in micro-units, or None when it is not a finite number with at most 6 decimals
    that fits 64 bits (never rounded). A raw JSON value is read from its text, string or number."""
    if isinstance(quantity, msgspec.Raw):
        raw = bytes(quantity)
        plain = _PLAIN.fullmatch(raw)
        if plain is not None:
            _, sign, whole, frac = plain.groups()
            value = int(whole) * SCALE + (int(frac) * _PAD[len(frac)] if frac else 0)
            return None if value > MAX_MICRO else -value if sign else value
        try:
            quantity = msgspec.json.decode(raw, type=str) if raw[:1] == b'"' else raw.decode()
        except (msgspec.DecodeError, UnicodeDecodeError):
            return None
    try:
        if isinstance(quantity, str):  # decimal notation (exponents too), but no spaces, underscores or words
            if len(quantity) > 100 or not quantity or quantity.strip() != quantity or "_" in quantity:
                return None
            quantity = decimal.Decimal(quantity)
        micro = _EXACT.scaleb(quantity, 6)
        if micro != micro.to_integral_value():
            return None
        value = int(micro)
    except (ArithmeticError, ValueError):
        return None
    return value if -MAX_MICRO <= value <= MAX_MICRO else None


def format_micro(micro: int) -> str:
    """Micro-units as an exact decimal string, without trailing zeros (``1500000`` → ``"1.5"``)."""
    whole, frac = divmod(abs(int(micro)), SCALE)
    text = f"{whole}.{frac:06d}".rstrip("0").rstrip(".")
    return f"-{text}" if micro < 0 else text


def month_of(day: dt.date) -> dt.date:
    return dt.date(day.year, day.month, 1)


def _rows(batch: list[UsageRecordIn], sqlite: bool) -> Iterator[tuple]:
    """Staging rows, in batch order. What can be told without the database (a malformed id or
    quantity) is written in ``bad``; the rest is checked in SQL. Each distinct quantity text of
    the batch is read once (senders repeat them: an instance hour is "1"), and each month's date
    made once. The rows are yielded to the driver one by one: ten thousand tuples kept alive at
    once would be promoted through the garbage collector's generations, whose full collections
    then walk the whole server's heap."""
    micros: dict[bytes, int | None] = {}
    months: dict[int, dt.date] = {}
    for pos, r in enumerate(batch):
        raw = bytes(r.quantity)
        micro = micros.get(raw, _UNREAD)
        if micro is _UNREAD:
            micro = micros[raw] = to_micro(r.quantity)
        bad = None
        if not 0 < len(r.id) <= 64:
            bad = "invalid_id"
        if micro is None:
            bad, micro = bad or "invalid_quantity", 0
        dimension = r.dimension
        if dimension is not None and not 0 < len(dimension) <= 64:
            bad = bad or "invalid_dimension"
        project = r.project
        if not 0 < project <= MAX_ID:
            project = None
        at = r.at
        if at.tzinfo is not UTC:
            at = at.astimezone(UTC)
        month = at.year * 12 + at.month
        period = months.get(month)
        if period is None:
            period = months[month] = dt.date(at.year, at.month, 1)
        if sqlite:  # SQLAlchemy's storage format for SQLite, so that values compare as text
            yield (pos, r.id, project, r.metric, dimension, micro,
                   at.replace(tzinfo=None).isoformat(" ", "microseconds"), period.isoformat(), bad)
        else:
            yield (pos, r.id, project, r.metric, dimension, micro, at, period, bad)


def _stage(conn: Connection, rows: Iterable[tuple]) -> None:
    raw = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_PG_STAGING)
        # binary COPY with the column types said: psycopg dumps each value in C (the text format
        # formats timestamps and dates in Python, four times slower)
        with raw.cursor() as cur, cur.copy(f"COPY usage_in_v1 ({_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_PG_TYPES)
            for row in rows:
                copy.write_row(row)
    else:
        conn.exec_driver_sql(_SQLITE_STAGING)
        conn.exec_driver_sql("DELETE FROM usage_in_v1")
        raw.executemany("INSERT INTO usage_in_v1 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _checked(rt: Runtime, actor: Actor, now: dt.datetime):
    """The staging rows joined to their project and closed period, with ``reason`` (NULL when
    the record is good): the whole validation as one SQL expression."""
    s = staging.c
    allowed_roles = PERMISSIONS[INGEST_ACTION][1]
    if actor.is_staff:
        seen = literal(True)  # staff see every service; their back-office role decides
        may_send = literal(actor.is_system or actor.staff_role in allowed_roles)
    else:  # the services it has a role on: another account's project is not even joined
        columns = {role: svc.c[f"{role}_account_id"] for role in SERVICE_ROLES}
        seen = or_(*(c == actor.account_id for c in columns.values()))
        may_send = or_(*(columns[r] == actor.account_id for r in SERVICE_ROLES if r in allowed_roles))
    metrics = rt.metrics.values()
    universe_of = case({m.code: m.universe for m in metrics}, value=s.metric, else_=None) if metrics else literal(None)
    kind_of = case({m.code: m.service_kind for m in metrics}, value=s.metric, else_=None) if metrics else literal(None)
    metered = or_(*(and_(svc.c.universe == u, svc.c.kind == k) for u, k in sorted(rt.metered_kinds))) if metrics \
        else literal(False)  # a project: a service of a kind some metric of its universe measures
    dimension_ok = or_(*(and_(s.metric == m.code,
                              s.dimension.is_(None) if m.dimension is None else s.dimension.is_not(None),
                              *([s.dimension.in_(m.values)] if m.dimension is not None and m.values is not None else []))
                         for m in metrics)) if metrics else literal(False)
    reason = case(
        (svc.c.id.is_(None), "project_not_found"),
        (~metered, "not_a_project"),
        (~may_send, "role_forbids"),
        (s.bad.is_not(None), s.bad),
        (or_(func.coalesce(universe_of, "") != svc.c.universe, func.coalesce(kind_of, "") != svc.c.kind), "unknown_metric"),
        (~func.coalesce(dimension_ok, False), "invalid_dimension"),  # NULL is never "good"
        (s.quantity_micro < 0, "negative_quantity"),
        (s.at > now, "future_timestamp"),
        (periods.c.service_id.is_not(None), "closed_period"),
        else_=None,
    ).label("reason")
    joined = (staging.outerjoin(svc, and_(svc.c.id == s.project, seen))
              .outerjoin(periods, and_(periods.c.service_id == s.project, periods.c.period == s.period)))
    return joined, reason


def ingest(conn: Connection, rt: Runtime, actor: Actor, batch: list[UsageRecordIn]) -> Ingested:
    """Store a batch of usage records, each once; refuse the invalid ones one by one and keep
    the others. A few statements whatever the batch size: stage, then on PostgreSQL lock the
    batch's projects and insert and list the rejected in one statement; on SQLite insert, then
    list the rejected."""
    if len(batch) > MAX_BATCH:
        raise TooLarge(N_("A usage batch holds at most {max} records; this one has {count}."), code="too_many_records",
                       max=MAX_BATCH, count=len(batch))
    if not batch:
        return Ingested(0, 0, 0)
    now = rt.clock.now()
    postgres = conn.dialect.name == "postgresql"
    _stage(conn, _rows(batch, not postgres))
    joined, reason = _checked(rt, actor, now)
    s = staging.c
    columns = ["service_id", "record_id", "metric", "dimension", "quantity_micro", "at", "period", "received_at"]
    if postgres:
        # The batch's projects, key-share locked until commit: the monthly run holds FOR UPDATE on
        # the projects it rates and closes, so a batch either commits before it sums or waits and
        # then sees the period closed (core/usage/metering.py): the insert below is a later statement,
        # with a snapshot taken after the lock. Plain updates of a service do not block it.
        projects = sorted({r.project for r in batch if 0 < r.project <= MAX_ID})
        conn.exec_driver_sql("SELECT id FROM service WHERE id = ANY(%(ids)s) ORDER BY id FOR KEY SHARE", {"ids": projects})
        # One statement: the checked rows (materialized once), the good ones inserted, the
        # number inserted and the rejected listed, in batch order.
        checked = (select(s.pos, s.project, s.record_id, s.metric, s.dimension, s.quantity_micro, s.at, s.period, reason)
                   .select_from(joined).cte("checked"))
        c = checked.c
        inserted = (insert_ignore(conn, records)
                    .from_select(columns, select(c.project, c.record_id, c.metric, c.dimension, c.quantity_micro, c.at,
                                                 c.period, literal(now, UTCDateTime())).where(c.reason.is_(None)))
                    .returning(records.c.service_id).cte("inserted"))
        counted = select(func.count().label("accepted")).select_from(inserted).subquery()
        result = conn.execute(select(counted.c.accepted, c.pos, c.reason)
                              .select_from(counted.outerjoin(checked, c.reason.is_not(None))).order_by(c.pos)).all()
        accepted = result[0].accepted
        rejected = [(pos, code) for _, pos, code in result if code is not None]
        # the staging rows go at commit (ON COMMIT DELETE ROWS)
    else:
        good = (select(s.project, s.record_id, s.metric, s.dimension, s.quantity_micro, s.at, s.period,
                       literal(now, UTCDateTime()))
                .select_from(joined).where(reason.is_(None)))
        accepted = conn.execute(insert_ignore(conn, records).from_select(columns, good),
                                execution_options={"preserve_rowcount": True}).rowcount
        bad = select(s.pos, reason).select_from(joined).subquery()
        rejected = [(pos, code) for pos, code in
                    conn.execute(select(bad).where(bad.c.reason.is_not(None)).order_by(bad.c.pos))]
        conn.exec_driver_sql("DELETE FROM usage_in_v1")
    done = Ingested(len(batch), accepted, len(batch) - len(rejected) - accepted, rejected)
    telemetry.count(conn, "usage_records", done.accepted, "ingested")
    telemetry.count(conn, "usage_records", done.duplicates, "duplicate")
    telemetry.count(conn, "usage_records", len(rejected), "rejected")
    for reason, n in Counter(code for _, code in rejected).items():
        telemetry.count(conn, "usage_rejected", n, reason)
    return done


def close_period(conn: Connection, service_id: int, period: dt.date, *, at: dt.datetime, invoice_id: int | None = None) -> bool:
    """Close a project's month (the monthly run does, once it has invoiced it): later records
    for it are refused. Closing it again changes nothing; returns whether it was open."""
    if period.day != 1:
        raise InvalidInput(N_("A usage period is a month, named by its first day."), code="invalid_period")
    done = conn.execute(insert_ignore(conn, periods).values(service_id=service_id, period=period, closed_at=at,
                                                            invoice_id=invoice_id),
                        execution_options={"preserve_rowcount": True})
    return done.rowcount == 1


def is_closed(conn: Connection, service_id: int, period: dt.date) -> bool:
    return conn.execute(select(periods.c.service_id).where(periods.c.service_id == service_id,
                                                           periods.c.period == period)).first() is not None


def usage_so_far(conn: Connection, actor: Actor, service_id: int, period: dt.date) -> tuple[dict, list[dict]]:
    """A project's usage in a month: the service row, and per (metric, dimension) the summed
    quantity in micro-units and the number of records. For its contacts and staff (``service.read``)."""
    row = get_service(conn, actor, service_id, action="service.read")
    if period.day != 1:
        raise InvalidInput(N_("A usage period is a month, named by its first day."), code="invalid_period")
    q = (select(records.c.metric, records.c.dimension, *exact_sum(records.c.quantity_micro), func.count())
         .where(records.c.period == period, records.c.service_id == service_id)
         .group_by(records.c.metric, records.c.dimension)
         .order_by(records.c.metric, records.c.dimension))
    return row, [{"metric": m, "dimension": d, "quantity_micro": exact_total(high, low), "records": n}
                 for m, d, high, low, n in conn.execute(q)]
