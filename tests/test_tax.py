"""Who pays which tax: domestic, EU reverse charge, OSS, Canadian provinces, US, Singapore, and a
rate change between two renewals. Each case is checked on the invoice the customer receives."""

from __future__ import annotations

import datetime as dt

import pytest

from core.countries.tax import load_taxes

PLAN = "web-hosting-starter-p1m"


def _taxes(invoice):
    return [(t["name"], t["category"], t["rate"]) for t in invoice["taxes"]]


def _total_agrees(invoice):
    net = sum(line["net"]["amount_minor"] for line in invoice["lines"])
    tax = sum(t["tax"]["amount_minor"] for t in invoice["taxes"])
    return invoice["net"]["amount_minor"] == net and invoice["total"]["amount_minor"] == net + tax


@pytest.mark.parametrize("storefront, customer, expected, mention", [
    ("FR", {"kind": "person"}, [("VAT", "S", "20")], False),  # FR B2C
    ("DE", {"kind": "person", "country": "FR"}, [("VAT", "S", "20")], False),  # DE → FR consumer: OSS, the customer's rate
    ("FR", {"kind": "person", "country": "EE"}, [("VAT", "S", "24")], False),  # Estonia since 2025-07-01
    ("FR", {"kind": "company", "country": "DE", "vat_number": "DE136695976"}, [("VAT", "S", "19")], False),  # not confirmed
    ("FR", {"kind": "company", "country": "CH"}, [("VAT", "O", "0")], True),  # outside the EU
    ("CA", {"kind": "person", "region": "ON"}, [("HST", "S", "13")], False),
    ("CA", {"kind": "person", "region": "AB"}, [("GST", "S", "5")], False),
    ("CA", {"kind": "person", "region": "QC"}, [("GST", "S", "5"), ("QST", "S", "9.975")], False),
    ("QC", {"kind": "person"}, [("GST", "S", "5"), ("QST", "S", "9.975")], False),
    ("US", {"kind": "company", "region": "NY"}, [("Sales tax", "O", "0")], True),  # not collected by default
    ("SG", {"kind": "company"}, [("GST", "S", "9")], False),
    ("CZ", {"kind": "person"}, [("VAT", "S", "21")], False),
    ("GB", {"kind": "person", "country": "FR"}, [("VAT", "O", "0")], True),
])
def test_the_customer_pays_the_tax_of_its_zone(shop, storefront, customer, expected, mention):
    acme = shop.signup(storefront, top_up="500.00", **customer)
    invoice = shop.order(acme, PLAN)["invoice"]
    assert _taxes(invoice) == expected
    assert bool(invoice["mentions"]) == mention
    assert _total_agrees(invoice)
    assert invoice["buyer"]["country"] == customer.get("country", shop.rt.storefronts[storefront].country)


def test_reverse_charge_needs_a_confirmed_number_and_shows_both_numbers(shop):
    berlin = shop.signup("FR", name="Berlin GmbH", kind="company", country="DE", vat_number="DE136695976", top_up="500.00")
    before = shop.order(berlin, PLAN)["invoice"]
    assert _taxes(before) == [("VAT", "S", "19")]  # well formed is not confirmed
    staff = shop.staff()
    r = shop.client.post(f"/v1/staff/customers/{berlin['id']}/vat-confirmation",
                         json={"method": "VIES consultation WAPIAAAAW1234567", "confirmed_on": "2026-01-05"},
                         headers=berlin["headers"])
    assert r.status_code == 403  # customers cannot confirm their own number
    r = shop.client.post(f"/v1/staff/customers/{berlin['id']}/vat-confirmation",
                         json={"method": "VIES consultation WAPIAAAAW1234567", "confirmed_on": "2026-01-05"}, headers=staff)
    assert r.status_code == 200 and r.json()["vat_verified"] and r.json()["tax_zone"] == "RC"
    after = shop.client.get(f"/v1/invoices/{shop.order(berlin, PLAN)['invoice']['id']}",
                            headers={**berlin["headers"], "Accept-Language": "de"}).json()
    assert _taxes(after) == [("VAT", "AE", "0")] and after["tax"]["amount_minor"] == 0
    assert after["buyer"]["tax_id"] == "DE136695976" and after["seller"]["tax_id"].startswith("FR")
    assert after["mentions"] and "2006/112" in after["mentions"][0] and "Steuerschuldnerschaft" in after["mentions"][0]
    # the invoice issued before the confirmation is not touched
    assert _taxes(shop.client.get(f"/v1/invoices/{before['id']}", headers=berlin["headers"]).json()) == [("VAT", "S", "19")]


def test_renewals_follow_the_zone_of_the_billing_account(shop):
    berlin = shop.signup("FR", kind="company", country="DE", vat_number="DE136695976", top_up="500.00")
    order = shop.order(berlin, PLAN)
    shop.deliver()
    shop.client.post(f"/v1/staff/customers/{berlin['id']}/vat-confirmation",
                     json={"method": "VIES", "confirmed_on": "2026-01-06"}, headers=shop.staff())
    shop.days(dt.date.fromisoformat(shop.service(berlin, order["services"][0]["id"])["expires_on"]))
    renewal = next(i for i in shop.invoices(berlin) if i["kind"] == "renewal")
    assert _taxes(renewal) == [("VAT", "AE", "0")] and renewal["mentions"]


def test_a_rate_change_between_two_renewals_shows_on_the_next_invoice(shop, clock):
    """Nova Scotia's HST fell from 15 % to 14 % on 2025-04-01."""
    clock.set(dt.date(2025, 2, 20))
    halifax = shop.signup("CA", region="NS", top_up="500.00")
    assert _taxes(shop.order(halifax, PLAN)["invoice"]) == [("HST", "S", "15")]
    shop.deliver()
    shop.days(dt.date(2025, 4, 21))
    renewals = sorted((i["lines"][0]["period_start"], _taxes(i)) for i in shop.invoices(halifax) if i["kind"] == "renewal")
    assert renewals == [("2025-03-20", [("HST", "S", "15")]), ("2025-04-20", [("HST", "S", "14")])]


def _sign_up(shop, **body):
    return shop.client.post("/v1/customers", json={"name": "X", "email": "x@x.example", **body})


def test_an_unknown_province_is_refused_with_the_known_ones(shop):
    r = _sign_up(shop, subsidiary="CA", region="XX")
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "invalid_region"
    assert "ON" in r.json()["errors"][0]["message"]


def test_an_unknown_country_is_refused(shop):
    r = _sign_up(shop, subsidiary="FR", country="Z9")
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "invalid_country"


def test_a_vat_number_of_another_country_is_refused(shop):
    r = _sign_up(shop, subsidiary="DE", kind="company", country="FR", vat_number="DE136695976")
    assert r.status_code == 422 and r.json()["code"] == "vat_number_country_mismatch"


def test_the_tax_table_covers_the_27_member_states_with_recent_changes():
    taxes = load_taxes()
    assert len(taxes.eu_members) == 27 and all(c in taxes.zones for c in taxes.eu_members)
    rate = lambda zone, day: taxes.rates(zone, dt.date.fromisoformat(day))[0].rate_ppm  # noqa: E731
    assert (rate("EE", "2025-06-30"), rate("EE", "2025-07-01")) == (220_000, 240_000)
    assert (rate("SK", "2024-12-31"), rate("SK", "2025-01-01")) == (200_000, 230_000)
    assert (rate("RO", "2025-07-31"), rate("RO", "2025-08-01")) == (190_000, 210_000)
    assert (rate("FI", "2024-08-31"), rate("FI", "2024-09-01")) == (240_000, 255_000)
    assert (rate("CA-NS", "2025-03-31"), rate("CA-NS", "2025-04-01")) == (150_000, 140_000)


def test_a_us_state_collects_sales_tax_once_configured():
    import dataclasses

    from core.countries.storefronts import load_subsidiaries
    from core.countries.tax import TaxRate, zone_for

    taxes = load_taxes()
    us = load_subsidiaries(taxes=taxes)["US"]
    assert zone_for(taxes, us, "US", "WA", "company", False) == "US"  # not collected by default
    washington = (TaxRate("Sales tax", "S", 65_000, dt.date(2026, 1, 1), None),)
    configured = dataclasses.replace(taxes, zones={**taxes.zones, "US-WA": washington})
    assert zone_for(configured, us, "US", "WA", "company", False) == "US-WA"
    assert configured.rates("US-WA", dt.date(2026, 3, 1))[0].rate_ppm == 65_000
    assert zone_for(configured, us, "US", "OR", "company", False) == "US"
