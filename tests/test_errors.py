"""Bad input gets problem+json with a stable code, in the caller's language, and writes nothing."""

from __future__ import annotations

import pytest

from core.models import Invoice, Order, Payment, Service


@pytest.fixture
def acme(shop):
    return shop.signup("FR", top_up="100.00")


def _nothing_written(shop, payments=1):
    assert (shop.count(Order), shop.count(Service), shop.count(Invoice), shop.count(Payment)) == (0, 0, 0, payments)


@pytest.mark.parametrize("item, code", [
    ({"plan": "no-such-plan"}, "unknown_plan"),
    ({"plan": "bm-rise-1-p1m", "quantity": -1}, "invalid_quantity"),
    ({"plan": "bm-rise-1-p1m", "quantity": 0}, "invalid_quantity"),
    ({"plan": "web-domain-de-p12m", "options": {"domain": "beispiel.de"}}, "not_sold_in_storefront"),
    ({"plan": "web-domain-com-p12m"}, "missing_option"),
    ({"plan": "web-domain-com-p12m", "options": {"domain": "not a domain"}}, "invalid_domain"),
])
def test_invalid_order_line_is_refused_and_writes_nothing(shop, acme, item, code):
    r = shop.client.post("/v1/orders", json={"items": [item]}, headers={**acme["headers"], "Idempotency-Key": "k"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "invalid_order"
    assert [e["code"] for e in body["errors"]] == [code]
    _nothing_written(shop)


def test_wrong_currency_is_refused(shop, acme):
    r = shop.client.post("/v1/orders", json={"items": [{"plan": "bm-rise-1-p1m"}], "currency": "USD"},
                         headers={**acme["headers"], "Idempotency-Key": "k"})
    assert r.status_code == 422 and r.json()["code"] == "wrong_currency"
    assert "EUR" in r.json()["detail"]
    _nothing_written(shop)


def test_order_without_idempotency_key_is_refused(shop, acme):
    r = shop.client.post("/v1/orders", json={"items": [{"plan": "bm-rise-1-p1m"}]}, headers=acme["headers"])
    assert r.status_code == 422 and r.json()["code"] == "idempotency_key_required"
    _nothing_written(shop)


def test_malformed_body_is_a_problem(shop, acme):
    r = shop.client.post("/v1/orders", json={"items": "nope"}, headers={**acme["headers"], "Idempotency-Key": "k"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_request"
    _nothing_written(shop)


def test_malformed_vat_number_is_refused_with_the_expected_format(shop):
    r = shop.client.post("/v1/customers", json={"subsidiary": "FR", "kind": "company", "name": "X", "email": "x@x.example",
                                                "vat_number": "FR123"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_vat_number"
    assert "FR40303265045" in r.json()["detail"]


def test_errors_speak_the_callers_language(shop, acme):
    r = shop.client.get("/v1/me", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
    english = shop.client.get("/v1/me").json()["detail"]
    assert r.json()["detail"] != english
    r = shop.client.post("/v1/orders", json={"items": [{"plan": "no-such-plan"}]},
                         headers={**acme["headers"], "Idempotency-Key": "k", "Accept-Language": "de"})
    assert r.json()["errors"][0]["message"] != "This plan does not exist."


def test_another_accounts_service_is_not_found(shop, acme):
    order = shop.order(acme, "web-hosting-starter-p1m")
    mallory = shop.signup("FR", name="Mallory")
    service_id = order["services"][0]["id"]
    for method, path in [("get", f"/v1/services/{service_id}"), ("post", f"/v1/services/{service_id}/stop"),
                         ("post", f"/v1/services/{service_id}/terminate"), ("get", f"/v1/invoices/{order['invoice']['id']}"),
                         ("get", f"/v1/orders/{order['id']}"), ("get", f"/v1/services/{service_id}/events")]:
        r = getattr(shop.client, method)(path, headers=mallory["headers"])
        assert r.status_code == 404, (path, r.text)
    assert shop.client.get("/v1/services", headers=mallory["headers"]).json()["items"] == []
    assert shop.service(acme, service_id)["state"] == "pending"


def test_staff_routes_refuse_customers(shop, acme):
    r = shop.client.post("/v1/staff/renewal-runs", json={}, headers=acme["headers"])
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
