"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL (scale-out).

SQLite: WAL, foreign keys on, and every transaction opened with ``BEGIN IMMEDIATE`` so that two
writers queue on the lock instead of failing half-way. PostgreSQL: psycopg 3, READ COMMITTED;
batch jobs share work with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Date, Engine, create_engine, event, func
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session

from core.clock import add_months

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_add_months(day: str | None, months: int | None) -> str | None:
    if day is None or months is None:
        return None
    return add_months(dt.date.fromisoformat(day[:10]), int(months)).isoformat()


class sql_add_months(FunctionElement):  # noqa: N801 - reads like the SQL function it renders
    """``date + n calendar months`` clamped to the month's end, the same on both engines
    (PostgreSQL's interval arithmetic; a deterministic function registered on SQLite)."""

    type = Date()
    inherit_cache = True


@compiles(sql_add_months)
def _add_months_sqlite(element, compiler, **kw):
    day, months = list(element.clauses)
    return f"univers_add_months({compiler.process(day, **kw)}, {compiler.process(months, **kw)})"


@compiles(sql_add_months, "postgresql")
def _add_months_pg(element, compiler, **kw):
    day, months = list(element.clauses)
    return f"CAST(({compiler.process(day, **kw)} + make_interval(months => {compiler.process(months, **kw)})) AS DATE)"


def make_engine(url: str, *, pool_size: int = 10, search_path: str | None = None) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60, "isolation_level": None})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()
            dbapi_conn.create_function("univers_add_months", 2, _sqlite_add_months, deterministic=True)

        @event.listens_for(engine, "begin")
        def _begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    connect_args = {}
    if search_path:
        connect_args["options"] = f"-c search_path={search_path}"
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, connect_args=connect_args)


def lease_due(conn: Connection, table, status: str, now: dt.datetime, seconds: int, limit: int) -> list[int]:
    """Lease up to ``limit`` due rows of a work queue (``status``, ``next_attempt_at``,
    ``locked_until``, ``attempts``): their ids, locked for ``seconds`` and counted as one more
    attempt. Workers on PostgreSQL skip each other's rows; SQLite has one writer. A lease, not an
    open transaction, so a worker killed mid-way leaves its rows to the next once it ends."""
    from sqlalchemy import or_, select, update

    q = (select(table.c.id).where(table.c.status == status, table.c.next_attempt_at <= now,
                                  or_(table.c.locked_until.is_(None), table.c.locked_until < now))
         .order_by(table.c.next_attempt_at, table.c.id).limit(limit))
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    ids = list(conn.execute(q).scalars())
    if ids:
        conn.execute(update(table).where(table.c.id.in_(ids)).values(
            locked_until=now + dt.timedelta(seconds=seconds), attempts=table.c.attempts + 1))
    return ids


_HALF = 2**32


def exact_sum(column) -> tuple:
    """The sum of a 64-bit integer column as two sums that cannot overflow (SQLite's ``SUM``
    raises "integer overflow" past 2**63; PostgreSQL's is a numeric): its high and low halves,
    each exact for up to 2**31 rows. :func:`exact_total` adds them up in Python."""
    return func.sum(column // _HALF), func.sum(column % _HALF)


def exact_total(high, low) -> int:
    return int(high) * _HALF + int(low)


def insert_ignore(conn: Connection, table):
    """``INSERT … ON CONFLICT DO NOTHING`` on either engine: a row whose unique key exists is skipped."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()


def upsert(conn: Connection, table, values: dict, keys: list[str]):
    """``INSERT … ON CONFLICT (keys) DO UPDATE`` the other columns, on either engine: one statement."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    stmt = dialect_insert(table).values(**values)
    return stmt.on_conflict_do_update(index_elements=keys, set_={k: stmt.excluded[k] for k in values if k not in keys})


def is_postgres(bind: Engine | Connection | Session) -> bool:
    return bind.get_bind().dialect.name == "postgresql" if isinstance(bind, Session) else bind.dialect.name == "postgresql"


def fetch_owned(conn: Connection, table, row_id: int, account_id: int | None, what: str) -> dict:
    """A row by id, restricted to ``account_id`` unless it is None (staff). Another account's
    row is "not found", never "forbidden", so ids cannot be probed."""
    from sqlalchemy import select

    from core.errors import NotFound

    q = select(table).where(table.c.id == row_id)
    if account_id is not None:
        q = q.where(table.c.account_id == account_id)
    row = conn.execute(q).mappings().one_or_none()
    if row is None:
        raise NotFound(what=what)
    return dict(row)


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest Alembic revision (run at start-up)."""
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")


@contextlib.contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any error."""
    with Session(engine, expire_on_commit=False, autoflush=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
