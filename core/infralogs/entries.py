"""A service's infrastructure log entries: ingestion, pages and the live tail.

An entry is sent by the infrastructure (a staff key whose role may ``service.logs.send``, or a
system job) in batches: either as an entry (severity, source, message, fields) or as a raw
event of the universe's own shape, which its plugin translates (``univers_translate_infra_event``).
Each names itself with an id of its sender; (service, id) is unique in ``infra_log``, so a batch
sent again — after a timeout — is stored once.

A batch is checked whole before anything is written: one bad entry refuses the batch (422,
naming the entry's position), so that a sender fixes its encoder rather than losing lines.
Ingestion is set-based whatever the batch size: on PostgreSQL the rows go into a per-connection
staging table by binary ``COPY`` and one ``INSERT … SELECT`` stores those not stored yet;
on SQLite one ``executemany`` of ``INSERT … ON CONFLICT DO NOTHING``. Python only parses.

Reading is for the service's admin and tech contacts and staff (``service.logs``), not its
billing contact; another account's service answers 404 like every service route.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
import psycopg
from sqlalchemy import select, tuple_
from sqlalchemy.engine import Connection

from core.audit import Actor
from core.clock import UTC
from core.context import SEVERITIES, InfraEventContext
from core.errors import InvalidInput, TooLarge
from core.i18n import N_
from core.lifecycle.services import get_service
from core.models import InfraLogEntry
from core.runtime import Runtime

MAX_BATCH = 10_000  # entries (and events) per request
MAX_PAGE = 200
MAX_MESSAGE = 2000
MAX_FIELDS = 4096  # bytes of an entry's fields, as JSON
SKEW = dt.timedelta(minutes=5)  # how far ahead of our clock an entry's time may be (the sender's clock drifts)
READ = "service.logs"
SEND = "service.logs.send"

logs = InfraLogEntry.__table__

Severity = Literal["debug", "info", "notice", "warning", "error", "critical"]
EntryId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/@-]+$")]
EventId = Annotated[str, msgspec.Meta(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9._:/@-]+$")]
Source = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_.-]{0,31}$")]
# printable text: tabs and line breaks, but no other control character (nor DEL)
Message = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_MESSAGE, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]+$")]
When = Annotated[dt.datetime, msgspec.Meta(tz=True)]
_SOURCE = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class EntryIn(msgspec.Struct, forbid_unknown_fields=True):
    """One entry as the infrastructure writes it."""

    id: EntryId  # the sender's own id, unique per service
    at: When  # RFC 3339 with its offset
    severity: Severity
    source: Source  # e.g. hardware, network, ddos, intervention
    message: Message
    fields: dict[str, Any] | None = None  # structured details (JSON values)


class EventIn(msgspec.Struct, forbid_unknown_fields=True):
    """A raw event of the universe's infrastructure, translated by its plugin."""

    id: EventId
    event: dict[str, Any]  # the plugin's own shape: a ``type`` and whatever it says
    at: When | None = None  # when it happened (default: when it is received)


class LogBatch(msgspec.Struct, forbid_unknown_fields=True):
    entries: list[EntryIn] = []
    events: list[EventIn] = []


@dataclass
class Ingested:
    received: int  # entries, after translating the events
    accepted: int  # new entries stored
    duplicates: int  # already stored (or sent twice in the batch): stored once


def decode_batch(body: bytes) -> LogBatch:
    """Parse a request body straight into entries (msgspec); the error names the bad field."""
    try:
        batch = msgspec.json.decode(body, type=LogBatch)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise InvalidInput(N_("The log batch is malformed: {error}"), code="invalid_log_batch", error=str(exc)) from None
    count = len(batch.entries) + len(batch.events)
    if count > MAX_BATCH:
        raise TooLarge(N_("A log batch holds at most {max} entries; this one has {count}."), code="too_many_entries",
                       max=MAX_BATCH, count=count)
    return batch


def _bad(index: int, field: str, template: str, code: str, **params: Any) -> InvalidInput:
    return InvalidInput(template, code=code, errors=[{"index": index, "field": field}], index=index, **params)


_LEVEL = {name: level for level, name in enumerate(SEVERITIES)}


def _fields_json(fields: Any, index: int) -> str | None:
    if not fields:
        return None
    encoded = msgspec.json.encode(fields)
    if len(encoded) > MAX_FIELDS:
        raise _bad(index, "fields", N_("Entry {index}: its fields take more than {max} bytes as JSON."),
                   "log_fields_too_large", max=MAX_FIELDS)
    return encoded.decode()


def _rows(rt: Runtime, service: dict, batch: LogBatch, now: dt.datetime) -> list[tuple]:
    """(entry id, at, severity level, source, message, fields as JSON text) per entry, checked;
    the first bad one refuses the batch."""
    latest = now + SKEW
    rows = []
    level = _LEVEL
    for i, e in enumerate(batch.entries):
        at = e.at
        if at.tzinfo is not UTC:
            at = at.astimezone(UTC)
        if at > latest:
            raise _bad(i, "at", N_("Entry {index} is dated in the future."), "future_timestamp")
        rows.append((e.id, at, level[e.severity], e.source, e.message, _fields_json(e.fields, i) if e.fields else None))
    for k, ev in enumerate(batch.events):
        i = len(batch.entries) + k
        at = ev.at.astimezone(UTC) if ev.at is not None else now
        if at > latest:
            raise _bad(i, "at", N_("Entry {index} is dated in the future."), "future_timestamp")
        entries = rt.pm.hook.univers_translate_infra_event(ctx=InfraEventContext(
            service_id=service["id"], universe=service["universe"], product_kind=service["kind"],
            resource=service["resource"], event=ev.event, now=now, settings=rt.settings))
        if entries is None:
            raise _bad(i, "event", N_("Entry {index}: no plugin reads the events of this service's universe."),
                       "untranslatable_event")
        for j, t in enumerate(entries):
            message = _CONTROL.sub(" ", t.message)[:MAX_MESSAGE] or "-"
            if t.severity not in SEVERITIES or not _SOURCE.match(t.source):
                raise _bad(i, "event", N_("Entry {index}: its universe's plugin translated it into an invalid entry."),
                           "untranslatable_event")
            rows.append((ev.id if j == 0 else f"{ev.id}#{j}", (t.at or at).astimezone(UTC), SEVERITIES.index(t.severity),
                         t.source, message, _fields_json(dict(t.fields), i)))
    return rows


_PG_STAGING = ("CREATE TEMPORARY TABLE IF NOT EXISTS infra_log_in (entry_id text, at timestamptz, severity int2, "
               "source text, message text, fields text) ON COMMIT DELETE ROWS")
_PG_TYPES = ["text", "timestamptz", "int2", "text", "text", "text"]
_PG_COLUMNS = ("INSERT INTO infra_log (service_id, entry_id, at, severity, source, message, fields, received_at) "
               "SELECT {distinct}%(service)s, entry_id, at, severity, source, message, fields::json, %(now)s FROM infra_log_in i ")
# The usual case, a batch of new entries: an anti-join on the idempotency key (a third faster
# than ON CONFLICT's speculative insertion of every row), each id once within the batch.
_PG_INSERT_NEW = _PG_COLUMNS.format(distinct="DISTINCT ON (entry_id) ") + (
    "WHERE NOT EXISTS (SELECT 1 FROM infra_log l WHERE l.service_id = %(service)s AND l.entry_id = i.entry_id)")
# When another sender stored some of the same entries meanwhile (the anti-join could not see
# them): ON CONFLICT, row by row.
_PG_INSERT_RACED = _PG_COLUMNS.format(distinct="") + "ON CONFLICT DO NOTHING"
_SQLITE_INSERT = ("INSERT INTO infra_log (service_id, entry_id, at, severity, source, message, fields, received_at) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")


def _sqlite_time(at: dt.datetime) -> str:  # SQLAlchemy's storage format for SQLite, so that values compare as text
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def store(conn: Connection, service_id: int, rows: list[tuple], now: dt.datetime) -> int:
    """Write checked rows (see :func:`_rows`) for one service, each once; returns how many were new."""
    if not rows:
        return 0
    raw = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_PG_STAGING)
        with raw.cursor() as cur:
            with cur.copy("COPY infra_log_in (entry_id, at, severity, source, message, fields) FROM STDIN (FORMAT BINARY)") \
                    as copy:
                copy.set_types(_PG_TYPES)
                for row in rows:
                    copy.write_row(row)
            params = {"service": service_id, "now": now}
            try:
                with raw.transaction():  # a savepoint: a race on the key undoes this statement only
                    cur.execute(_PG_INSERT_NEW, params)
            except psycopg.errors.UniqueViolation:
                cur.execute(_PG_INSERT_RACED, params)
            accepted = cur.rowcount
            cur.execute("DELETE FROM infra_log_in")  # a second batch in the same transaction starts empty
        return accepted
    received = _sqlite_time(now)
    cur = raw.cursor()
    try:
        cur.executemany(_SQLITE_INSERT, ((service_id, e, _sqlite_time(at), lvl, src, msg, f, received)
                                         for e, at, lvl, src, msg, f in rows))
        return cur.rowcount
    finally:
        cur.close()


def ingest(conn: Connection, rt: Runtime, actor: Actor, service_id: int, batch: LogBatch) -> Ingested:
    """Store a batch of a service's log entries (and raw events, translated), each once. The
    sender may ``service.logs.send`` on it (staff, the infrastructure's system jobs); a service it
    cannot see answers 404."""
    service = get_service(conn, actor, service_id, action=SEND)
    now = rt.clock.now()
    rows = _rows(rt, service, batch, now)
    accepted = store(conn, service_id, rows, now)
    return Ingested(len(rows), accepted, len(rows) - accepted)


# --- reading -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    since: dt.datetime | None = None  # at or after
    until: dt.datetime | None = None  # before
    severity: str | None = None  # at least this level
    source: str | None = None

    def conditions(self) -> list:
        out = []
        if self.since is not None:
            out.append(logs.c.at >= self.since)
        if self.until is not None:
            out.append(logs.c.at < self.until)
        if self.severity is not None:
            if self.severity not in SEVERITIES:
                raise InvalidInput(N_("The severity is one of: {severities}."), code="invalid_severity",
                                   severities=", ".join(SEVERITIES))
            level = SEVERITIES.index(self.severity)
            if level:
                out.append(logs.c.severity >= level)
        if self.source is not None:
            if not _SOURCE.match(self.source):
                raise InvalidInput(N_("A source is 1 to 32 lower-case letters, digits, dots, dashes or underscores."),
                                   code="invalid_source")
            out.append(logs.c.source == self.source)
        return out


_COLUMNS = (logs.c.id, logs.c.entry_id, logs.c.at, logs.c.severity, logs.c.source, logs.c.message, logs.c.fields)


def _entry(row) -> dict:
    return {"id": row.entry_id, "at": row.at, "severity": SEVERITIES[row.severity], "source": row.source,
            "message": row.message, "fields": row.fields or {}, "seq": row.id}


def _cursor(row) -> str:
    return f"{row.at.strftime('%Y%m%dT%H%M%S.%fZ')}|{row.id}"


def _read_cursor(cursor: str) -> tuple[dt.datetime, int]:
    try:
        at_text, _, id_text = cursor.partition("|")
        at = dt.datetime.strptime(at_text, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)
        seq = int(id_text)
        if not 0 < seq < 2**63:
            raise ValueError(cursor)
        return at, seq
    except ValueError:
        raise InvalidInput(N_("This cursor is not one a page of these logs gave."), code="invalid_cursor") from None


def page(conn: Connection, actor: Actor, service_id: int, filters: Filters, *, cursor: str | None = None,
         limit: int = 50) -> tuple[list[dict], str | None]:
    """A page of a service's entries, newest first (time, then arrival), and the cursor of the
    next page (None on the last). Keyset: the index ``(service_id, at, id)`` is read from the
    cursor down, so the first page costs the same with ten thousand entries as with ten million."""
    get_service(conn, actor, service_id, action=READ)
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(N_("The page size must be from 1 to {max}."), code="invalid_limit", max=MAX_PAGE)
    q = select(*_COLUMNS).where(logs.c.service_id == service_id, *filters.conditions())
    if cursor:
        q = q.where(tuple_(logs.c.at, logs.c.id) < tuple_(*_read_cursor(cursor)))
    rows = conn.execute(q.order_by(logs.c.at.desc(), logs.c.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return [_entry(r) for r in rows], (_cursor(rows[-1]) if more else None)


def check_tail(conn: Connection, actor: Actor, service_id: int) -> int:
    """May the actor follow the service's logs? Returns the last arrival number so far (the tail
    starts after it)."""
    get_service(conn, actor, service_id, action=READ)
    last = conn.execute(select(logs.c.id).where(logs.c.service_id == service_id).order_by(logs.c.id.desc()).limit(1)).scalar()
    return last or 0


def arrived(conn: Connection, service_id: int, after: int, filters: Filters, limit: int = 100) -> list[dict]:
    """The entries that arrived after arrival number ``after``, in arrival order (see :class:`Tail`).
    The caller checked access with :func:`check_tail`."""
    q = (select(*_COLUMNS).where(logs.c.service_id == service_id, logs.c.id > after, *filters.conditions())
         .order_by(logs.c.id).limit(limit))
    return [_entry(r) for r in conn.execute(q)]


class Tail:
    """The live tail's cursor: a service's entries in arrival order, none missed and none twice.

    Arrival numbers are drawn as a batch is inserted, but batches commit in their own order: on
    PostgreSQL a batch numbered 100-199 may commit after one numbered 200-299 that was already
    streamed. So the tail does not move on past an entry as soon as it is sent: each poll reads
    again from a floor held ``hold`` seconds behind, and skips what it sent. An entry is missed
    only if its batch took more than ``hold`` seconds from being numbered to committing. (On
    SQLite, one writer at a time: batches commit in the order they are numbered.)"""

    MAX_SENT = 10_000  # entries remembered above the floor: beyond, the floor moves on sooner

    def __init__(self, service_id: int, filters: Filters, after: int, *, hold: float = 5.0,
                 clock: Callable[[], float] = time.monotonic):
        self.service_id, self.filters, self.floor = service_id, filters, after
        self.hold, self.clock = hold, clock
        self.sent: dict[int, float] = {}  # arrival number -> when it was sent, above the floor

    def poll(self, conn: Connection, limit: int = 100) -> list[dict]:
        """The entries to send now (at most ``limit``), in arrival order."""
        now = self.clock()
        fetch = limit + len(self.sent)
        rows = arrived(conn, self.service_id, self.floor, self.filters, fetch)
        fresh = [r for r in rows if r["seq"] not in self.sent]
        # the floor may rise to what was sent ``hold`` ago, but not past an entry this poll did not read or send
        bound = rows[-1]["seq"] if len(rows) == fetch else 2**63
        if len(fresh) > limit:
            bound = min(bound, fresh[limit]["seq"] - 1)
            fresh = fresh[:limit]
        for r in fresh:
            self.sent[r["seq"]] = now
        settled = [seq for seq, at in self.sent.items() if seq <= bound and (at <= now - self.hold or len(self.sent) > self.MAX_SENT)]
        if settled:
            self.floor = max(self.floor, *settled)
            self.sent = {seq: at for seq, at in self.sent.items() if seq > self.floor}
        return fresh
