"""`univers bench renewal` end to end on small sizes: the run is measured against a bare reference
taken on the same data and engine just before it, and that reference leaves no trace."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, text

from bench.profile import statement_profile
from bench.renewal import bare_reference, populate, run
from core.models import Invoice, InvoiceLine, Service
from core.renewal.run import run_renewal
from core.uow import unit_of_work

TODAY = dt.date(2026, 3, 1)
svc, inv, line = Service.__table__, Invoice.__table__, InvoiceLine.__table__


def _triggers(conn) -> list[tuple]:
    if conn.dialect.name == "postgresql":
        return conn.execute(text("SELECT tgrelid::regclass::text, tgname, tgenabled FROM pg_trigger WHERE NOT tgisinternal "
                                 "AND tgrelid::regclass::text IN ('invoice', 'invoice_line', 'service') ORDER BY 1, 2")).all()
    return conn.execute(text("SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY 1, 2")).all()


def test_the_reference_writes_what_a_renewal_writes_then_leaves_the_data_untouched(rt, clock):
    clock.set(TODAY)
    with unit_of_work(rt) as conn:
        populate(conn, rt, 300, TODAY)
    with rt.engine.connect() as conn:
        services_before = conn.execute(select(svc).order_by(svc.c.id)).all()
        triggers_before = _triggers(conn)
    assert triggers_before  # the immutability triggers the reference sets aside

    services, seconds = bare_reference(rt.engine, rt, TODAY)

    assert services == 300 and seconds > 0  # a line per due service was written, then rolled back
    with rt.engine.connect() as conn:
        assert conn.execute(select(svc).order_by(svc.c.id)).all() == services_before
        assert conn.execute(select(func.count()).select_from(inv)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(line)).scalar_one() == 0
        assert _triggers(conn) == triggers_before
    summary = run_renewal(rt, TODAY, dunning=False)  # the real run then renews every due service, once
    assert summary.services == 300 and summary.invoices == 30
    with rt.engine.connect() as conn:
        billed = conn.execute(select(line.c.service_id, func.count()).group_by(line.c.service_id)).all()
        assert len(billed) == 300 and {n for _, n in billed} == {1}
        assert conn.execute(select(func.max(inv.c.seq))).scalar_one() == 30  # numbered from 1, gapless


def test_bench_renewal_prints_its_rate_against_the_reference(engine_name, database_url, tmp_path):
    url, _schema = database_url
    database = f"sqlite:///{tmp_path / 'bench.db'}" if engine_name == "sqlite" else url
    result = run(500, database, chunk=20)

    assert result["engine"] == engine_name and result["services"] == 500 and result["invoices"] == 50
    assert result["services_per_s"] > 0 and result["reference_per_s"] > 0
    assert result["ratio"] == round(result["services_per_s"] / result["reference_per_s"], 3)
    assert 0 < result["ratio"] < 1  # the run writes what the reference writes, and more
    assert "profiled" not in result
    assert list(tmp_path.glob("bench-*")) == []  # the scratch file is gone


def test_the_profile_times_each_statement_by_where_it_runs(engine_name, database_url, tmp_path):
    url, _schema = database_url
    database = f"sqlite:///{tmp_path / 'bench.db'}" if engine_name == "sqlite" else url
    result = run(200, database, chunk=10, profile=True)

    assert result["profiled"] is True
    labels = set(result["profile"])
    assert any(label.startswith("core/renewal/run.py:renew_chunk:") and label.endswith("INSERT invoice_line")
               for label in labels), labels
    assert any(label.endswith("UPDATE service") for label in labels), labels
    assert all(seconds >= 0 for seconds in result["profile"].values())


def test_explain_runs_each_write_in_a_savepoint_rolled_back_so_it_is_written_once(rt, clock, engine_name):
    clock.set(TODAY)
    with unit_of_work(rt) as conn:
        populate(conn, rt, 100, TODAY)
    with statement_profile(rt.engine) as prof:
        assert run_renewal(rt, TODAY, dunning=False).services == 100
    with rt.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(line)).scalar_one() == 100
    plans = [plan for label, plan in prof.plans.items() if label.endswith("INSERT invoice_line")]
    if engine_name == "postgresql":
        assert len(plans) == 1 and "Insert on invoice_line" in plans[0] and "Buffers" in plans[0]
    else:
        assert plans == []  # EXPLAIN ANALYZE is PostgreSQL's
