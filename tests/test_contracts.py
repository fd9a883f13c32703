"""Contracts: versioned terms in the customer's language, accepted with each order, on both engines."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import insert, select

from core.context import ContractText
from core.models import AuditEvent, ContractAcceptance, ContractVersion
from core.ordering import contracts
from core.uow import unit_of_work

SERVER = "bm-ks-1-p1m"


def terms(client, storefront="FR", universes=(), language="fr") -> list[dict]:
    query = "".join(f"&universe={u}" for u in universes)
    r = client.get(f"/v1/contracts?storefront={storefront}{query}", headers={"Accept-Language": language})
    assert r.status_code == 200, r.text
    return r.json()


def test_the_terms_in_force_are_served_in_the_readers_language(client, rt):
    fr = terms(client, "FR", ["baremetal"])
    assert [(c["document"], c["language"]) for c in fr] == [("general", "fr"), ("baremetal", "fr")]
    text = client.get(fr[0]["path"]).json()
    assert text["title"] == "Conditions générales de vente" and rt.storefronts["FR"].legal_entity["name"] in text["body"]
    assert contracts.digest(f"{text['title']}\n\n{text['body']}") == text["content_hash"] == fr[0]["content_hash"]
    de = terms(client, "DE", language="de")
    assert [(c["document"], c["language"], c["title"]) for c in de] == [("general", "de", "Allgemeine Geschäftsbedingungen")]
    assert terms(client, "ES", language="es")[0]["language"] == "en"  # no Spanish text yet: English
    assert terms(client, "GB", language="en")[0]["content_hash"] != terms(client, "US", language="en")[0]["content_hash"]
    # the same English text, each storefront's legal entity in it: two versions


def test_an_order_accepts_the_versions_its_dry_run_lists(shop, client, rt):
    acme = shop.signup(top_up="500.00")
    body = {"items": [{"plan": SERVER}], "payment": {"method": "balance"}}
    quote = client.post("/v1/orders/dry-run", json=body, headers=acme["headers"]).json()
    assert [c["document"] for c in quote["contracts"]] == ["general", "baremetal"] and quote["net"]["amount"]
    refused = client.post("/v1/orders", json=body, headers={**acme["headers"], "Idempotency-Key": "no-terms"})
    assert refused.status_code == 422 and refused.json()["code"] == "contract_acceptance_required", refused.text
    assert {e["code"] for e in refused.json()["errors"]} == {"contract_not_accepted"}
    half = client.post("/v1/orders", json={**body, "accept": [quote["contracts"][0]["content_hash"]]},
                       headers={**acme["headers"], "Idempotency-Key": "half"})
    assert half.status_code == 422 and [e["params"]["document"] for e in half.json()["errors"]] == ["baremetal"]
    with rt.engine.connect() as conn:
        assert conn.execute(select(ContractAcceptance.__table__)).all() == []  # refused orders accept nothing
    order = shop.order(acme, SERVER)  # the shop accepts what the dry run lists
    mine = client.get("/v1/me/contracts", headers=acme["headers"]).json()
    assert [(a["contract"]["document"], a["channel"], a["order_id"]) for a in mine] == \
        [("general", "api", order["id"]), ("baremetal", "api", order["id"])]
    with rt.engine.connect() as conn:
        e = AuditEvent.__table__
        logged = conn.execute(select(e.c.actor).where(e.c.action == "contract.accepted", e.c.entity_id == acme["id"])).all()
    assert len(logged) == 2


def test_a_new_version_mid_way_refuses_the_old_one(shop, client, rt, clock):
    acme = shop.signup(top_up="500.00")
    old = [c["content_hash"] for c in terms(client)]
    with unit_of_work(rt) as conn:  # the provider publishes new general terms from 1 February
        conn.execute(insert(ContractVersion.__table__).values(
            document="general", storefront="FR", language="fr", effective_on=dt.date(2026, 2, 1), title="CGV 2026",
            body="Nouvelles conditions.\n", content_hash=contracts.digest("CGV 2026\n\nNouvelles conditions.\n"),
            requires_acceptance=True, created_at=clock.now()))
    assert [c["content_hash"] for c in terms(client)] == old  # not in force yet
    clock.set("2026-02-01T08:00:00+00:00")
    new = terms(client)[0]
    assert new["title"] == "CGV 2026" and new["content_hash"] not in old
    r = client.post("/v1/orders", json={"items": [{"plan": "web-hosting-starter-p1m"}], "accept": old},
                    headers={**acme["headers"], "Idempotency-Key": "old-terms"})
    assert r.status_code == 409 and r.json()["code"] == "contract_outdated", r.text
    assert shop.order(acme, "web-hosting-starter-p1m")["status"]  # accepting the new version


def test_a_text_in_force_is_never_rewritten(rt, clock):
    v = ContractText("general", "FR", "fr", dt.date(2024, 1, 1), "Conditions générales de vente", "changé\n", True, "x.md")
    future = ContractText("general", "FR", "fr", dt.date(2027, 1, 1), "Futur", "texte\n", True, "y.md")
    with unit_of_work(rt) as conn:
        problems = contracts.sync(conn, [v, future], clock.today(), clock.now())
        assert [p.rule for p in problems] == ["contract_rewritten"]
        again = contracts.sync(conn, [dataclasses.replace(future, body="corrigé\n")], clock.today(), clock.now())
        assert again == []  # a future version may still be corrected
        t = ContractVersion.__table__
        assert conn.execute(select(t.c.body).where(t.c.effective_on == dt.date(2027, 1, 1))).scalar_one() == "corrigé\n"
