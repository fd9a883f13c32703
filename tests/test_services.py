"""Service operations and the provisioning outbox."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from core.models import AuditEvent, OutboxItem


def test_stop_can_be_undone_until_expiry_and_the_service_renews_again(shop):
    acme = shop.signup("GB", top_up="500.00")
    order = shop.order(acme, "web-hosting-starter-p1m")
    shop.deliver()
    sid = order["services"][0]["id"]
    assert shop.client.post(f"/v1/services/{sid}/stop", headers=acme["headers"]).json()["renewal_mode"] == "terminate"
    undone = shop.client.delete(f"/v1/services/{sid}/stop", headers=acme["headers"]).json()
    assert undone["renewal_mode"] == "automatic" and undone["ends_on"] is None
    shop.days(dt.date(2026, 2, 10))
    assert shop.service(acme, sid)["expires_on"] == "2026-03-05"
    actions = [e["action"] for e in shop.client.get(f"/v1/services/{sid}/events", headers=acme["headers"]).json()]
    assert actions[:4] == ["service.created", "service.delivered", "service.stop_scheduled", "service.stop_cancelled"]
    assert "service.renewal_invoiced" in actions


def test_immediate_termination(shop):
    acme = shop.signup("US", top_up="100.00")
    order = shop.order(acme, "web-hosting-starter-p1m")
    shop.deliver()
    sid = order["services"][0]["id"]
    r = shop.client.post(f"/v1/services/{sid}/terminate", headers=acme["headers"])
    assert r.status_code == 200 and r.json()["state"] == "terminated"
    again = shop.client.post(f"/v1/services/{sid}/terminate", headers=acme["headers"])
    assert again.status_code == 409 and again.json()["code"] == "service_ended"


def test_services_list_is_keyset_paginated(shop):
    acme = shop.signup("FR", top_up="1000.00")
    for _ in range(5):
        shop.order(acme, "web-hosting-starter-p1m")
    first = shop.client.get("/v1/services?limit=2", headers=acme["headers"]).json()
    second = shop.client.get(f"/v1/services?limit=2&after={first['next_after']}", headers=acme["headers"]).json()
    third = shop.client.get(f"/v1/services?limit=2&after={second['next_after']}", headers=acme["headers"]).json()
    ids = [s["id"] for page in (first, second, third) for s in page["items"]]
    assert len(ids) == 5 == len(set(ids)) and ids == sorted(ids) and third["next_after"] is None


def test_failed_provisioning_is_retried_with_backoff(shop, rt, clock):
    rt.settings = rt.settings.with_(sim_failures={"baremetal": 2})
    acme = shop.signup("DE", top_up="500.00")
    sid = shop.order(acme, "bm-ks-1-p1m")["services"][0]["id"]
    assert shop.deliver().retried == 1
    assert shop.deliver().done == 0  # not due yet: backing off
    clock.advance(seconds=6)
    assert shop.deliver().retried == 1
    clock.advance(seconds=11)
    assert shop.deliver().done == 1
    assert shop.service(acme, sid)["state"] == "active"


def test_provisioning_that_keeps_failing_is_parked_with_an_alert(shop, rt, clock):
    rt.settings = rt.settings.with_(sim_failures={"enterprise": 99}, outbox_max_attempts=3)
    acme = shop.signup("FR", top_up="100000.00")
    sid = shop.order(acme, "hpc-essentials-p1m-e12")["services"][0]["id"]
    for _ in range(5):
        shop.deliver()
        clock.advance(hours=2)
    with rt.engine.connect() as conn:
        status, attempts = conn.execute(select(OutboxItem.__table__.c.status, OutboxItem.__table__.c.attempts)
                                        .where(OutboxItem.__table__.c.service_id == sid)).one()
        alert = conn.execute(select(AuditEvent.__table__.c.after).where(
            AuditEvent.__table__.c.entity_id == sid, AuditEvent.__table__.c.action == "outbox.parked")).scalar_one()
    assert (status, attempts) == ("parked", 3)
    assert "timed out" in alert
    assert shop.service(acme, sid)["state"] == "pending"  # paid, not lost: staff see it parked


def test_cli_renew_at_a_date(tmp_path, monkeypatch, capsys):
    import json

    from core.cli import main

    monkeypatch.setenv("UNIVERS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("UNIVERS_DATABASE_URL", raising=False)
    assert main(["renew", "--at", "2026-02-30"]) == 2
    assert main(["renew", "--at", "2026-02-01"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["run_on"] == "2026-02-01" and summary["services"] == 0
