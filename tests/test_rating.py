"""Rating and the monthly invoice in arrears of pay-as-you-go projects, on both engines.

Prices of the FR storefront (plugins/publiccloud/catalog/countries/FR.toml), January 2026 (744 hours):
b3-8 at 0.0511 €/h capped at 37.30 €/month, b3-16 at 0.1022 €/h capped at 74.61 €, block storage
0.000055 €/GB-hour, object storage 0.0070 €/GB-month, egress 0.0100 €/GB after 1,024 GB free.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from core.models import Invoice, UsagePeriod
from core.uow import unit_of_work
from core.usage import metering, rating

PROJECT = "pci-project-p1m"
JANUARY = dt.date(2026, 1, 1)


def hourly(project: int, prefix: str, hours, metric="instance_hours", dimension="b3-8", quantity="1") -> list[dict]:
    """One record per hour of January from hour ``hours.start``."""
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    out = []
    for h in hours:
        rec = {"id": f"{prefix}-{h}", "project": project, "metric": metric, "quantity": quantity,
               "at": (base + dt.timedelta(hours=h)).isoformat().replace("+00:00", "Z")}
        if dimension:
            rec["dimension"] = dimension
        out.append(rec)
    return out


def send(client, customer, records):
    for start in range(0, len(records), 10_000):
        r = client.post("/v1/usage", json={"records": records[start:start + 10_000]}, headers=customer["headers"])
        assert r.status_code == 200, r.text
        assert r.json()["rejected"] == [], r.json()["rejected"][:3]
    return r.json()


@pytest.fixture
def acme(shop):
    customer = shop.signup()
    customer["project"] = shop.order(customer, PROJECT)["services"][0]["id"]
    return customer


def a_month(client, clock, customer) -> None:
    """The hand-checked month: every record is in January, sent on 1 February at midnight."""
    p = customer["project"]
    clock.set("2026-02-01T00:00:00+00:00")
    send(client, customer,
         hourly(p, "b3-8", range(744))  # one b3-8 all month: 744 × 0.0511 = 38.0184 > cap → 37.30
         + hourly(p, "b3-16", range(100), dimension="b3-16")  # 100 × 0.1022 = 10.22
         + hourly(p, "vol", range(744), metric="block_storage_gb_hours", dimension=None, quantity="100")  # 74,400 × 0.000055 = 4.092 → 4.09
         + hourly(p, "egress", range(11), metric="egress_gb", dimension=None, quantity="100")  # 1,100 − 1,024 free = 76 × 0.01 = 0.76
         + hourly(p, "obj", range(1), metric="object_storage_gb_months", dimension=None, quantity="10.5"))  # 0.0735 → 0.07
    # sent again: duplicates count once
    send(client, customer, hourly(p, "b3-16", range(100), dimension="b3-16"))


def usage_invoices(client, customer) -> list[dict]:
    r = client.get("/v1/invoices", headers=customer["headers"])
    assert r.status_code == 200, r.text
    return [i for i in r.json()["items"] if i["kind"] == "usage"]


def test_a_month_of_hourly_records_gives_the_hand_checked_invoice(client, rt, clock, acme):
    a_month(client, clock, acme)
    clock.set("2026-02-01T03:00:00+00:00")
    summary = metering.run_usage_billing(rt, JANUARY)
    assert (summary.projects, summary.invoices, summary.lines, summary.failed) == (1, 1, 5, 0)
    [listed] = usage_invoices(client, acme)
    invoice = client.get(f"/v1/invoices/{listed['id']}", headers=acme["headers"]).json()
    lines = {(ln["plan"] or None, ln["net"]["amount"]) for ln in invoice["lines"]}
    assert lines == {("b3-8", "37.30"), ("b3-16", "10.22"), (None, "4.09"), (None, "0.76"), (None, "0.07")}
    assert invoice["net"]["amount"] == "52.44"
    assert invoice["tax"]["amount"] == "10.49"  # 20 % of 52.44 = 10.488
    assert invoice["total"]["amount"] == "62.93"
    assert invoice["status"] == "issued" and re.fullmatch(r"[A-Z0-9]+-2026-\d{6}", invoice["number"]), invoice["number"]
    b3_8 = next(ln for ln in invoice["lines"] if ln["plan"] == "b3-8")
    assert b3_8["description"].startswith("Heures d’instance b3-8") and "744 × 0,0511\u00a0€" in b3_8["description"]  # in French
    assert (b3_8["period_start"], b3_8["period_end"]) == ("2026-01-01", "2026-02-01")
    assert (b3_8["metric"], b3_8["quantity_exact"], b3_8["unit_price_exact"]) == ("instance_hours", "744", "0.0511")
    volume = next(ln for ln in invoice["lines"] if ln["metric"] == "block_storage_gb_hours")
    assert (volume["quantity_exact"], volume["unit_price_exact"], volume["net"]["amount"]) == ("74400", "0.000055", "4.09")


def test_numbers_stay_gapless_after_renewals(client, rt, clock, acme, shop):
    other = shop.signup(name="Beta SARL")
    other["project"] = shop.order(other, PROJECT)["services"][0]["id"]
    clock.set("2026-02-01T00:00:00+00:00")
    send(client, acme, hourly(acme["project"], "a", range(10)))
    send(client, other, hourly(other["project"], "b", range(20)))
    metering.run_usage_billing(rt, JANUARY)
    with rt.engine.connect() as conn:
        inv = Invoice.__table__
        seqs = conn.execute(select(inv.c.seq).where(inv.c.kind == "usage").order_by(inv.c.seq)).scalars().all()
        last = conn.execute(select(func.max(inv.c.seq)).where(inv.c.subsidiary == "FR")).scalar_one()
    assert len(seqs) == 2 and seqs[1] == seqs[0] + 1 and last == seqs[1]


@pytest.mark.parametrize(("hours", "expected"), [
    (700, 3577),  # 700 × 0.0511 = 35.77: under the cap
    (744, 3730),  # a whole month: 38.0184 capped at 37.30
    (800, 4088),  # a month and 56 h: 40.88, under two months' cap (74.60)
    (1488, 7460),  # two instances all month: two caps
])
def test_the_monthly_cap_applies_per_started_month_equivalent(rt, hours, expected):
    r = rating.rate_for(rt.catalog, rt.metrics, "FR", "instance_hours", "b3-8", JANUARY)
    assert r.tiers == ((None, 51_100),) and r.cap_minor == 3730
    assert rating.rate(r, hours * 1_000_000, JANUARY, "EUR")[0] == expected


@pytest.mark.parametrize(("gb", "expected"), [(0, 0), (1024, 0), ("1024.5", 1), (1100, 76), (2048, 1024)])
def test_the_free_allowance_of_egress(rt, gb, expected):
    from decimal import Decimal

    r = rating.rate_for(rt.catalog, rt.metrics, "FR", "egress_gb", None, JANUARY)
    assert rating.rate(r, int(Decimal(str(gb)) * 1_000_000), JANUARY, "EUR")[0] == expected  # 0.5 GB × 0.01 = 0.005 → 0.01


def test_a_month_within_the_free_allowance_is_closed_without_an_invoice(client, rt, clock, acme):
    clock.set("2026-02-01T00:00:00+00:00")
    send(client, acme, hourly(acme["project"], "e", range(10), metric="egress_gb", dimension=None, quantity="100"))
    summary = metering.run_usage_billing(rt, JANUARY)
    assert (summary.projects, summary.invoices, summary.free) == (1, 0, 1)
    assert usage_invoices(client, acme) == []
    with rt.engine.connect() as conn:
        t = UsagePeriod.__table__
        assert conn.execute(select(t.c.invoice_id).where(t.c.service_id == acme["project"])).all() == [(None,)]


def test_late_records_for_an_invoiced_month_are_refused(client, rt, clock, acme):
    clock.set("2026-02-01T00:00:00+00:00")
    send(client, acme, hourly(acme["project"], "a", range(10)))
    metering.run_usage_billing(rt, JANUARY)
    late = hourly(acme["project"], "late", range(743, 744)) + [
        {"id": "feb", "project": acme["project"], "metric": "instance_hours", "dimension": "b3-8", "quantity": "1",
         "at": "2026-02-01T00:00:00Z"}]
    r = client.post("/v1/usage", json={"records": late}, headers=acme["headers"]).json()
    assert [(x["id"], x["code"]) for x in r["rejected"]] == [("late-743", "closed_period")]
    assert r["accepted"] == 1  # February is open


def test_running_the_monthly_run_twice_issues_one_invoice(client, rt, clock, acme):
    clock.set("2026-02-01T00:00:00+00:00")
    send(client, acme, hourly(acme["project"], "a", range(10)))
    first = metering.run_usage_billing(rt, JANUARY)
    second = metering.run_usage_billing(rt, JANUARY)
    assert (first.invoices, second.invoices, second.projects) == (1, 0, 0)
    assert len(usage_invoices(client, acme)) == 1


def test_a_chunk_racing_another_run_rolls_back_on_the_period_key(client, rt, clock, acme, monkeypatch):
    """A worker that picked a project just before another closed it fails on the period's key,
    and nothing of its chunk stays (no second invoice)."""
    clock.set("2026-02-01T00:00:00+00:00")
    send(client, acme, hourly(acme["project"], "a", range(10)))
    metering.run_usage_billing(rt, JANUARY)
    svc = metering.svc
    monkeypatch.setattr(metering, "_open_projects", lambda period, after: select(svc.c.id).where(
        svc.c.id > after, svc.c.kind == "project").order_by(svc.c.id))  # blind to the closed period
    with pytest.raises(Exception), unit_of_work(rt) as conn:
        metering.bill_chunk(conn, rt, JANUARY, 0, 10)
    assert len(usage_invoices(client, acme)) == 1


def test_a_month_not_over_is_not_invoiced(rt, clock):
    from core.errors import InvalidInput

    with pytest.raises(InvalidInput) as err:
        metering.run_usage_billing(rt, JANUARY)  # the clock is on 5 January
    assert err.value.code == "period_not_over"


def test_the_forecast_of_a_steady_load_equals_the_final_invoice(client, rt, clock, acme):
    p = acme["project"]
    load = lambda hours: (hourly(p, "i", hours) + hourly(p, "v", hours, metric="block_storage_gb_hours", dimension=None,  # noqa: E731
                                                         quantity="100"))
    clock.set("2026-01-16T00:00:00+00:00")  # 15 days of 31 elapsed
    send(client, acme, load(range(360)))
    r = client.get(f"/v1/services/{p}/consumption", headers=acme["headers"])
    assert r.status_code == 200, r.text
    c = r.json()
    # so far: 360 h × 0.0511 = 18.396 → 18.40; 36,000 GB-h × 0.000055 = 1.98
    assert c["total"]["amount"] == "20.38"
    assert {ln["dimension"]: ln["forecast_quantity"] for ln in c["lines"]} == {"b3-8": "744", None: "74400"}
    assert c["forecast"]["amount"] == "41.39"  # 37.30 (capped) + 4.09
    clock.set("2026-02-01T00:00:00+00:00")
    send(client, acme, load(range(360, 744)))
    metering.run_usage_billing(rt, JANUARY)
    [invoice] = usage_invoices(client, acme)
    assert client.get(f"/v1/invoices/{invoice['id']}", headers=acme["headers"]).json()["net"]["amount"] == c["forecast"]["amount"]


def test_the_consumption_is_in_the_customers_language(client, clock, acme):
    clock.set("2026-01-16T00:00:00+00:00")
    send(client, acme, hourly(acme["project"], "i", range(10)))
    c = client.get(f"/v1/services/{acme['project']}/consumption",
                   headers={**acme["headers"], "Accept-Language": "fr-FR"}).json()
    assert c["total"]["formatted"] == "0,51\u00a0€"
    assert c["lines"][0]["unit_price"] == "0.0511"


def test_a_storefront_selling_the_universe_without_a_price_is_refused(rt):
    catalog = dataclasses.replace(rt.catalog, offers=dict(rt.catalog.offers))
    fr = catalog.offers["FR"]
    catalog.offers["FR"] = dataclasses.replace(fr, usage={k: v for k, v in fr.usage.items() if k != "egress_gb"})
    problems = rating.price_problems(catalog, rt.metrics)
    assert [(p.plugin, p.storefront, p.rule) for p in problems] == [("publiccloud", "FR", "missing_usage_price")]
    assert rating.price_problems(rt.catalog, rt.metrics) == []
