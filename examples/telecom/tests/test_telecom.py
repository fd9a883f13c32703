"""Telecom in France: order, use, renew, stop; and nowhere else. On SQLite and PostgreSQL.

The fixtures (``shop``, ``rt``, ``clock``, both engines) come from Univers' pytest plugin
(``core.testing``), loaded once Univers is installed. The clock starts on 5 January 2026.
FR prices (catalog/countries/FR.toml): a VoIP line 4.99 € a month; national calls free up to
1,000 minutes then 0.0150 €/min; international calls 0.0900 €/min; fibre 29.99 € a month with
a 12-month engagement and 49.00 € of setup.
"""

from __future__ import annotations

import datetime as dt

import pytest

LINE, FIBRE = "telecom-voip-line-p1m", "telecom-fibre-p1m-e12"


def minutes(line: int, prefix: str, calls: int, metric: str, each: str, day: int = 10) -> list[dict]:
    base = dt.datetime(2026, 1, day, 8, tzinfo=dt.UTC)
    return [{"id": f"{prefix}-{n}", "project": line, "metric": metric, "quantity": each,
             "at": (base + dt.timedelta(minutes=10 * n)).isoformat().replace("+00:00", "Z")} for n in range(calls)]


def test_a_voip_line_is_ordered_used_invoiced_by_the_minute_renewed_and_stopped(shop, clock):
    client = shop.client
    alice = shop.signup("FR", "person", name="Alice Martin", top_up="100.00")
    order = shop.order(alice, LINE)
    assert order["invoice"]["total"]["amount"] == "5.99"  # 4.99 + 20 % VAT
    line = order["services"][0]["id"]
    shop.deliver()
    service = shop.service(alice, line)
    assert (service["state"], service["resource"], service["expires_on"]) == ("active", f"sip-{line:010d}", "2026-02-05")
    assert service["name"] == "Ligne VoIP, mensuelle"  # in the customer's language

    clock.set("2026-01-31T12:00:00+00:00")
    r = client.post("/v1/usage", headers=alice["headers"], json={"records": (
        minutes(line, "nat", 110, "voip_minutes_national", "10")  # 1,100 minutes: 100 beyond the free 1,000
        + minutes(line, "int", 3, "voip_minutes_international", "12.5"))})  # 37.5 minutes abroad
    assert r.status_code == 200 and (r.json()["accepted"], r.json()["rejected"]) == (113, []), r.text

    shop.days(dt.date(2026, 2, 2))  # the monthly run invoices January's calls on the 1st
    calls = [i for i in shop.invoices(alice) if i["kind"] == "usage"]
    assert len(calls) == 1
    invoice = client.get(f"/v1/invoices/{calls[0]['id']}", headers=alice["headers"]).json()
    lines = {ln["metric"]: (ln["quantity_exact"], ln["net"]["amount"]) for ln in invoice["lines"]}
    assert lines == {"voip_minutes_national": ("1100", "1.50"),  # 100 × 0.0150
                     "voip_minutes_international": ("37.5", "3.38")}  # 37.5 × 0.09 = 3.375 → 3.38
    assert invoice["net"]["amount"] == "4.88" and invoice["total"]["amount"] == "5.86"  # VAT 0.976 → 0.98

    shop.days(dt.date(2026, 2, 6))  # the renewal, paid from the balance
    assert shop.service(alice, line)["expires_on"] == "2026-03-05"
    r = client.post(f"/v1/services/{line}/stop", headers=alice["headers"])
    assert r.status_code == 200, r.text
    shop.days(dt.date(2026, 3, 6))
    assert shop.service(alice, line)["state"] == "terminated"
    assert len([i for i in shop.invoices(alice) if i["kind"] == "renewal"]) == 1  # stopped: no second renewal


def test_fibre_keeps_its_engagement_when_stopped(shop, clock):
    bob = shop.signup("FR", "company", name="Bob SARL", top_up="1000.00")
    fibre = shop.order(bob, FIBRE)["services"][0]["id"]
    shop.deliver()
    r = shop.client.post(f"/v1/services/{fibre}/stop", headers=bob["headers"])
    assert r.status_code == 200, r.text
    assert r.json()["engagement_end"] == "2027-01-05" and r.json()["ends_on"] == "2027-01-05"
    shop.days(dt.date(2026, 2, 6))  # its first expiry: renewed all the same, the engagement runs
    service = shop.service(bob, fibre)
    assert (service["state"], service["expires_on"], service["ends_on"]) == ("active", "2026-03-05", "2027-01-05")


def test_calls_are_refused_on_a_fibre_access(shop):
    bob = shop.signup("FR", "company", name="Bob SARL", top_up="1000.00")
    fibre = shop.order(bob, FIBRE)["services"][0]["id"]
    r = shop.client.post("/v1/usage", headers=bob["headers"],
                         json={"records": minutes(fibre, "x", 1, "voip_minutes_national", "1", day=4)})
    assert [x["code"] for x in r.json()["rejected"]] == ["not_a_project"], r.text


@pytest.mark.parametrize("storefront", ["DE", "GB", "US", "CA"])
def test_telecom_is_sold_in_france_only(shop, storefront):
    listed = shop.client.get(f"/v1/catalog?storefront={storefront}").json()
    assert not [p for p in listed["products"] if p["universe"] == "telecom"]
    assert [p["code"] for p in shop.client.get("/v1/catalog?storefront=FR").json()["products"]
            if p["universe"] == "telecom"] == ["support-telecom-l1", "support-telecom-l2", "telecom-fibre", "telecom-voip-line"]
    customer = shop.signup(storefront, name="Someone Ltd")
    refused = shop.order(customer, LINE, expect=422)
    assert refused["errors"][0]["code"] == "not_sold_in_storefront", refused
