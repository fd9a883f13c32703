"""Univers' pytest plugin: fixtures that plugin authors and the project's own tests use.

* ``engine_name``: every test that asks for ``rt`` or ``client`` runs on SQLite and on
  PostgreSQL (``UNIVERS_TEST_POSTGRES_URL``, default the local server). Without a reachable
  server the PostgreSQL runs are skipped, unless ``UNIVERS_REQUIRE_POSTGRES=1`` (CI) makes
  that a failure.
* ``clock``: a :class:`FrozenClock` the test moves; ``rt``: a runtime on a fresh database with
  its own plugin manager; ``client``: a Litestar test client over it.
"""

from __future__ import annotations

import os
import uuid

import pytest

from core.clock import FrozenClock
from core.config import Settings

PG_URL = os.environ.get("UNIVERS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_pg_state: dict = {}


def postgres_available() -> bool:
    if "ok" not in _pg_state:
        from sqlalchemy import create_engine, text

        try:
            engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(text("select 1"))
            engine.dispose()
            _pg_state["ok"] = True
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
            _pg_state["ok"] = False
            _pg_state["why"] = repr(exc)
    return _pg_state["ok"]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_name(request) -> str:
    if request.param == "postgresql" and not postgres_available():
        if os.environ.get("UNIVERS_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required here but unreachable: {_pg_state.get('why')}")
        pytest.skip("PostgreSQL not reachable")
    return request.param


@pytest.fixture
def database_url(engine_name, tmp_path):
    """A fresh, empty database: an SQLite file, or a PostgreSQL schema dropped afterwards."""
    if engine_name == "sqlite":
        yield f"sqlite:///{tmp_path / 'univers.db'}", None
        return
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield PG_URL, schema
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock("2026-01-05T09:00:00+00:00")


@pytest.fixture
def settings(tmp_path, database_url) -> Settings:
    url, _schema = database_url
    return Settings(data_dir=tmp_path, database_url=url, sim_delay=0.0, scheduler=False)


def make_runtime(settings: Settings, clock, database_url, **kwargs):
    from core.db import make_engine
    from core.runtime import build_runtime

    url, schema = database_url
    engine = make_engine(url, pool_size=5, search_path=schema)
    return build_runtime(settings, clock, engine=engine, **kwargs)


@pytest.fixture
def rt(settings, clock, database_url):
    from core.sim import reset_failures

    reset_failures()
    runtime = make_runtime(settings, clock, database_url)
    yield runtime
    runtime.close()


@pytest.fixture
def client(rt):
    from litestar.testing import TestClient

    from core.api.app import create_app

    with TestClient(app=create_app(rt)) as test_client:
        yield test_client
