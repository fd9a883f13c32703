"""All 16 storefronts sell, format, invoice and renew in their own currency and language."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from babel.numbers import format_currency

from core.countries.storefronts import load_subsidiaries
from core.money import ppm_to_percent

STOREFRONTS = sorted(load_subsidiaries())
UNIVERSES = {"web", "baremetal", "publiccloud", "enterprise"}
PLAN = "web-hosting-starter-p1m"


def test_there_are_sixteen_storefronts_in_fifteen_countries():
    subs = load_subsidiaries()
    assert len(subs) == 16 and len({s.country for s in subs.values()}) == 15
    assert all(s.selling for s in subs.values())


@pytest.mark.parametrize("code", STOREFRONTS)
def test_storefront_lists_every_universe_in_its_currency_and_language(shop, code):
    sub = shop.rt.storefronts[code]
    listing = shop.client.get(f"/v1/catalog?storefront={code}").json()
    assert (listing["storefront"], listing["currency"], listing["locale"]) == (code, sub.currency, sub.default_locale)
    assert {p["universe"] for p in listing["products"]} == UNIVERSES
    tiers = {p["universe"]: [] for p in listing["products"]}
    for product in listing["products"]:
        if product["support_level"] and not product["partners_only"]:  # Fast-Path sits beside the levels
            tiers[product["universe"]].append(product["support_level"])
        for plan in product["plans"]:
            assert plan["price"]["price"]["currency"] == sub.currency
    assert {u: sorted(levels) for u, levels in tiers.items()} == {
        "web": [1, 2], "baremetal": [1, 2, 3], "publiccloud": [1, 2, 3], "enterprise": [2, 3, 4]}
    assert sorted(p["code"] for p in listing["products"] if p["partners_only"]) == [
        "support-baremetal-fastpath", "support-publiccloud-fastpath"]
    english = shop.client.get(f"/v1/catalog?storefront={code}", headers={"Accept-Language": "en"}).json()
    if not sub.default_locale.startswith("en"):
        local = {p["code"]: p["name"] for p in listing["products"]}
        assert sum(local[p["code"]] != p["name"] for p in english["products"]) > len(local) / 2, "names are not translated"


@pytest.mark.parametrize("code", STOREFRONTS)
def test_price_is_formatted_by_babel_in_the_storefront_locale(shop, code):
    sub = shop.rt.storefronts[code]
    listing = shop.client.get(f"/v1/catalog?storefront={code}").json()
    plan = next(pl for p in listing["products"] for pl in p["plans"] if pl["code"] == PLAN)
    price = plan["price"]["price"]
    assert price["amount_minor"] == shop.rt.catalog.price(code, PLAN, shop.clock.today()).amount_minor
    assert price["formatted"] == format_currency(Decimal(price["amount"]), sub.currency, locale=sub.default_locale)
    assert plan["duration_text"]  # "1 mois", "1 Monat", "1 month"...


@pytest.mark.parametrize("code", STOREFRONTS)
def test_storefront_takes_an_order_and_renews_it(shop, code):
    sub = shop.rt.storefronts[code]
    customer = shop.signup(code, top_up="5000.00")
    assert customer["currency"] == sub.currency and customer["language"] == sub.default_locale
    order = shop.order(customer, PLAN)
    shop.deliver()
    service = shop.service(customer, order["services"][0]["id"])
    assert service["state"] == "active"
    shop.days(dt.date.fromisoformat(service["expires_on"]))
    renewal = next(i for i in shop.invoices(customer) if i["kind"] == "renewal")
    assert renewal["status"] == "paid" and renewal["currency"] == sub.currency
    assert renewal["number"].startswith(f"{sub.invoice_series}-2026-")
    day = dt.date.fromisoformat(renewal["lines"][0]["period_start"])
    expected = [sub.tax_on(day)] + ([sub.stacked_tax_on(day)] if sub.stacked_tax_on(day) else [])
    assert sorted((t["name"], t["rate"]) for t in renewal["taxes"]) == sorted((t.name, ppm_to_percent(t.rate_ppm)) for t in expected)
    net = sum(line["net"]["amount_minor"] for line in renewal["lines"])
    assert renewal["net"]["amount_minor"] == net
    assert renewal["total"]["amount_minor"] == net + sum(t["tax"]["amount_minor"] for t in renewal["taxes"])
    assert renewal["total"]["formatted"] == format_currency(Decimal(renewal["total"]["amount"]), sub.currency,
                                                            locale=sub.default_locale)
    assert renewal["title"] and renewal["lines"][0]["period_text"]


def test_quebec_charges_gst_and_qst_each_rounded_once(shop):
    customer = shop.signup("QC", top_up="500.00")
    order = shop.order(customer, PLAN)
    invoice = order["invoice"]
    taxes = {t["name"]: t for t in invoice["taxes"]}
    net = invoice["net"]["amount_minor"]
    assert set(taxes) == {"GST", "QST"}
    assert taxes["GST"]["base"]["amount_minor"] == taxes["QST"]["base"]["amount_minor"] == net
    assert taxes["GST"]["tax"]["amount_minor"] == int((Decimal(net) * Decimal("0.05")).quantize(Decimal(1), "ROUND_HALF_UP"))
    assert taxes["QST"]["tax"]["amount_minor"] == int((Decimal(net) * Decimal("0.09975")).quantize(Decimal(1), "ROUND_HALF_UP"))
    assert [t["label"] for t in invoice["taxes"]] == ["TPS 5\xa0%", "TVQ 9,975\xa0%"]  # fr_CA, the customer's language (CLDR)


def test_storefronts_are_published_with_their_taxes_in_force(shop):
    listed = {s["code"]: s for s in shop.client.get("/v1/storefronts", headers={"Accept-Language": "fr"}).json()}
    assert len(listed) == 16
    assert listed["PL"]["currency"] == "PLN" and listed["PL"]["default_locale"] == "pl_PL"
    assert [(t["name"], t["rate"]) for t in listed["QC"]["taxes"]] == [("GST", "5"), ("QST", "9.975")]
    assert listed["FI"]["taxes"][0]["rate"] == "25.5" and listed["FI"]["taxes"][0]["label"] == "TVA 25,5\xa0%"


def test_staff_see_the_catalog_problems_of_the_files_on_disk(shop):
    acme = shop.signup("FR")
    assert shop.client.get("/v1/staff/catalog/problems", headers=acme["headers"]).status_code == 403
    r = shop.client.get("/v1/staff/catalog/problems", headers=shop.staff())
    assert r.status_code == 200 and r.json() == []


def test_unknown_address_is_a_translated_problem(shop):
    r = shop.client.get("/v1/nowhere", headers={"Accept-Language": "pl"})
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert r.json()["detail"] == "Pod tym adresem nic nie ma."
