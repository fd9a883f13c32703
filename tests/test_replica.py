"""Issue 22: a read replica. A private primary cluster and a streaming replica of it
(``pg_basebackup -R``, tests/pgcluster.py); the runtime's ``replica`` (``UNIVERS_REPLICA_URL``).

The staff reports, the forecast and the accounting exports read from the replica; the primary
only checks the caller's key. Shown by what each server is asked, and by pausing the
replica's replay: the forecast then stays as it was while the primary has moved on.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest
from litestar.testing import TestClient
from sqlalchemy import create_engine, event, func, select, text

from core.api.app import create_app
from core.clock import FrozenClock
from core.config import Settings
from core.db import make_engine
from core.models import Service
from core.testing import Shop, make_runtime
from tests.pgcluster import Cluster

svc = Service.__table__


@pytest.fixture(scope="module")
def clusters():
    primary = Cluster()
    try:
        replica = Cluster(primary=primary)
    except BaseException:
        primary.remove()
        raise
    yield primary, replica
    replica.remove()
    primary.remove()


def _services(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(svc)).scalar_one()


def _caught_up(rt) -> None:
    deadline = time.monotonic() + 20
    while _services(rt.replica) != _services(rt.engine):
        assert time.monotonic() < deadline, "the replica did not catch up"
        time.sleep(0.05)


def _statements(engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, statement, *_a: seen.append(statement))
    return seen


def test_the_forecast_is_served_from_the_replica_and_the_primary_only_checks_the_key(clusters, tmp_path):
    primary, replica = clusters
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with create_engine(primary.url).begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    clock = FrozenClock("2026-01-05T09:00:00+00:00")
    settings = Settings(data_dir=tmp_path, database_url=primary.url, scheduler=False)
    rt = make_runtime(settings, clock, (primary.url, schema), replica=make_engine(replica.url, search_path=schema))
    try:
        with TestClient(app=create_app(rt)) as client:
            shop = Shop(client, rt, clock)
            staff = shop.staff()
            customer = shop.signup(top_up="100.00")
            shop.order(customer, "web-hosting-pro-p1m")
            shop.deliver()
            _caught_up(rt)

            on_primary, on_replica = _statements(rt.engine), _statements(rt.replica)
            r = client.get("/v1/staff/reports/forecast?days=60", headers=staff)
            assert r.status_code == 200, r.text
            first = r.json()
            assert first["rows"], first  # the month of hosting renews in the window
            assert any("FROM service" in s for s in on_replica)
            assert not any("service" in s for s in on_primary), on_primary  # the primary: the key, nothing else
            for path in ("/v1/staff/reports/revenue?issued_from=2026-01-01&issued_to=2026-01-31",
                         "/v1/staff/exports/journal?issued_from=2026-01-01&issued_to=2026-01-31",
                         "/v1/staff/invoices/overdue"):
                on_primary.clear()
                assert client.get(path, headers=staff).status_code == 200, path
                # the invoice table, not a column such as account.einvoice
                assert not any(re.search(r"\binvoice", s) for s in on_primary), (path, on_primary)

            with rt.replica.connect() as conn:  # the replica stops replaying: it falls behind
                conn.execute(text("SELECT pg_wal_replay_pause()"))
            try:
                shop.order(customer, "web-hosting-pro-p1m")
                shop.deliver()
                time.sleep(0.3)
                assert client.get("/v1/staff/reports/forecast?days=60", headers=staff).json() == first  # the replica's view
            finally:
                with rt.replica.connect() as conn:
                    conn.execute(text("SELECT pg_wal_replay_resume()"))
            _caught_up(rt)
            assert client.get("/v1/staff/reports/forecast?days=60", headers=staff).json() != first  # now it has the order
    finally:
        rt.close()
        with create_engine(primary.url).begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))


def test_without_a_replica_the_reports_read_the_primary(tmp_path):
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'u.db'}", scheduler=False)
    rt = make_runtime(settings, FrozenClock("2026-01-05"), (settings.database_url, None))
    try:
        assert rt.replica is None and rt.read_engine is rt.engine
    finally:
        rt.close()
