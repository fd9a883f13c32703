"""Univers' pytest plugin: fixtures that plugin authors and the project's own tests use.

* ``engine_name``: every test that asks for ``rt`` or ``client`` runs on SQLite and on
  PostgreSQL (``UNIVERS_TEST_POSTGRES_URL``, default the local server). Without a reachable
  server the PostgreSQL runs are skipped, unless ``UNIVERS_REQUIRE_POSTGRES=1`` (CI) makes
  that a failure.
* ``clock``: a :class:`FrozenClock` the test moves; ``rt``: a runtime on a fresh database with
  its own plugin manager; ``client``: a Litestar test client over it.
* ``shop``: a :class:`Shop` that drives the API as customers do (sign-up, top-up, order,
  pay) and lets time pass, running the daily jobs (renewal and dunning, the queues) for each
  day, and the monthly usage run.
* ``--univers-conformance=NAME`` runs the conformance suite (:mod:`core.conformance`) on the
  universe ``NAME``; ``conformance_universe`` is the universe under test.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import uuid
from pathlib import Path

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
    from core.boot import build_runtime
    from core.db import make_engine

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


# --- driving the API and the jobs ----------------------------------------------------------------

_keys = itertools.count(1)


class Shop:
    """Drives the API like a customer would, and moves the clock like time would."""

    def __init__(self, client, rt, clock):
        self.client, self.rt, self.clock = client, rt, clock

    def signup(self, subsidiary="FR", kind="company", name="Acme SAS", top_up: str | None = None, **extra) -> dict:
        """A new customer of the storefront (its API key in ``headers``), with a prepaid balance."""
        body = {"subsidiary": subsidiary, "kind": kind, "name": name, "email": "ops@acme.example", **extra}
        r = self.client.post("/v1/customers", json=body)
        assert r.status_code == 201, r.text
        data = r.json()
        headers = {"Authorization": f"Bearer {data['api_key']}"}
        customer = {**data["customer"], "headers": headers}
        if top_up:
            r = self.client.post("/v1/me/balance/top-ups", json={"amount": top_up, "outcome": "success"}, headers=headers)
            assert r.status_code == 201, r.text
        return customer

    def staff(self) -> dict:
        """The headers of a new staff account (administrator)."""
        from core.customers.accounts import create_customer
        from core.uow import unit_of_work

        with unit_of_work(self.rt) as conn:
            _, key = create_customer(conn, self.rt, {"subsidiary": "FR", "name": "Back Office", "email": "bo@univers.example"},
                                     is_staff=True)
        return {"Authorization": f"Bearer {key}"}

    def order(self, customer, plan, key=None, payment=None, expect=201, accept=None, waive=False, **item) -> dict:
        """One click: an order of one plan (``options=…``), paid from the balance by default,
        accepting the contract versions the dry run names (or those given in ``accept``)."""
        body = {"items": [{"plan": plan, **item}], "payment": payment or {"method": "balance"}}
        if waive:  # a consumer's waiver of the right of withdrawal, for delivery at once
            body["waive_withdrawal"] = True
        if accept is None:
            accept = self.terms(customer, body)
        body["accept"] = accept
        headers = {**customer["headers"], "Idempotency-Key": key or f"key-{next(_keys)}"}
        r = self.client.post("/v1/orders", json=body, headers=headers)
        assert r.status_code == expect, r.text
        return r.json()

    def terms(self, customer, body: dict) -> list[str]:
        """The content hashes of the contract versions an order of ``body`` must accept (the
        dry run); none when the cart itself is refused (the order then says why)."""
        r = self.client.post("/v1/orders/dry-run", json={**body, "accept": []}, headers=customer["headers"])
        return [c["content_hash"] for c in r.json()["contracts"]] if r.status_code == 200 else []

    def deliver(self):
        """Run the provisioning outbox (and the other queues) once."""
        from core.scheduler import run_queues

        return run_queues(self.rt)["outbox"]

    def service(self, customer, service_id) -> dict:
        r = self.client.get(f"/v1/services/{service_id}", headers=customer["headers"])
        assert r.status_code == 200, r.text
        return r.json()

    def invoices(self, customer) -> list[dict]:
        r = self.client.get("/v1/invoices?limit=200", headers=customer["headers"])
        assert r.status_code == 200, r.text
        return r.json()["items"]

    def days(self, until: dt.date):
        """Let time pass: the scheduler's jobs run every day, in its order: the renewal and the
        dunning, the monthly usage run (the previous month, once), the spending alerts, then
        the queues (provisioning, charges, mails)."""
        from core.renewal.run import run_renewal
        from core.scheduler import run_queues
        from core.usage.alerts import check_alerts
        from core.usage.metering import run_usage_billing

        day = self.clock.today()
        while day < until:
            day += dt.timedelta(days=1)
            self.clock.set(day)
            run_renewal(self.rt, day)
            run_usage_billing(self.rt)
            check_alerts(self.rt)
            run_queues(self.rt)

    def bill_usage(self, period: dt.date):
        """The monthly run of pay-as-you-go for ``period`` (a month's first day)."""
        from core.usage.metering import run_usage_billing

        return run_usage_billing(self.rt, period)

    def count(self, table) -> int:
        from sqlalchemy import func, select

        with self.rt.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(table.__table__)).scalar_one()


@pytest.fixture
def shop(client, rt, clock) -> Shop:
    return Shop(client, rt, clock)


# --- the conformance suite ------------------------------------------------------------------------


def pytest_addoption(parser):
    parser.addoption("--univers-conformance", dest="univers_conformance", metavar="NAME", default=None,
                     help="run Univers' conformance suite on the universe NAME (an installed plugin)")


def pytest_configure(config):
    """With ``--univers-conformance``, the suite's module is collected: alone when no test path
    was given on the command line, else with the given ones."""
    if config.getoption("univers_conformance", None):
        suite = str(Path(__file__).with_name("conformance.py"))
        if config.args_source == pytest.Config.ArgsSource.ARGS:
            config.args.append(suite)
        else:
            config.args[:] = [suite]


@pytest.fixture
def conformance_universe(request) -> str:
    """The universe under test: the test module's ``UNIVERSE``, else ``--univers-conformance``."""
    name = getattr(request.module, "UNIVERSE", None) or request.config.getoption("univers_conformance", None)
    if not name:
        pytest.skip("no universe named: set UNIVERSE in the test module or pass --univers-conformance=NAME")
    return name
