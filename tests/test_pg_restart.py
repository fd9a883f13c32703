"""Issue 22: PostgreSQL restarted (``pg_ctl restart -m fast``) in the middle of a renewal run and
in the middle of usage ingestion, on a private cluster of this module (tests/pgcluster.py).

What must hold: the work finishes on the next try, nothing is billed twice, no usage record is
lost or counted twice. A request cut by the restart is answered ``503 database_unavailable``
(never a 500), and the client sends it again.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import create_engine, func, select, text

from bench.renewal import populate
from core.clock import FrozenClock
from core.config import Settings
from core.models import Invoice, UsageRecord
from core.renewal.run import run_renewal
from core.testing import make_runtime
from core.uow import unit_of_work
from tests.pgcluster import Cluster
from tests.test_renewal_crash import TODAY, _balances, check_books

inv, records = Invoice.__table__, UsageRecord.__table__


@pytest.fixture(scope="module")
def cluster():
    server = Cluster()
    yield server
    server.remove()


@pytest.fixture
def prt(cluster, tmp_path):
    """A runtime on a fresh schema of the private cluster, the clock on TODAY."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(cluster.url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    settings = Settings(data_dir=tmp_path, database_url=cluster.url, sim_delay=0.0, scheduler=False)
    runtime = make_runtime(settings, FrozenClock(TODAY), (cluster.url, schema))
    yield runtime
    runtime.close()
    admin.dispose()  # its connection did not live through the restart
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def _count(rt, table) -> int:
    for _ in range(100):  # the server may still be coming back
        try:
            with rt.engine.connect() as conn:
                return conn.execute(select(func.count()).select_from(table)).scalar_one()
        except Exception:  # noqa: BLE001 - retried
            time.sleep(0.1)
    raise AssertionError("the server did not come back")


def _restart_when(cluster, ready, timeout: float = 20) -> threading.Thread:
    """Restart the server (in a thread) once ``ready()`` is true."""
    def go():
        deadline = time.monotonic() + timeout
        while not ready() and time.monotonic() < deadline:
            time.sleep(0.01)
        cluster.restart()

    thread = threading.Thread(target=go)
    thread.start()
    return thread


def test_postgresql_restarted_mid_renewal_run_the_next_run_finishes_it_and_bills_each_service_once(prt, cluster):
    services = 2000
    with unit_of_work(prt) as conn:
        populate(conn, prt, services, TODAY, per_account=5)  # 400 accounts
    before = _balances(prt)
    prt.settings = prt.settings.with_(renewal_chunk=2, renewal_workers=1)  # 200 transactions: the restart lands mid-run
    restart = _restart_when(cluster, lambda: _count(prt, inv) >= 40)
    first = None
    try:
        first = run_renewal(prt, TODAY)
    except Exception as exc:  # noqa: BLE001 - the run may stop with the server; what matters is the books
        print(f"first run stopped: {exc!r}")
    restart.join()
    partial = check_books(prt, before, services, complete=False)
    assert partial.billed < services or (first and first.failed), "the restart did not land mid-run"
    second = run_renewal(prt, TODAY)  # the next try
    assert second.failed == 0
    final = check_books(prt, before, services, complete=True)
    assert final.billed == services and final.invoices == services // 5
    assert run_renewal(prt, TODAY).services == 0


def test_postgresql_restarted_mid_usage_ingestion_loses_no_record_and_counts_none_twice(prt, cluster, monkeypatch):
    import bench.usage
    from litestar.testing import TestClient

    from core.api.app import create_app

    monkeypatch.setattr(bench.usage, "BATCH", 100)
    with prt.engine.begin() as conn:
        account_base, project_base = bench.usage.populate(conn, prt, 20, 4, "drill")
    batches = bench.usage.bodies(6000, 20, 4, account_base, project_base, "drill", prt.clock.now())  # 60 batches
    answers, cut = [], []
    restart = _restart_when(cluster, lambda: len(answers) >= 10)
    with TestClient(app=create_app(prt)) as client:
        for path, headers, body, _size in batches:
            for _ in range(200):  # the client's retry: the same batch, the same record ids
                r = client.post(path, content=body, headers=headers)
                if r.status_code != 503:
                    break
                assert r.json()["code"] == "database_unavailable" and r.headers["retry-after"]
                cut.append(r)
                time.sleep(0.05)
            assert r.status_code == 200, r.text
            answers.append(r.json())
            time.sleep(0.005)  # the clients' pace: the restart lands between and during requests
    restart.join()
    assert sum(a["accepted"] + a["duplicates"] for a in answers) == 6000
    assert all(not a["rejected"] for a in answers)
    with prt.engine.connect() as conn:
        stored = conn.execute(select(func.count(), func.count(func.distinct(records.c.record_id)))).one()
    assert tuple(stored) == (6000, 6000)  # none lost, none twice
    print(f"{len(cut)} requests cut by the restart, sent again")
