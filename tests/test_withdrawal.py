"""The consumer's right of withdrawal (14 days in FR), on both engines.

The clock starts on 5 January 2026: an order then may be withdrawn until 19 January included.
Web hosting starter in FR: monthly, 5 January to 5 February (31 days).
"""

from __future__ import annotations

import pytest

PLAN = "web-hosting-starter-p1m"


def withdraw(client, customer, order_id, expect):
    r = client.post(f"/v1/orders/{order_id}/withdrawal", headers=customer["headers"])
    assert r.status_code == expect, r.text
    return r.json()


def balance(client, customer) -> str:
    return client.get("/v1/me", headers=customer["headers"]).json()["balance"]["amount"]


def test_a_consumer_withdraws_on_day_13_and_is_refunded_for_the_unused_days(shop, client, clock):
    camille = shop.signup("FR", "person", name="Camille Martin", top_up="100.00")
    order = shop.order(camille, PLAN)
    shop.deliver()
    net = order["invoice"]["net"]["amount_minor"]
    assert order["withdrawal_until"] == "2026-01-19" and order["withdrawal_waived"] is False
    before = balance(client, camille)
    clock.set("2026-01-18T10:00:00+00:00")  # day 13
    done = withdraw(client, camille, order["id"], 200)
    expected = net - round(net * 13 / 31)  # 18 of the 31 days not used
    assert done["refund"]["amount_minor"] == expected and done["credit_note_id"], done
    service = shop.service(camille, order["services"][0]["id"])
    assert (service["state"], service["renewal_mode"]) == ("terminated", "terminate")
    credit = client.get(f"/v1/invoices/{done['credit_note_id']}", headers=camille["headers"]).json()
    assert credit["kind"] == "credit_note" and credit["net"]["amount_minor"] == expected
    assert float(balance(client, camille)) > float(before)  # refunded to the balance, tax included
    again = withdraw(client, camille, order["id"], 409)
    assert again["code"] == "already_withdrawn"
    assert client.get(f"/v1/orders/{order['id']}", headers=camille["headers"]).json()["status"] == "withdrawn"


def test_day_15_is_too_late(shop, client, clock):
    camille = shop.signup("FR", "person", name="Camille Martin", top_up="100.00")
    order = shop.order(camille, PLAN)
    clock.set("2026-01-20T10:00:00+00:00")  # day 15
    refused = withdraw(client, camille, order["id"], 422)
    assert refused["code"] == "withdrawal_period_over" and "19" in refused["detail"], refused
    assert shop.service(camille, order["services"][0]["id"])["state"] != "terminated"


def test_a_waiver_at_order_is_recorded_and_withdrawal_refused(shop, client, clock):
    camille = shop.signup("FR", "person", name="Camille Martin", top_up="100.00")
    order = shop.order(camille, PLAN, waive=True)
    assert order["withdrawal_waived"] is True
    refused = withdraw(client, camille, order["id"], 422)
    assert refused["code"] == "withdrawal_waived"


@pytest.mark.parametrize(("storefront", "kind", "code"), [
    ("FR", "company", "withdrawal_business"),
    ("US", "person", "no_withdrawal_right"),
])
def test_no_right_for_businesses_nor_where_the_storefront_has_none(shop, client, storefront, kind, code):
    customer = shop.signup(storefront, kind, name="Someone", top_up="100.00")
    order = shop.order(customer, PLAN)
    assert order["withdrawal_until"] is None
    refused = withdraw(client, customer, order["id"], 422)
    assert refused["code"] == code
    assert shop.service(customer, order["services"][0]["id"])["state"] != "terminated"  # nothing changed
