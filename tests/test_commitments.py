"""Savings plans of pay-as-you-go projects: drawn first, on the monthly invoice, on both engines.

FR storefront (plugins/publiccloud/catalog/countries/FR.toml): 12 months at 15 % off, at least
50.00 € a month. A plan of 50.00 € a month covers usage worth 50.00 / 0.85 = 58.8235… → 58.82 €
at list price. b3-16 costs 0.1022 €/h, capped at 74.61 € a month; February 2026 has 672 hours.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core.billing.einvoice_check import check
from core.models import AuditEvent, Commitment
from core.usage import commitments, metering
from tests.pdfa import check_factur_x
from tests.test_rating import PROJECT, send, usage_invoices

FEBRUARY, MARCH, APRIL = dt.date(2026, 2, 1), dt.date(2026, 3, 1), dt.date(2026, 4, 1)


@pytest.fixture
def acme(shop):
    customer = shop.signup()
    customer["project"] = shop.order(customer, PROJECT)["services"][0]["id"]
    return customer


def commit(client, customer, expect=201, **body):
    r = client.post(f"/v1/services/{customer['project']}/commitments", json={"monthly": "50.00", **body},
                    headers=customer["headers"])
    assert r.status_code == expect, r.text
    return r.json()


def month_records(project: int, month: dt.date, prefix: str, hours: int, dimension="b3-16") -> list[dict]:
    base = dt.datetime(month.year, month.month, 1, tzinfo=dt.UTC)
    return [{"id": f"{prefix}-{h}", "project": project, "metric": "instance_hours", "dimension": dimension, "quantity": "1",
             "at": (base + dt.timedelta(hours=h)).isoformat().replace("+00:00", "Z")} for h in range(hours)]


def invoice_of(client, customer, period: dt.date) -> dict:
    [listed] = [i for i in usage_invoices(client, customer)
                if client.get(f"/v1/invoices/{i['id']}", headers=customer["headers"]).json()["lines"][0]["period_start"]
                == period.isoformat()]
    return client.get(f"/v1/invoices/{listed['id']}", headers=customer["headers"]).json()


def kinds(invoice: dict) -> dict[str, str]:
    return {ln["kind"]: ln["net"]["amount"] for ln in invoice["lines"]}


def test_covers_rounds_once_half_up():
    assert commitments.covers(5000, 150_000) == 5882  # 58.8235…
    assert commitments.covers(1700, 150_000) == 2000  # exact
    assert commitments.draw(6868, {"monthly_minor": 5000, "discount_ppm": 150_000}) == (5882, 5986)
    assert commitments.draw(51, {"monthly_minor": 5000, "discount_ppm": 150_000}) == (51, 5000)
    assert commitments.draw(6868, None) == (0, 6868)


def test_a_plan_is_drawn_first_then_usage_beyond_it_is_billed_at_list_price(client, rt, clock, acme, tmp_path):
    plan = commit(client, acme)
    assert (plan["starts_on"], plan["ends_on"], plan["months"], plan["percent_off"]) == ("2026-02-01", "2027-02-01", 12, "15")
    assert (plan["monthly"]["amount"], plan["covers"]["amount"]) == ("50.00", "58.82")
    clock.set("2026-03-01T00:00:00+00:00")
    send(client, acme, month_records(acme["project"], FEBRUARY, "feb", 672))  # 672 × 0.1022 = 68.6784 → 68.68 (under the cap)
    summary = metering.run_usage_billing(rt, FEBRUARY)
    assert (summary.projects, summary.invoices, summary.lines, summary.failed) == (1, 1, 3, 0)
    invoice = invoice_of(client, acme, FEBRUARY)
    assert kinds(invoice) == {"usage": "68.68", "commitment": "50.00", "covered": "-58.82"}
    assert invoice["net"]["amount"] == "59.86"  # 50.00 + (68.68 − 58.82) beyond the plan, at list price
    assert invoice["tax"]["amount"] == "11.97"  # 20 % of 59.86 = 11.972
    assert invoice["total"]["amount"] == "71.83"
    pdf = client.get(f"/v1/invoices/{invoice['id']}/pdf", headers=acme["headers"])  # Factur-X with a negative line
    assert pdf.status_code == 200 and check_factur_x(pdf.content) == [], pdf.text[:300]
    xml = [(client.get(f"/v1/invoices/{invoice['id']}/{fmt}", headers=acme["headers"]).content, flavor)
           for fmt, flavor in (("cii", "factur-x"), ("ubl", "ubl-2.1-invoice"))]
    assert check(xml, tmp_path) == [[], []]  # the EN 16931 validators take the negative line


def test_a_month_under_the_plan_costs_the_plan_and_a_month_without_usage_too(client, rt, clock, acme):
    commit(client, acme)
    clock.set("2026-04-01T00:00:00+00:00")
    send(client, acme, month_records(acme["project"], MARCH, "mar", 10, dimension="b3-8"))  # 10 × 0.0511 = 0.511 → 0.51
    metering.run_usage_billing(rt, MARCH)
    march = invoice_of(client, acme, MARCH)
    assert kinds(march) == {"usage": "0.51", "commitment": "50.00", "covered": "-0.51"}
    assert march["net"]["amount"] == "50.00"
    clock.set("2026-05-01T00:00:00+00:00")
    summary = metering.run_usage_billing(rt, APRIL)  # no usage at all: the plan is still due
    assert (summary.projects, summary.invoices, summary.free) == (1, 1, 0)
    april = invoice_of(client, acme, APRIL)
    assert kinds(april) == {"commitment": "50.00"} and april["net"]["amount"] == "50.00"
    assert metering.run_usage_billing(rt, APRIL).invoices == 0  # twice is once


def test_the_forecast_of_a_steady_load_under_a_plan_equals_the_invoice(client, rt, clock, acme):
    commit(client, acme)
    project = acme["project"]
    clock.set("2026-02-15T00:00:00+00:00")  # half of February: 336 hours of b3-16 so far
    send(client, acme, month_records(project, FEBRUARY, "feb", 336))
    c = client.get(f"/v1/services/{project}/consumption", headers=acme["headers"]).json()
    assert c["savings_plan"]["covers"]["amount"] == "58.82" and c["savings_plan"]["covered"]["amount"] == "34.34"
    assert (c["total"]["amount"], c["due"]["amount"]) == ("34.34", "50.00")  # 336 × 0.1022 = 34.3392, within the plan
    assert (c["forecast"]["amount"], c["forecast_due"]["amount"]) == ("68.68", "59.86")
    clock.set("2026-03-01T00:00:00+00:00")
    send(client, acme, month_records(project, FEBRUARY, "feb", 672))  # the other half, the same pace
    metering.run_usage_billing(rt, FEBRUARY)
    assert invoice_of(client, acme, FEBRUARY)["net"]["amount"] == c["forecast_due"]["amount"]


def test_a_plan_ends_after_its_months(client, rt, clock, acme):
    commit(client, acme, starts="2026-02", months=12)
    clock.set("2027-03-01T00:00:00+00:00")
    send(client, acme, month_records(acme["project"], dt.date(2027, 2, 1), "feb27", 10, dimension="b3-8"))
    metering.run_usage_billing(rt, dt.date(2027, 2, 1))
    assert kinds(invoice_of(client, acme, dt.date(2027, 2, 1))) == {"usage": "0.51"}  # the plan ended in January 2027


def test_committing_again_is_idempotent_and_conflicts_are_refused(client, rt, acme):
    first = commit(client, acme)
    again = commit(client, acme, expect=200)
    assert again["id"] == first["id"]
    assert commit(client, acme, monthly="60.00", expect=409)["code"] == "commitment_exists"
    assert commit(client, acme, starts="2026-06", expect=409)["code"] == "commitment_overlaps"
    nxt = commit(client, acme, starts="2027-02")  # the next plan, signed ahead
    assert nxt["starts_on"] == "2027-02-01"
    with rt.engine.connect() as conn:
        t, events = Commitment.__table__, AuditEvent.__table__
        assert conn.execute(select(t.c.starts_on).where(t.c.service_id == acme["project"]).order_by(t.c.starts_on)).scalars().all() \
            == [FEBRUARY, dt.date(2027, 2, 1)]
        logged = conn.execute(select(events.c.action).where(events.c.entity_id == acme["project"],
                                                            events.c.action == "service.commitment")).all()
        assert len(logged) == 2  # two plans made, the repeat logged nothing


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"monthly": "49.99"}, 422, "commitment_too_small"),
    ({"monthly": "50.001"}, 422, "invalid_amount"),
    ({"monthly": "fifty"}, 422, "invalid_amount"),
    ({"months": 24}, 422, "no_such_commitment"),
    ({"starts": "2026-01"}, 422, "invalid_start"),  # this month is already started
])
def test_bad_commitments_are_refused_and_change_nothing(client, rt, acme, body, status, code):
    answer = commit(client, acme, expect=status, **body)
    assert answer["code"] == code, answer
    assert client.get(f"/v1/services/{acme['project']}/commitments", headers=acme["headers"]).json() == []


def test_only_projects_take_a_plan(client, shop, acme):
    server = shop.order(acme, "bm-ks-1-p1m")["services"][0]["id"]
    r = client.post(f"/v1/services/{server}/commitments", json={"monthly": "50.00"}, headers=acme["headers"])
    assert (r.status_code, r.json()["code"]) == (422, "not_a_project")
