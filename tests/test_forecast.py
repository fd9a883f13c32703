"""The renewal forecast: what renews and what stops, for how much, day by day, by universe,
storefront and currency, as JSON, CSV, a chart and in the CLI; and it agrees with what the
renewal run then invoices."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.boot import load_catalog
from core.catalog.admin import add_price
from core.countries.storefronts import load_subsidiaries
from core.i18n import translate
from core.models import AuditEvent, Invoice, InvoiceLine, Service
from core.money import format_minor
from core.plugins import build_plugin_manager
from core.testing import make_runtime
from plugins.web.plugin import WebUniverse

ROOT = Path(__file__).resolve().parent.parent
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def rt(tmp_path, monkeypatch, settings, clock, database_url):
    """The shipped catalog, except that Email Pro costs 2.49 instead of 1.99 in FR from 1 March 2026."""
    from core.sim import reset_failures

    shutil.copytree(ROOT / "plugins" / "web" / "catalog", tmp_path / "web-catalog")
    monkeypatch.setattr(WebUniverse, "catalog_dir", property(lambda self: tmp_path / "web-catalog"))
    storefronts = load_subsidiaries()
    pm = build_plugin_manager(settings)
    catalog, _domains, _problems = load_catalog(pm, settings, clock, storefronts)
    add_price(pm, catalog, storefronts, "FR", "web-email-pro-p1m", dt.date(2026, 3, 1), "2.49", clock.today())
    reset_failures()
    runtime = make_runtime(settings, clock, database_url)
    yield runtime
    runtime.close()


@pytest.fixture
def book(shop):
    """Two EUR storefronts and a GBP one; monthly and yearly services; one set to stop, one set
    to stop under an engagement, one renewed by hand. Today is 10 January 2026."""
    fr = shop.signup("FR", top_up="500.00")
    de = shop.signup("DE", top_up="500.00", name="Jonas Weber", kind="person")
    shop.order(fr, "web-email-pro-p1m", quantity=3)  # 3 × 1.99, then 3 × 2.49 from 1 March
    shop.order(fr, "web-domain-com-p12m", options={"domain": "acme.com"})  # yearly: 5 January 2027
    shop.order(fr, "bm-ks-1-p1m-e12", renewal_mode="terminate")  # renews at 12.49 until its engagement ends
    stopping = shop.order(fr, "bm-ks-1-p1m")  # 12.99, set to stop below: ends on 5 February
    shop.order(fr, "web-hosting-starter-p1m", renewal_mode="manual")  # renewed by hand: never forecast
    shop.order(de, "web-hosting-pro-p1m")  # 9.99
    shop.clock.set(dt.date(2026, 1, 10))
    gb = shop.signup("GB", top_up="100.00", name="Oliver Smith", kind="person")
    shop.order(gb, "web-hosting-starter-p1m")  # 2.49 GBP, renews on the 10th
    shop.deliver()
    r = shop.client.post(f"/v1/services/{stopping['services'][0]['id']}/stop", headers=fr["headers"])
    assert r.status_code == 200 and r.json()["ends_on"] == "2026-02-05"
    return {"fr": fr, "de": de, "gb": gb, "staff": shop.staff(), "stopping": stopping["services"][0]["id"]}


EXPECTED = [  # day, storefront, universe, renewing, renewing net, stopping, stopping net (minor units)
    ("2026-02-05", "DE", "web", 1, 999, 0, 0),
    ("2026-02-05", "FR", "baremetal", 1, 1249, 1, 1299),
    ("2026-02-05", "FR", "web", 1, 597, 0, 0),
    ("2026-02-10", "GB", "web", 1, 249, 0, 0),
    ("2026-03-05", "DE", "web", 1, 999, 0, 0),
    ("2026-03-05", "FR", "baremetal", 1, 1249, 0, 0),
    ("2026-03-05", "FR", "web", 1, 747, 0, 0),
    ("2026-03-10", "GB", "web", 1, 249, 0, 0),
    ("2026-04-05", "DE", "web", 1, 999, 0, 0),
    ("2026-04-05", "FR", "baremetal", 1, 1249, 0, 0),
    ("2026-04-05", "FR", "web", 1, 747, 0, 0),
    ("2026-04-10", "GB", "web", 1, 249, 0, 0),
]


def _rows(body: dict) -> list[tuple]:
    return [(r["day"], r["subsidiary"], r["universe"], r["renewing"], r["renewing_net"]["amount_minor"], r["stopping"],
             r["stopping_net"]["amount_minor"]) for r in body["rows"]]


def _get(shop, path: str, headers: dict, **extra):
    return shop.client.get(path, headers={**headers, **extra})


def test_forecast_by_day_storefront_universe_and_currency(shop, book):
    r = _get(shop, "/v1/staff/reports/forecast?days=100", book["staff"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["start"], body["end"], body["days"]) == ("2026-01-10", "2026-04-19", 100)  # from today by default
    assert _rows(body) == EXPECTED
    totals = {t["currency"]: (t["renewing"], t["renewing_net"]["amount_minor"], t["stopping"], t["stopping_net"]["amount_minor"])
              for t in body["totals"]}
    assert totals == {"EUR": (9, 8835, 1, 1299), "GBP": (3, 747, 0, 0)}  # FR and DE add up; EUR and GBP never do
    feb = body["rows"][1]["stopping_net"]
    assert (feb["amount"], feb["currency"], feb["formatted"]) == ("12.99", "EUR", "12,99\xa0€")  # the staff member's French


def test_monthly_renewals_are_projected_at_the_price_in_force_on_their_date(shop, book):
    body = _get(shop, "/v1/staff/reports/forecast?days=100", book["staff"]).json()
    email = [(r["day"], r["renewing_net"]["amount_minor"]) for r in body["rows"] if r["subsidiary"] == "FR" and r["universe"] == "web"]
    assert email == [("2026-02-05", 3 * 199), ("2026-03-05", 3 * 249), ("2026-04-05", 3 * 249)]


def test_a_stopping_service_is_churn_on_its_end_date_and_never_again(shop, book):
    body = _get(shop, "/v1/staff/reports/forecast?days=366&start=2026-01-05", book["staff"]).json()
    assert [(r["day"], r["subsidiary"], r["universe"], r["stopping"], r["stopping_net"]["amount_minor"])
            for r in body["rows"] if r["stopping"]] == [
        ("2026-02-05", "FR", "baremetal", 1, 1299),
        ("2027-01-05", "FR", "baremetal", 1, 1249),  # set to stop under a 12-month engagement: ends with it
    ]
    # the engaged one renewed every month until then, at its own price
    engaged = [r["renewing_net"]["amount_minor"] for r in body["rows"] if r["universe"] == "baremetal" and r["renewing"]]
    assert engaged == [1249] * 11


def test_a_yearly_service_renews_once_a_year(shop, book):
    body = _get(shop, "/v1/staff/reports/forecast?days=366&start=2026-01-05", book["staff"]).json()
    last = [r for r in body["rows"] if r["day"] == "2027-01-05" and r["universe"] == "web" and r["subsidiary"] == "FR"]
    assert [(r["subsidiary"], r["universe"], r["renewing"], r["renewing_net"]["amount_minor"]) for r in last] == [
        ("FR", "web", 2, 1199 + 3 * 249)]  # the .com domain, once, with the monthly email
    assert sum(r["renewing"] for r in body["rows"] if r["subsidiary"] == "FR" and r["universe"] == "web") == 13
    short = _get(shop, "/v1/staff/reports/forecast?days=365&start=2026-01-05", book["staff"]).json()
    assert not [r for r in short["rows"] if r["day"] == "2027-01-05"]


def test_a_paid_renewal_leaves_the_forecast_and_an_unpaid_one_stays_at_its_invoiced_price(shop, book):
    r = shop.client.put("/v1/me/payment-method", json={"method": "test", "outcome": "decline"}, headers=book["de"]["headers"])
    assert r.status_code == 200
    shop.days(dt.date(2026, 1, 30))  # 5 February's renewals were invoiced on the 29th: FR paid, DE declined
    body = _get(shop, "/v1/staff/reports/forecast?days=40", book["staff"]).json()
    assert _rows(body) == [
        ("2026-02-05", "DE", "web", 1, 999, 0, 0),  # invoiced, not paid: still to come, and not twice
        ("2026-02-05", "FR", "baremetal", 0, 0, 1, 1299),
        ("2026-02-10", "GB", "web", 1, 249, 0, 0),
        ("2026-03-05", "DE", "web", 1, 999, 0, 0),
        ("2026-03-05", "FR", "baremetal", 1, 1249, 0, 0),
        ("2026-03-05", "FR", "web", 1, 747, 0, 0),
        ("2026-03-10", "GB", "web", 1, 249, 0, 0),
    ]


@pytest.mark.slow
def test_the_forecast_is_what_the_renewal_run_then_invoices(shop, book, rt):
    body = _get(shop, "/v1/staff/reports/forecast?days=100", book["staff"]).json()
    shop.days(dt.date(2026, 3, 6))
    inv, line = Invoice.__table__, InvoiceLine.__table__
    with rt.engine.connect() as conn:
        invoiced = conn.execute(
            select(line.c.period_start, inv.c.subsidiary, line.c.universe, func.count(), func.sum(line.c.net_minor))
            .join(inv, inv.c.id == line.c.invoice_id).where(inv.c.kind == "renewal")
            .group_by(line.c.period_start, inv.c.subsidiary, line.c.universe).order_by(line.c.period_start, inv.c.subsidiary, line.c.universe)
        ).all()
        stopped = conn.execute(select(Service.__table__.c.state).where(Service.__table__.c.id == book["stopping"])).scalar_one()
    forecast = [(r[0], r[1], r[2], r[3], r[4]) for r in _rows(body) if r[0] <= "2026-03-10" and r[3]]
    assert [(d.isoformat(), sf, u, n, int(net)) for d, sf, u, n, net in invoiced] == forecast
    assert stopped in ("terminated", "deleted")  # ended, then its data deleted after the retention period


@pytest.mark.slow
def test_month_ends_are_projected_as_the_renewal_run_moves_them(shop, rt):
    shop.clock.set(dt.date(2025, 12, 31))
    customer = shop.signup("FR", top_up="100.00")
    shop.order(customer, "web-hosting-starter-p1m")
    shop.deliver()
    body = _get(shop, "/v1/staff/reports/forecast?days=100", shop.staff()).json()
    assert [(r["day"], r["renewing"]) for r in body["rows"]] == [("2026-01-31", 1), ("2026-02-28", 1), ("2026-03-28", 1)]
    shop.days(dt.date(2026, 3, 29))
    starts = [line["period_start"] for invoice in shop.invoices(customer) if invoice["kind"] == "renewal"
              for line in invoice["lines"]]
    assert sorted(starts) == [r["day"] for r in body["rows"]]


def test_csv_has_the_json_rows(shop, book):
    body = _get(shop, "/v1/staff/reports/forecast?days=100", book["staff"]).json()
    r = _get(shop, "/v1/staff/reports/forecast.csv?days=100", book["staff"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="forecast-2026-01-10-2026-04-19.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["day"], x["subsidiary"], x["universe"], x["currency"], int(x["renewing"]), Decimal(x["renewing_net"]),
             int(x["stopping"]), Decimal(x["stopping_net"])) for x in rows] == [
        (x["day"], x["subsidiary"], x["universe"], x["currency"], x["renewing"], Decimal(x["renewing_net"]["amount"]),
         x["stopping"], Decimal(x["stopping_net"]["amount"])) for x in body["rows"]]
    assert rows[1]["stopping_net"] == "12.99"


def test_chart_has_one_panel_per_currency_in_the_readers_language(shop, book):
    r = _get(shop, "/v1/staff/reports/forecast.svg?days=100", book["staff"], **{"Accept-Language": "fr"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(r.text)
    assert root.tag == f"{SVG}svg"
    panels = {g.get("data-currency"): g for g in root.iter(f"{SVG}g") if g.get("class") == "panel"}
    assert list(panels) == ["EUR", "GBP"]
    eur, gbp = panels["EUR"], panels["GBP"]
    bars = [rect for rect in eur.iter(f"{SVG}rect") if rect.find(f"{SVG}title") is not None]
    churn = [rect for rect in bars if rect.get("fill") == "url(#churn)"]
    assert len(bars) == 7 and len(churn) == 1  # three days of two universes stacked (FR and DE together), one of churn
    assert len([rect for rect in gbp.iter(f"{SVG}rect") if rect.find(f"{SVG}title") is not None]) == 3
    baremetal, web = (rect.find(f"{SVG}title").text.splitlines() for rect in bars[:2])  # 5 February, bottom up
    renewals = translate("Renewals: {count}, {amount}", "fr")
    assert renewals != "Renewals: {count}, {amount}"
    assert baremetal == ["5 févr. 2026", "baremetal · " + renewals.format(count=1, amount=format_minor(1249, 'EUR', 'fr')),
                         f"FR: {format_minor(1249, 'EUR', 'fr')}"]
    assert web == ["5 févr. 2026", "web · " + renewals.format(count=2, amount=format_minor(1596, 'EUR', 'fr')),
                   f"DE: {format_minor(999, 'EUR', 'fr')}", f"FR: {format_minor(597, 'EUR', 'fr')}"]
    texts = ["".join(t.itertext()) for t in eur.iter(f"{SVG}text")]
    assert any(format_minor(8835, "EUR", "fr") in t for t in texts)  # the panel's totals, written the French way
    assert any(t.endswith("€") for t in texts)  # amount ticks too (« 10 € »)
    assert {"10 janv.", "1 févr.", "1 mars", "1 avr."} <= set(texts)  # date ticks
    zero = next(line for line in eur.iter(f"{SVG}line") if line.get("stroke") == "#444444" and line.get("y1") == line.get("y2"))
    assert float(churn[0].get("y")) == pytest.approx(float(zero.get("y1")), abs=0.1)  # churn hangs below the axis
    assert "12,99" in churn[0].find(f"{SVG}title").text
    legend = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "legend")
    assert {"baremetal", "web", translate("Stopping (churn)", "fr")} <= {t.text for t in legend.iter(f"{SVG}text")}
    assert root.find(f"{SVG}title").text.startswith(translate("Renewal forecast: {period}", "fr").split("{")[0])


def test_an_empty_forecast_still_draws(shop):
    r = _get(shop, "/v1/staff/reports/forecast.svg?days=7", shop.staff())
    root = ET.fromstring(r.text)
    assert not [g for g in root.iter(f"{SVG}g") if g.get("class") == "panel"]
    nothing = translate("Nothing renews or stops in this period.", "fr")  # the staff account reads French
    assert nothing in ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


@pytest.mark.parametrize("suffix", ["", ".csv", ".svg"])
def test_the_forecast_is_for_staff_only(shop, book, suffix):
    r = _get(shop, f"/v1/staff/reports/forecast{suffix}?days=30", book["fr"]["headers"])
    assert r.status_code == 403 and r.json()["code"] == "forbidden"


@pytest.mark.parametrize("query", ["days=0", "days=367", "days=-5"])
def test_a_window_out_of_bounds_is_a_problem_and_changes_nothing(shop, book, query):
    before = shop.count(AuditEvent), shop.count(Invoice)
    for suffix in ("", ".csv", ".svg"):
        r = _get(shop, f"/v1/staff/reports/forecast{suffix}?{query}", book["staff"])
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
        problem = r.json()
        assert problem["code"] == "invalid_forecast_days" and problem["status"] == 422
        assert problem["detail"] == f"A forecast covers 1 to 366 days, not {query[5:]}."
    assert (shop.count(AuditEvent), shop.count(Invoice)) == before


def test_a_malformed_window_is_a_problem(shop, book):
    r = _get(shop, "/v1/staff/reports/forecast?days=ninety", book["staff"])
    assert r.status_code == 400 and r.json()["code"] == "invalid_request"
    r = _get(shop, "/v1/staff/reports/forecast?start=tomorrow", book["staff"])
    assert r.status_code == 400 and r.json()["code"] == "invalid_request"


def test_cli_forecast(shop, book, tmp_path, monkeypatch, capsys, database_url):
    from core.cli import main

    url, schema = database_url
    monkeypatch.setenv("UNIVERS_DATABASE_URL", f"{url}?options=-csearch_path%3D{schema}" if schema else url)
    monkeypatch.setenv("UNIVERS_STAFF_KEY", book["staff"]["Authorization"][7:])
    window = ["report", "forecast", "--days", "100", "--start", "2026-01-10"]
    assert main(window) == 0
    table = capsys.readouterr().out
    assert "total EUR" in table and "€88.35" in table and "€12.99" in table
    assert main([*window, "--format", "json"]) == 0
    assert _rows(json.loads(capsys.readouterr().out)) == EXPECTED
    assert main([*window, "--format", "csv"]) == 0
    api = _get(shop, "/v1/staff/reports/forecast.csv?days=100&start=2026-01-10", book["staff"]).text
    assert capsys.readouterr().out == api
    assert main([*window, "--output", str(tmp_path / "forecast.svg"), "--locale", "de"]) == 0
    root = ET.parse(tmp_path / "forecast.svg").getroot()
    assert [g.get("data-currency") for g in root.iter(f"{SVG}g") if g.get("class") == "panel"] == ["EUR", "GBP"]
    assert main([*window, "--output", str(tmp_path / "forecast.txt")]) == 2
    assert main(["report", "forecast", "--days", "400"]) == 1
    assert "invalid_forecast_days" in capsys.readouterr().err
