"""The plugin host: entry points, contributions validated at start-up, support tiers."""

from __future__ import annotations

import datetime as dt
import json
import logging
from decimal import Decimal

import pytest

from core import hookimpl
from core.catalog import OverlaySpec, PlanSpec, PricePoint, ProductSpec, SupportTierSpec
from core.clock import FrozenClock
from core.config import Settings
from core.context import PluginContext
from core.countries.storefronts import load_subsidiaries
from core.plugins import (
    PluginError,
    build_plugin_manager,
    collect_catalog,
    dunning_policies,
)

UNIVERSES = {"web": {1, 2}, "baremetal": {1, 2, 3}, "publiccloud": {1, 2, 3}, "enterprise": {2, 3, 4}}


def _catalog(settings, extra=None):
    pm = build_plugin_manager(settings, extra)
    catalog, problems = collect_catalog(pm, PluginContext(settings, FrozenClock("2026-01-01")), load_subsidiaries())
    if problems:
        raise PluginError("\n".join(map(str, problems)))
    return catalog


def test_four_universes_load_through_the_entry_point_group(client):
    plugins = {p["name"]: p for p in client.get("/v1/plugins").json()}
    # beside the universes, the national e-invoice formats: a country plugin that sells nothing
    assert set(plugins) == set(UNIVERSES) | {"national"}
    assert plugins.pop("national")["hooks"] == ["univers_render_national_einvoice"]
    for name, info in plugins.items():
        assert "univers_provision" in info["hooks"] and info["products"] and info["plans"]
        levels = {int(code.rsplit("-l", 1)[1]) for code in info["support_tiers"] if not code.endswith("-fastpath")}
        assert levels == UNIVERSES[name], name
        # beside the levels, the partners' Fast-Path where the partner programme is for technical partners
        assert (f"support-{name}-fastpath" in info["support_tiers"]) == (name in ("baremetal", "publiccloud")), name


def test_support_tiers_are_orderable_subscriptions(shop):
    acme = shop.signup("FR", top_up="500.00")
    order = shop.order(acme, "support-baremetal-l2")
    shop.deliver()
    service = shop.service(acme, order["services"][0]["id"])
    assert service["kind"] == "support" and service["state"] == "active" and service["renewal_mode"] == "automatic"


class Duplicate:
    @hookimpl
    def univers_register_products(self, ctx):
        return [ProductSpec("bm-rise-1", "rogue", "server", "Rogue", plans=(PlanSpec("rogue-p1m", "P1M"),))]


class BadTier:
    @hookimpl
    def univers_register_support_tiers(self, ctx):
        return [SupportTierSpec("support-rogue-l5", "rogue", 5, "Level 5", 10)]


class NoLocalPrice:
    @hookimpl
    def univers_register_products(self, ctx):
        return [ProductSpec("rogue-thing", "rogue", "thing", "Thing", plans=(PlanSpec("rogue-thing-p1m", "P1M"),))]

    @hookimpl
    def univers_register_overlays(self, ctx):
        euro = (PricePoint(dt.date(2026, 1, 1), Decimal("1")),)
        return [OverlaySpec("GB", "GBP", products={"rogue-thing": True}, source="GB.toml"),
                OverlaySpec("FR", "EUR", products={"rogue-thing": True}, prices={"rogue-thing-p1m": euro})]


class Misspelt:
    @hookimpl
    def univers_provison(self, ctx):
        return None


@pytest.mark.parametrize("plugin, words", [
    (Duplicate(), ["rogue", "bm-rise-1", "already contributed", "baremetal"]),
    (BadTier(), ["rogue", "support-rogue-l5", "outside 1-4"]),
    (NoLocalPrice(), ["rogue", "rogue-thing-p1m", "GBP", "GB.toml", "missing_price"]),
    (Misspelt(), ["rogue", "univers_provison"]),
])
def test_invalid_contribution_stops_start_up_naming_the_plugin(tmp_path, plugin, words):
    with pytest.raises(PluginError) as err:
        _catalog(Settings(data_dir=tmp_path), [("rogue", plugin)])
    for word in words:
        assert word in str(err.value)


def test_without_enterprise_everything_else_works(tmp_path):
    catalog = _catalog(Settings(data_dir=tmp_path, disabled_plugins=("enterprise",)))
    assert {p.universe for p in catalog.products.values()} == {"web", "baremetal", "publiccloud"}


def test_cli_lists_plugins_as_json(tmp_path, monkeypatch, capsys):
    from core.cli import main

    monkeypatch.setenv("UNIVERS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("UNIVERS_DATABASE_URL", raising=False)
    assert main(["plugins", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {p["name"] for p in listed} == set(UNIVERSES) | {"national"}


def test_catalog_is_listed_in_the_storefront_currency_and_language(client):
    gb = client.get("/v1/catalog?storefront=GB").json()
    assert gb["currency"] == "GBP"
    plan = next(p for prod in gb["products"] for p in prod["plans"] if p["code"] == "bm-rise-1-p1m")
    assert plan["price"]["price"]["currency"] == "GBP" and plan["price"]["price"]["formatted"].startswith("£")
    fr = client.get("/v1/catalog?storefront=FR").json()
    assert fr["locale"] == "fr_FR"
    en = client.get("/v1/catalog?storefront=FR", headers={"Accept-Language": "en"}).json()
    names_fr = {p["code"]: p["name"] for p in fr["products"]}
    names_en = {p["code"]: p["name"] for p in en["products"]}
    assert sum(names_fr[c] != names_en[c] for c in names_fr) > len(names_fr) / 2
    assert all(p["code"] != "web-domain-de" for p in fr["products"])


def test_every_hook_is_documented_in_the_readme():
    from pathlib import Path

    from core import hookspecs

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    hooks = [name for name in dir(hookspecs) if name.startswith("univers_")]
    assert len(hooks) >= 12
    assert [h for h in hooks if f"`{h}" not in readme] == []
    assert all(getattr(hookspecs, h).__doc__ for h in hooks)


def test_disable_plugins_variable_blocks_plugins_by_name(tmp_path):
    settings = Settings.from_env({"UNIVERS_DATA_DIR": str(tmp_path), "UNIVERS_DISABLE_PLUGINS": "enterprise, web"})
    assert settings.disabled_plugins == ("enterprise", "web")
    pm = build_plugin_manager(settings, [("web", Duplicate())])  # a blocked name is refused whatever it holds
    assert {name for name, plugin in pm.list_name_plugin() if plugin is not None} == {"baremetal", "publiccloud", "national"}
    assert pm.is_blocked("enterprise") and pm.is_blocked("web")


class Broken:
    @hookimpl
    def univers_technical_actions(self, universe, product_kind):
        raise RuntimeError("infrastructure unreachable")


def test_trace_hooks_variable_logs_each_call_its_plugins_and_its_result(tmp_path, caplog):
    settings = Settings.from_env({"UNIVERS_DATA_DIR": str(tmp_path), "UNIVERS_TRACE_HOOKS": "1"})
    assert settings.trace_hooks
    pm = build_plugin_manager(settings)
    caplog.set_level(logging.INFO, logger="univers.plugins")
    assert pm.hook.univers_technical_actions(universe="baremetal", product_kind="server") == [["reboot", "reinstall", "rescue"]]
    call, result = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert call[:2] == result[:2] == ("univers.plugins", logging.INFO)
    assert call[2].startswith("hook univers_technical_actions(universe='baremetal', product_kind='server') to ")
    assert {"baremetal", "web", "publiccloud", "enterprise"} <= set(call[2].rsplit(" to ", 1)[1].split(", "))
    assert result[2] == "hook univers_technical_actions returned [['reboot', 'reinstall', 'rescue']]"


def test_traced_contributions_name_the_plugin_of_each_call(tmp_path, caplog):
    pm = build_plugin_manager(Settings(data_dir=tmp_path, trace_hooks=True))
    caplog.set_level(logging.INFO, logger="univers.plugins")
    policies = dunning_policies(pm, PluginContext(None, FrozenClock("2026-01-01")))
    assert policies["baremetal"].suspend_after == 6
    messages = [r.getMessage() for r in caplog.records]
    assert "hook univers_register_dunning_policies(ctx=PluginContext()) to baremetal" in messages
    assert any(m.startswith("hook univers_register_dunning_policies returned [[DunningPolicy(universe='baremetal'")
               for m in messages)


def test_traced_exception_is_logged_and_still_raised(tmp_path, caplog):
    pm = build_plugin_manager(Settings(data_dir=tmp_path, trace_hooks=True, autoload_plugins=False), [("rogue", Broken())])
    caplog.set_level(logging.INFO, logger="univers.plugins")
    with pytest.raises(RuntimeError, match="unreachable"):
        pm.hook.univers_technical_actions(universe="rogue", product_kind="thing")
    assert caplog.records[-1].getMessage() == "hook univers_technical_actions raised RuntimeError('infrastructure unreachable')"


def test_hook_calls_are_not_logged_by_default(tmp_path, caplog):
    pm = build_plugin_manager(Settings(data_dir=tmp_path))
    caplog.set_level(logging.INFO, logger="univers.plugins")
    pm.hook.univers_technical_actions(universe="baremetal", product_kind="server")
    assert not caplog.records
