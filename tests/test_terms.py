"""New terms for running services, and the switch campaign of legacy services, on both engines.

The clock starts on 5 January 2026: monthly services ordered then expire on 5 February.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select, update

from core.models import ContractVersion, Notification, Service
from core.ordering import contracts
from core.renewal.forecast import forecast
from core.uow import unit_of_work

svc = Service.__table__
SERVER = "bm-ks-1-p1m"
FEB5 = dt.date(2026, 2, 5)


def publish(rt, clock, effective_on=dt.date(2026, 1, 20)) -> str:
    """New general terms for FR, in French, from ``effective_on`` (before the renewals of 5 February are invoiced)."""
    body = "Nouvelles conditions générales.\n"
    with unit_of_work(rt) as conn:
        conn.execute(insert(ContractVersion.__table__).values(
            document="general", storefront="FR", language="fr", effective_on=effective_on, title="CGV 2026", body=body,
            content_hash=contracts.digest(f"CGV 2026\n\n{body}"), requires_acceptance=True, created_at=clock.now()))
    return contracts.digest(f"CGV 2026\n\n{body}")


def state(rt, service_id) -> dict:
    with rt.engine.connect() as conn:
        return dict(conn.execute(select(svc).where(svc.c.id == service_id)).mappings().one())


def stopping_on(rt, day: dt.date) -> int:
    with rt.engine.connect() as conn:
        report = forecast(conn, dt.date(2026, 1, 20), 30)
    return sum(r["stopping"] for r in report.rows if r["day"] == day)


def test_new_terms_must_be_accepted_before_the_next_renewal_or_the_service_ends(shop, client, rt, clock):
    late, keen = shop.signup(name="Late SARL", top_up="500.00"), shop.signup(name="Keen SARL", top_up="500.00")
    late_server = shop.order(late, SERVER)["services"][0]["id"]
    keen_server = shop.order(keen, SERVER)["services"][0]["id"]
    shop.deliver()
    new = publish(rt, clock)
    shop.days(dt.date(2026, 1, 20))  # in force: both servers must accept by their expiry
    assert state(rt, late_server)["terms_due_by"] == state(rt, keen_server)["terms_due_by"] == FEB5
    with rt.engine.connect() as conn:
        n = Notification.__table__
        told = conn.execute(select(n.c.service_id).where(n.c.kind == "terms_changed")).scalars().all()
    assert sorted(told) == sorted([late_server, keen_server])  # billing and admin are one account here: one mail each
    assert stopping_on(rt, FEB5) == 2  # the forecast shows both stopping, before anyone acts
    status = client.get(f"/v1/services/{keen_server}/terms", headers=keen["headers"]).json()
    assert status["due_by"] == "2026-02-05" and status["accepted"] == [False, True]  # general: new; baremetal: unchanged
    r = client.post("/v1/me/terms-acceptance", json={"accept": [new]}, headers=keen["headers"])
    assert r.status_code == 200 and r.json()["services"] == [keen_server], r.text
    assert stopping_on(rt, FEB5) == 1
    shop.days(dt.date(2026, 2, 6))
    assert state(rt, keen_server)["expires_on"] == dt.date(2026, 3, 5)  # renewed
    ended = state(rt, late_server)
    assert (ended["state"], ended["terminated_on"]) == ("terminated", FEB5)  # not renewed: ended at expiry
    assert not [i for i in shop.invoices(late) if i["kind"] == "renewal"]


def test_staff_may_extend_the_deadline_and_an_old_version_is_refused(shop, client, rt, clock):
    acme = shop.signup(top_up="500.00")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    shop.deliver()
    publish(rt, clock)
    shop.days(dt.date(2026, 1, 20))
    old = [c["content_hash"] for c in client.get("/v1/contracts?storefront=FR", headers={"Accept-Language": "fr"}).json()]
    assert client.post(f"/v1/services/{server}/terms-acceptance", json={"accept": [contracts.digest("x")]},
                       headers=acme["headers"]).json()["code"] == "contract_acceptance_required"
    staff = shop.staff()
    r = client.put(f"/v1/staff/services/{server}/terms-deadline", json={"due_by": "2026-03-05"}, headers=staff)
    assert r.status_code == 200 and r.json()["due_by"] == "2026-03-05", r.text
    assert client.put(f"/v1/staff/services/{server}/terms-deadline", json={"due_by": "2026-03-05"},
                      headers=acme["headers"]).status_code == 403
    shop.days(dt.date(2026, 2, 6))
    assert state(rt, server)["expires_on"] == dt.date(2026, 3, 5)  # renewed once more, the deadline moved
    assert old  # (the versions in force before the change were listed)


def _legacy(shop, rt, name, n) -> tuple[dict, int]:
    customer = shop.signup(name=name, top_up="500.00")
    service = shop.order(customer, SERVER)["services"][0]["id"]
    with unit_of_work(rt) as conn:  # as the legacy import leaves them: manual renewal, the old system's id
        conn.execute(update(svc).where(svc.c.id == service).values(renewal_mode="manual", legacy_ref=f"OLD-{n}"))
    return customer, service


def test_a_campaign_where_half_accept(shop, client, rt, clock):
    people = [_legacy(shop, rt, f"Client {n} SARL", n) for n in range(4)]
    shop.deliver()
    with unit_of_work(rt) as conn:
        first = contracts.invite(conn, rt, "FR", universe="baremetal")
    assert (first.invited, first.waiting, first.accepted, first.ending) == (4, 4, 0, 0)
    with unit_of_work(rt) as conn:
        assert contracts.invite(conn, rt, "FR").invited == 0  # again: nobody twice
    assert stopping_on(rt, FEB5) == 4  # before anyone answers, all four end on 5 February
    for customer, service in people[:2]:
        hashes = [c["content_hash"] for c in client.get(f"/v1/services/{service}/terms", headers=customer["headers"]).json()["contracts"]]
        r = client.post(f"/v1/services/{service}/terms-acceptance", json={"accept": hashes}, headers=customer["headers"])
        assert r.json()["services"] == [service], r.text
        assert state(rt, service)["renewal_mode"] == "automatic"
    staff = shop.staff()
    report = client.get("/v1/staff/switch-campaigns/progress?storefront=FR", headers=staff).json()
    assert (report["accepted"], report["waiting"]) == (2, 2)
    assert stopping_on(rt, FEB5) == 2  # the forecast right beforehand
    shop.days(dt.date(2026, 2, 6))
    assert [state(rt, s)["state"] for _, s in people] == ["active", "active", "terminated", "terminated"]
    report = client.get("/v1/staff/switch-campaigns/progress?storefront=FR", headers=staff).json()
    assert (report["accepted"], report["ending"], report["waiting"]) == (2, 2, 0)


def test_the_campaign_from_the_command_line(shop, rt, settings, monkeypatch, capsys, database_url):
    import json

    from core.cli import main
    from core.customers.accounts import create_customer

    _legacy(shop, rt, "Cli SARL", 9)
    shop.deliver()
    with unit_of_work(rt) as conn:
        _, key = create_customer(conn, rt, {"subsidiary": "FR", "name": "Ops", "email": "ops@univers.example"},
                                 is_staff=True, staff_role="billing_operator")
    url, schema = database_url
    monkeypatch.setenv("UNIVERS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("UNIVERS_DATABASE_URL", f"{url}?options=-csearch_path%3D{schema}" if schema else url)
    args = ["campaign", "switch", "--storefront", "fr", "--universe", "baremetal", "--key", key]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["invited"] == 1
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["invited"] == 0  # nobody twice
    assert main(["campaign", "progress", "--storefront", "FR", "--key", key]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (report["invited"], report["ending"]) == (0, 1)  # the CLI's clock is today's: its deadline (2026-02-05) is past


def test_imported_legacy_services_through_the_campaign_end_to_end(shop, client, rt, clock):
    """The legacy import, then the campaign: half accept (automatic renewal), half end at expiry."""
    from core.audit import Actor
    from core.portability import legacy
    from tests.test_legacy import row, to_csv

    rows = [row(f"L{n}", f"c{n}", expires_on="2026-02-05") for n in range(4)]
    with unit_of_work(rt) as conn:
        done = legacy.import_services(conn, rt, "FR", to_csv(rows), Actor.system("test"))
    assert done.imported == 4
    with unit_of_work(rt) as conn:
        assert contracts.invite(conn, rt, "FR").invited == 4
    with rt.engine.connect() as conn:
        services = dict(conn.execute(select(svc.c.legacy_ref, svc.c.id).where(svc.c.legacy_ref.is_not(None))).all())
    staff = shop.staff()
    for ref in ("L0", "L1"):  # on the customers' behalf: they have no API key from the old system
        hashes = [c["content_hash"] for c in client.get(f"/v1/services/{services[ref]}/terms", headers=staff).json()["contracts"]]
        with unit_of_work(rt) as conn:
            contracts.accept_for_services(conn, rt, Actor("staff:test", None, True, "billing_operator", "billing_operator"),
                                          [services[ref]], hashes)
    assert stopping_on(rt, FEB5) == 2
    from core.payments.settlement import top_up

    for ref in ("L0", "L1"):  # the accepted ones renew from the prepaid balance
        owner = state(rt, services[ref])["account_id"]
        with unit_of_work(rt) as conn:
            top_up(conn, rt, owner, 10_000, "test", "success", Actor.system("test"))
    shop.days(dt.date(2026, 2, 6))
    assert [state(rt, services[r])["state"] for r in ("L0", "L1", "L2", "L3")] == ["active", "active", "terminated", "terminated"]
    assert all(state(rt, services[r])["renewal_mode"] == "automatic" for r in ("L0", "L1"))
    with rt.engine.connect() as conn:
        report = contracts.progress(conn, rt, "FR")
    assert (report.accepted, report.ending, report.waiting) == (2, 2, 0)
