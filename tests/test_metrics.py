"""Metrics: ``GET /metrics`` shows what the renewal runs, the charges, the usage ingestion and the
HTTP API did, and the queues as they are, to staff only; on both engines."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, update

from core import telemetry
from core.models import Notification, OutboxItem, Payment
from core.renewal.run import run_renewal
from core.scheduler import run_queues
from core.uow import unit_of_work
from tests.test_usage import PROJECT, record, send

LABELS = {"method", "path", "status_code", "app_name", "storefront", "kind", "step", "outcome", "result", "reason",
          "queue", "le", "generation", "implementation", "major", "minor", "patchlevel", "version"}


def scrape(shop, headers) -> dict[tuple[str, frozenset], float]:
    r = shop.client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            assert set(s.labels) <= LABELS, s  # never an account, a service or an invoice as a label
            samples[s.name, frozenset(s.labels.items())] = s.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before, after, name, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def _declined(shop, subsidiary, name, plan="web-hosting-pro-p1m"):
    """A customer whose first month was paid by card and whose card then declines."""
    customer = shop.signup(subsidiary, "company", name=name)
    shop.order(customer, plan, payment={"method": "test", "outcome": "success"})
    r = shop.client.put("/v1/me/payment-method", json={"method": "test", "outcome": "decline"}, headers=customer["headers"])
    assert r.status_code == 200, r.text
    return customer


def test_metrics_show_a_renewal_runs_figures_to_staff_only(shop, clock):
    """Three monthly services renew on 29 January (a week before they expire on 5 February):
    two paid from the balance (France, Germany), one whose card declines (France), charged and
    retried by the dunning ladder until it is suspended on 12 February. The daily runs from
    6 January to 13 February move the counters by what they did."""
    admin = shop.staff()
    acme = shop.signup("FR", top_up="500.00", name="Acme SAS")
    shop.order(acme, "bm-ks-1-p1m")
    muster = shop.signup("DE", top_up="500.00", name="Muster GmbH")
    shop.order(muster, "web-hosting-pro-p1m")
    _declined(shop, "FR", "Bob SARL")
    shop.deliver()
    shop.rt.telemetry.stopwatch = itertools.count(0, 2.5).__next__  # every run takes 2.5 s
    before = scrape(shop, admin)

    summaries = []
    day = clock.today()
    while day < dt.date(2026, 2, 13):  # the scheduler's day, as shop.days runs it, keeping each run's summary
        day += dt.timedelta(days=1)
        clock.set(day)
        summaries.append(run_renewal(shop.rt, day))
        run_queues(shop.rt)
    after = scrape(shop, admin)

    runs = len(summaries)
    assert runs == 39
    assert moved(before, after, "univers_renewal_runs_total") == runs
    assert moved(before, after, "univers_renewal_run_duration_seconds_count") == runs
    assert moved(before, after, "univers_renewal_run_duration_seconds_sum") == 2.5 * runs
    assert moved(before, after, "univers_renewal_run_duration_seconds_bucket", le="2.5") == runs
    assert moved(before, after, "univers_renewal_run_duration_seconds_bucket", le="1.0") == 0
    assert moved(before, after, "univers_renewal_services_total", result="renewed") == 3
    assert sum(s.services for s in summaries) == 3
    assert moved(before, after, "univers_invoices_issued_total", storefront="FR", kind="renewal") == 2
    assert moved(before, after, "univers_invoices_issued_total", storefront="DE", kind="renewal") == 1
    for step in telemetry.DUNNING_STEPS:
        assert moved(before, after, "univers_dunning_steps_total", step=step) == sum(getattr(s, step) for s in summaries), step
    assert moved(before, after, "univers_dunning_steps_total", step="retried") == 3  # D+1, D+3, D+5
    assert moved(before, after, "univers_dunning_steps_total", step="suspended") == 1
    with shop.rt.engine.connect() as conn:
        failed = conn.execute(select(func.count()).select_from(Payment.__table__)
                              .where(Payment.__table__.c.status == "failed")).scalar_one()
    assert failed == 4 and moved(before, after, "univers_charges_total", outcome="failed") == 4  # the renewal and 3 retries
    assert moved(before, after, "univers_charges_total", outcome="succeeded") == 0

    # a customer's key, and no key, are refused; a key narrowed to metrics:read reads them and nothing else
    assert shop.client.get("/metrics", headers=acme["headers"]).status_code == 403
    assert shop.client.get("/metrics").status_code == 401
    r = shop.client.post("/v1/me/api-keys", json={"name": "prometheus", "scopes": ["metrics:read"]}, headers=admin)
    assert r.status_code == 201, r.text
    scraper = {"Authorization": f"Bearer {r.json()['secret']}"}
    assert value(scrape(shop, scraper), "univers_renewal_runs_total") == runs
    assert shop.client.get("/v1/staff/events", headers=scraper).status_code == 403
    r = shop.client.post("/v1/me/api-keys", json={"name": "mine", "scopes": ["metrics:read"]}, headers=acme["headers"])
    assert shop.client.get("/metrics", headers={"Authorization": f"Bearer {r.json()['secret']}"}).status_code == 403


def test_http_requests_are_counted_by_route_template_and_status(shop):
    admin = shop.staff()
    acme = shop.signup("FR", top_up="100.00")
    service_id = shop.order(acme, "bm-ks-1-p1m")["services"][0]["id"]
    other = shop.signup("FR")
    template = "/v1/services/{service_id}"
    before = scrape(shop, admin)
    for _ in range(2):
        assert shop.client.get(f"/v1/services/{service_id}", headers=acme["headers"]).status_code == 200
    assert shop.client.get(f"/v1/services/{service_id}", headers=other["headers"]).status_code == 404
    r = shop.client.get("/metrics", headers=admin)
    after = scrape(shop, admin)
    assert moved(before, after, "univers_http_requests_total", app_name="univers", method="GET", path=template,
                 status_code="200") == 2
    assert moved(before, after, "univers_http_requests_total", app_name="univers", method="GET", path=template,
                 status_code="404") == 1
    assert f"/v1/services/{service_id}\"" not in r.text  # the path a caller sent is never a label


def test_usage_records_are_counted_as_ingested_duplicate_or_rejected(shop):
    admin = shop.staff()
    acme = shop.signup("FR")
    project = shop.order(acme, PROJECT)["services"][0]["id"]
    before = scrape(shop, admin)
    answer = send(shop.client, acme, [record(project, "a"), record(project, "b"), record(project, "a"),
                                      record(project, "c", metric="teleportation"), record(project, "d", quantity="-x")])
    codes = [r["code"] for r in answer["rejected"]]
    assert (answer["accepted"], answer["duplicates"], len(codes)) == (2, 1, 2)
    after = scrape(shop, admin)
    assert moved(before, after, "univers_usage_records_total", result="ingested") == 2
    assert moved(before, after, "univers_usage_records_total", result="duplicate") == 1
    assert moved(before, after, "univers_usage_records_total", result="rejected") == 2
    for code in set(codes):
        assert moved(before, after, "univers_usage_records_rejected_total", reason=code) == codes.count(code)


def test_queues_are_read_at_scrape_time(shop, clock):
    admin = shop.staff()
    acme = shop.signup("FR", top_up="100.00")
    shop.order(acme, "bm-ks-1-p1m")  # paid: its provisioning waits in the outbox
    _declined(shop, "FR", "Bob SARL", plan="bm-ks-1-p1m")  # its renewal will be charged by the gateway
    shop.deliver()
    shop.order(acme, "bm-ks-1-p1m")
    box, note = OutboxItem.__table__, Notification.__table__
    with shop.rt.engine.connect() as conn:
        pending = conn.execute(select(func.count()).select_from(box).where(box.c.status == "pending")).scalar_one()
        mails = conn.execute(select(func.count()).select_from(note).where(note.c.status == "pending")).scalar_one()
    samples = scrape(shop, admin)
    assert pending >= 1 and value(samples, "univers_queue_depth", queue="outbox") == pending
    assert value(samples, "univers_queue_depth", queue="mail") == mails
    assert value(samples, "univers_queue_parked", queue="outbox") == 0
    assert value(samples, "univers_queue_oldest_parked_age_seconds", queue="outbox") == 0

    # an item parked after its last try three hours after it was queued: one parked, aged from its queueing
    with unit_of_work(shop.rt) as conn:
        first = conn.execute(select(box.c.id).where(box.c.status == "pending").order_by(box.c.id).limit(1)).scalar_one()
        conn.execute(update(box).where(box.c.id == first).values(status="parked"))
        queued_at = conn.execute(select(box.c.created_at).where(box.c.id == first)).scalar_one()
    clock.set(clock.now() + dt.timedelta(hours=3))
    samples = scrape(shop, admin)
    assert value(samples, "univers_queue_parked", queue="outbox") == 1
    assert value(samples, "univers_queue_depth", queue="outbox") == pending - 1
    queued_at = queued_at if queued_at.tzinfo else queued_at.replace(tzinfo=dt.UTC)
    assert value(samples, "univers_queue_oldest_parked_age_seconds", queue="outbox") == (clock.now() - queued_at).total_seconds()

    # the renewal queues Bob's charge; the scrape sees it until the charge worker takes it
    clock.set(dt.datetime(2026, 1, 29, 9, tzinfo=dt.UTC))
    run_renewal(shop.rt, clock.today())
    assert value(scrape(shop, admin), "univers_queue_depth", queue="charges") == 1
    run_queues(shop.rt)
    assert value(scrape(shop, admin), "univers_queue_depth", queue="charges") == 0


def test_a_count_moves_only_once_its_transaction_commits(rt):
    def succeeded() -> float:
        return rt.telemetry.registry.get_sample_value("univers_charges_total", {"outcome": "succeeded"}) or 0.0

    with pytest.raises(RuntimeError), unit_of_work(rt) as conn:
        telemetry.count(conn, "charges", 1, "succeeded")
        raise RuntimeError("rolled back")
    assert succeeded() == 0
    with unit_of_work(rt) as conn:
        telemetry.count(conn, "charges", 2, "succeeded")
        assert succeeded() == 0  # not before the commit
    assert succeeded() == 2


def test_several_api_workers_add_up_their_counts(tmp_path, monkeypatch):
    """``univers serve`` with two worker processes: each request is counted once, in whichever
    worker served it, and every scrape, whichever worker answers it, sums both (prometheus_client's
    multiprocess mode, in ``<data dir>/prometheus``). Not a database test: SQLite only."""
    import httpx

    from bench.api import Server
    from core.config import Settings
    from core.customers.accounts import create_customer
    from core.testing import FrozenClock, make_runtime

    url = f"sqlite:///{tmp_path / 'univers.db'}"
    rt = make_runtime(Settings(data_dir=tmp_path, database_url=url, scheduler=False), FrozenClock("2026-01-05T09:00:00+00:00"),
                      (url, None))
    try:
        with unit_of_work(rt) as conn:
            _, key = create_customer(conn, rt, {"subsidiary": "FR", "name": "Ops", "email": "ops@univers.example"},
                                     is_staff=True)
    finally:
        rt.close()
    monkeypatch.setenv("UNIVERS_WORKERS", "2")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    server = Server(url, tmp_path / "server.log")
    try:
        with httpx.Client(base_url=server.base_url, timeout=10) as probe:
            server.wait_ready(probe)
        for _ in range(30):  # a connection each, so that both workers take some
            assert httpx.get(f"{server.base_url}/v1/storefronts", timeout=10).status_code == 200
        folder = tmp_path / f"data-{server.port}" / "prometheus"
        pids = {path.stem.rsplit("_", 1)[1] for path in folder.glob("counter_*.db")}
        assert len(pids) >= 2, (pids, server.log_tail())
        seen = set()
        for _ in range(6):
            r = httpx.get(f"{server.base_url}/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=10)
            assert r.status_code == 200, r.text
            total = sum(s.value for f in text_string_to_metric_families(r.text) for s in f.samples
                        if s.name == "univers_http_requests_total" and s.labels.get("path") == "/v1/storefronts")
            seen.add(total)
        assert seen == {30.0}
    finally:
        server.stop()
