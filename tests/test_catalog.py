"""The catalog as the country teams run it: overlays, dated prices, the check, the CLI."""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

import core.i18n
from core.catalog import (
    CatalogError,
    OverlaySpec,
    PlanSpec,
    PricePoint,
    ProductSpec,
    build_catalog,
    load_overlay_file,
)
from core.catalog.admin import EditError, add_price, set_enabled
from core.cli import main
from core.countries.storefronts import load_subsidiaries
from core.testing import make_runtime
from plugins.baremetal.plugin import BaremetalUniverse
from plugins.web.plugin import WebUniverse

ROOT = Path(__file__).resolve().parent.parent
STOREFRONTS = load_subsidiaries()


def test_the_shipped_catalog_passes_its_check(capsys):
    """CI fails on a missing price or translation, or on a template older than its sources."""
    assert main(["catalog", "check"]) == 0, capsys.readouterr().err


# --- a copy of the web and baremetal data, as a country team's branch ---------------------------


@pytest.fixture
def branch(tmp_path, monkeypatch):
    """The web and baremetal catalogs and the locales, copied where a test may edit them."""
    for name, cls in (("web", WebUniverse), ("baremetal", BaremetalUniverse)):
        shutil.copytree(ROOT / "plugins" / name / "catalog", tmp_path / name)
        monkeypatch.setattr(cls, "catalog_dir", property(lambda self, d=tmp_path / name: d))
    shutil.copytree(ROOT / "locales", tmp_path / "locales")
    monkeypatch.setattr(WebUniverse, "locales_dir", property(lambda self: tmp_path / "locales"))
    monkeypatch.setattr(core.i18n, "_DOMAINS", {})
    core.i18n._catalog.cache_clear()
    yield tmp_path
    core.i18n._catalog.cache_clear()


def _edit(env_rt, action, *args, **kwargs):
    """A catalog edit with the tools the CLI uses, against the branch's current catalog."""
    from core.boot import load_catalog
    from core.plugins import build_plugin_manager

    pm = build_plugin_manager(env_rt["settings"])
    catalog, _domains, _problems = load_catalog(pm, env_rt["settings"], env_rt["clock"], STOREFRONTS)
    return action(pm, catalog, STOREFRONTS, *args, **kwargs)


@pytest.fixture
def team(branch, settings, clock):
    return {"settings": settings, "clock": clock}


@pytest.fixture
def priced(team, settings, clock, database_url):
    """FR raises two prices from 1 March; PL starts selling .fr domains from 1 February."""
    today = clock.today()
    _edit(team, add_price, "FR", "web-hosting-starter-p1m", dt.date(2026, 3, 1), "3.49", today)
    _edit(team, add_price, "FR", "bm-ks-1-p1m-e12", dt.date(2026, 3, 1), "14.99", today)
    _edit(team, set_enabled, "PL", "web-domain-fr", True)
    _edit(team, add_price, "PL", "web-domain-fr-p12m", dt.date(2026, 2, 1), "39.99", today)
    runtime = make_runtime(settings, clock, database_url)
    yield runtime
    runtime.close()


@pytest.fixture
def priced_shop(priced, clock):
    from litestar.testing import TestClient

    from core.api.app import create_app
    from tests.conftest import Shop

    with TestClient(app=create_app(priced)) as client:
        yield Shop(client, priced, clock)


def _renewal_prices(shop, customer, plan):
    return {line["period_start"]: line["unit_price"]["amount"]
            for invoice in shop.invoices(customer) if invoice["kind"] == "renewal"
            for line in invoice["lines"] if line["plan"] == plan}


def test_a_price_change_applies_to_renewals_from_its_date_and_not_before(priced_shop):
    shop = priced_shop
    acme = shop.signup("FR", top_up="500.00")
    hosting = shop.order(acme, "web-hosting-starter-p1m")
    server = shop.order(acme, "bm-ks-1-p1m-e12")
    assert hosting["invoice"]["lines"][0]["unit_price"]["amount"] == "2.99"
    shop.deliver()
    shop.days(dt.date(2026, 3, 6))
    assert _renewal_prices(shop, acme, "web-hosting-starter-p1m") == {"2026-02-05": "2.99", "2026-03-05": "3.49"}
    # under a 12-month engagement the price is kept
    assert set(_renewal_prices(shop, acme, "bm-ks-1-p1m-e12").values()) == {"12.49"}
    assert shop.service(acme, server["services"][0]["id"])["price"]["amount"] == "12.49"
    assert shop.service(acme, hosting["services"][0]["id"])["price"]["amount"] == "3.49"
    # what was invoiced is never rewritten
    first = next(i for i in shop.invoices(acme) if i["id"] == hosting["invoice"]["id"])
    assert first["lines"][0]["unit_price"]["amount"] == "2.99"
    assert shop.order(acme, "web-hosting-starter-p1m")["invoice"]["lines"][0]["unit_price"]["amount"] == "3.49"


def test_the_catalog_shows_the_price_in_force_and_the_one_scheduled(priced_shop):
    def starter(query):
        listing = priced_shop.client.get(f"/v1/catalog?storefront=FR{query}").json()
        return next(pl for p in listing["products"] for pl in p["plans"] if pl["code"] == "web-hosting-starter-p1m")

    today = starter("")
    assert today["price"]["price"]["amount"] == "2.99"
    assert [(p["valid_from"], p["price"]["amount"], p["valid_from_text"]) for p in today["upcoming"]] == [
        ("2026-03-01", "3.49", "1 mars 2026")]
    march = starter("&at=2026-03-01")
    assert march["price"]["price"]["amount"] == "3.49" and march["upcoming"] == []


def test_a_product_enabled_from_next_month_is_on_sale_from_then(priced_shop):
    shop = priced_shop
    jan = shop.signup("PL", top_up="500.00")
    r = shop.client.post("/v1/orders", json={"items": [{"plan": "web-domain-fr-p12m", "options": {"domain": "przyklad.fr"}}]},
                         headers={**jan["headers"], "Idempotency-Key": "early", "Accept-Language": "pl"})
    assert r.status_code == 422 and [e["code"] for e in r.json()["errors"]] == ["not_on_sale_yet"]
    assert "jeszcze" in r.json()["errors"][0]["message"]  # "not yet", in Polish
    shop.clock.set(dt.date(2026, 2, 1))
    order = shop.order(jan, "web-domain-fr-p12m", options={"domain": "przyklad.fr"})
    assert order["invoice"]["lines"][0]["unit_price"]["formatted"] == "39,99\xa0zł"


def test_a_price_already_in_force_cannot_be_rewritten(team, settings, clock, database_url, branch):
    make_runtime(settings, clock, database_url).close()  # prices synced once
    path = branch / "web" / "countries" / "FR.toml"
    path.write_text(path.read_text().replace('web-hosting-starter-p1m = [{ from = 2024-01-01, price = "2.99" }]',
                                             'web-hosting-starter-p1m = [{ from = 2024-01-01, price = "2.49" }]'))
    with pytest.raises(CatalogError) as err:
        make_runtime(settings, clock, database_url)
    assert [p.rule for p in err.value.problems] == ["price_history_rewritten"]
    assert "web-hosting-starter-p1m" in str(err.value) and "FR.toml" in str(err.value)


def test_edits_refuse_what_would_break_the_catalog(team):
    today = team["clock"].today()
    with pytest.raises(EditError, match="after today"):
        _edit(team, add_price, "FR", "web-hosting-starter-p1m", today, "3.49", today)
    with pytest.raises(EditError, match="more decimals"):
        _edit(team, add_price, "CZ", "web-hosting-starter-p1m", today + dt.timedelta(days=1), "99.999", today)
    with pytest.raises(EditError, match="positive"):
        _edit(team, add_price, "CZ", "web-hosting-starter-p1m", today + dt.timedelta(days=1), "0", today)
    with pytest.raises(EditError, match="is a product"):
        _edit(team, add_price, "FR", "web-hosting-starter", today + dt.timedelta(days=1), "3", today)
    with pytest.raises(EditError, match="storefront"):
        _edit(team, set_enabled, "XX", "web-hosting-starter", True)


# --- the country team's workflow, through the CLI -----------------------------------------------


def test_country_team_enables_a_product_in_poland_end_to_end(branch, capsys):
    overlay = branch / "web" / "countries" / "PL.toml"
    before = overlay.read_text()
    assert main(["catalog", "enable", "web-domain-fr", "--storefront", "PL"]) == 0
    assert "missing_price" in capsys.readouterr().err  # the edit says what is still missing
    assert main(["catalog", "check"]) == 1
    out = capsys.readouterr().err
    assert "PL.toml" in out and "web-domain-fr-p12m" in out and "PLN" in out
    start = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    assert main(["catalog", "price", "web-domain-fr-p12m", "--storefront", "PL", "--amount", "39.99", "--from", start]) == 0
    after = overlay.read_text()
    assert after.startswith(before.split("[products]")[0])  # comments and layout kept: a reviewable diff
    assert "web-domain-fr = true" in after and f'{{from = {start}, price = "39.99"}}' in after.replace(" }", "}").replace("{ ", "{")
    # a Polish name is missing: the check names the locale, the storefront and the catalog to fix
    po = branch / "locales" / "pl" / "LC_MESSAGES" / "web.po"
    original = po.read_text()
    po.write_text(original.replace('msgid ".fr domain name"\nmsgstr "Domena .fr"', 'msgid ".fr domain name"\nmsgstr ""'))
    assert main(["catalog", "check"]) == 1
    out = capsys.readouterr().err
    assert "pl_PL" in out and "'.fr domain name'" in out and "locales/pl/LC_MESSAGES/web.po" in out
    po.write_text(original)
    assert main(["catalog", "check"]) == 0, capsys.readouterr().err
    assert main(["catalog", "show", "--storefront", "PL", "--locale", "pl_PL", "--json", "--at", start]) == 0
    assert "Domena .fr" in capsys.readouterr().out


def test_catalog_show_lists_what_a_storefront_sells_as_its_customers_read_it(capsys):
    assert main(["catalog", "show", "--storefront", "CZ", "--json"]) == 0
    import json

    listing = json.loads(capsys.readouterr().out)
    assert listing["currency"] == "CZK" and listing["locale"] == "cs_CZ"
    assert any(p["code"] == "web-domain-cz" for p in listing["products"])
    assert all(pl["price"]["price"]["formatted"].endswith("Kč") for p in listing["products"] for pl in p["plans"])


# --- overlay rules, each naming plugin, storefront, file and line --------------------------------


def _overlay(tmp_path, text, name="PL.toml"):
    path = tmp_path / name
    path.write_text(text)
    return load_overlay_file(path, "rogue")


BASE = [ProductSpec("rogue-box", "rogue", "box", "Box", plans=(PlanSpec("rogue-box-p1m", "P1M"),))]


def _problems(*overlays):
    _catalog, problems = build_catalog([("rogue", BASE, [], list(overlays))], STOREFRONTS)
    return problems


def test_an_overlay_that_cannot_be_parsed_names_its_file_and_line(tmp_path):
    problems = _problems(_overlay(tmp_path, 'storefront = "PL"\n\n[products]\nrogue-box = yes\n'))
    assert [(p.rule, p.line, p.storefront) for p in problems] == [("unreadable_overlay", 4, "PL")]
    assert str(tmp_path / "PL.toml") + ":4:" in str(problems[0])


@pytest.mark.parametrize("body, rule, line", [
    ('[products]\nrogue-nothing = true\n', "unknown_product", 4),
    ('[products]\nrogue-box = true\n', "missing_price", 4),
    ('[products]\nrogue-box = true\n[prices]\nrogue-box-p1m = [{ from = 2026-01-01, price = "0" }]\n', "price_not_positive", 6),
    ('[products]\nrogue-box = true\n[prices]\nrogue-box-p1m = [{ from = 2026-01-01, price = "9.999" }]\n', "bad_amount", 6),
    ('[prices]\nrogue-gone-p1m = [{ from = 2026-01-01, price = "9" }]\n', "unknown_plan", 4),
    ('[prices]\nrogue-box-p1m = [{ from = 2026-01-01, price = "9" }, { from = 2026-01-01, price = "8" }]\n',
     "duplicate_price_date", 4),
    # savings plan terms: a length in months, a discount between 0 and 100 %, a minimum in the currency
    ('[commitment]\n12 = [{ from = 2026-01-01, percent_off = "15", minimum = "50.001" }]\n', "bad_amount", 4),
    ('[commitment]\n12 = [{ from = 2026-01-01, percent_off = "100", minimum = "50" }]\n', "unreadable_overlay", 4),
    ('[commitment]\nyear = [{ from = 2026-01-01, percent_off = "15", minimum = "50" }]\n', "unreadable_overlay", 4),
    ('[commitment]\n12 = [{ from = 2026-01-01, percent_off = 15, minimum = "50" }]\n', "unreadable_overlay", 4),
    ('[commitment]\n12 = [{ from = 2026-01-01, percent_off = "15", minimum = "50" }, '
     '{ from = 2026-01-01, percent_off = "20", minimum = "50" }]\n', "duplicate_price_date", 4),
])
def test_overlay_rules(tmp_path, body, rule, line):
    problems = _problems(_overlay(tmp_path, 'storefront = "PL"\ncurrency = "PLN"\n' + body))
    assert [(p.rule, p.plugin, p.storefront, p.line) for p in problems] == [(rule, "rogue", "PL", line)]
    assert problems[0].source == str(tmp_path / "PL.toml")


def test_overlay_in_the_wrong_currency_or_for_no_storefront(tmp_path):
    assert [p.rule for p in _problems(_overlay(tmp_path, 'storefront = "PL"\ncurrency = "EUR"\n'))] == ["wrong_currency"]
    assert [p.rule for p in _problems(_overlay(tmp_path, 'storefront = "ZZ"\n', "ZZ.toml"))] == ["unknown_storefront"]


def test_overlays_may_not_touch_another_plugins_products():
    overlay = OverlaySpec("FR", "EUR", products={"bm-rise-1": True},
                          prices={"bm-rise-1-p1m": (PricePoint(dt.date(2026, 1, 1), Decimal("1")),)})
    other = [ProductSpec("bm-rise-1", "baremetal", "server", "Rise", plans=(PlanSpec("bm-rise-1-p1m", "P1M"),))]
    _catalog, problems = build_catalog([("baremetal", other, [], []), ("rogue", BASE, [], [overlay])], STOREFRONTS)
    assert sorted(p.rule for p in problems) == ["unknown_plan", "unknown_product"]
