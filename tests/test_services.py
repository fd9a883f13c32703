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



def test_services_list_pages_through_contacts_like_the_or_of_the_four_columns(shop, rt):
    """The list is taken per contact column and merged: the pages are those of the plain OR."""
    from sqlalchemy import or_, update

    from core.audit import Actor
    from core.lifecycle.services import list_services
    from core.models import Service

    svc = Service.__table__
    acme, bob = shop.signup("FR", top_up="1000.00"), shop.signup("FR", name="Bob SARL", top_up="1000.00")
    ids = [shop.order(who, "web-hosting-starter-p1m")["services"][0]["id"] for who in [bob, acme] * 6]
    bobs, acmes = ids[0::2], ids[1::2]
    with rt.engine.begin() as conn:  # acme is a contact of four of bob's services, by each column but the owner's
        for sid, column in zip(bobs, ("admin_account_id", "tech_account_id", "billing_account_id", None, "admin_account_id")):
            if column:
                conn.execute(update(svc).where(svc.c.id == sid).values({column: acme["id"]}))
        conn.execute(update(svc).where(svc.c.id.in_([bobs[1], acmes[0], acmes[3]])).values(state="active"))
    visible = sorted(acmes + [bobs[0], bobs[1], bobs[2], bobs[4]])
    a = acme["id"]
    mine = or_(svc.c.account_id == a, svc.c.admin_account_id == a, svc.c.tech_account_id == a, svc.c.billing_account_id == a)
    with rt.engine.connect() as conn:
        for state, count in ((None, 10), ("pending", 7), ("active", 3)):
            expected = conn.execute(select(svc.c.id).where(mine, *([svc.c.state == state] if state else []))
                                    .order_by(svc.c.id)).scalars().all()
            assert len(expected) == count
            for limit in (1, 2, 3, 50):
                got, after = [], 0
                while True:
                    page = [r["id"] for r in list_services(conn, Actor("account:acme", a), after, limit, state)]
                    got += page
                    if len(page) < limit:
                        break
                    after = page[-1]
                assert got == expected, (state, limit)
    first = shop.client.get("/v1/services?limit=4", headers=acme["headers"]).json()
    second = shop.client.get(f"/v1/services?limit=4&after={first['next_after']}", headers=acme["headers"]).json()
    assert [s["id"] for s in first["items"] + second["items"]] == visible[:8]


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
