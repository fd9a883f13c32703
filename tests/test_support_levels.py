"""Support levels as the universes sell them: the levels per universe, the level included by
default, and the SLA terms (hours, targets, service credits) checked at start-up like any catalog."""

from __future__ import annotations

import datetime as dt

import pytest

from core.boot import load_catalog
from core.catalog import SlaTarget, SupportTierSpec, build_catalog, load_products_file
from core.catalog.files import FileProblem
from core.clock import FrozenClock
from core.config import Settings
from core.countries.storefronts import load_subsidiaries
from core.plugins import build_plugin_manager
from core.support.calendar import ROUND_THE_CLOCK, load_calendars
from core.support.clocks import (
    FIRST_RESPONSE,
    NEXT_RESPONSE,
    RESOLUTION,
    level_hours,
    level_targets,
)

STOREFRONTS = load_subsidiaries()


@pytest.fixture(scope="module")
def catalog():
    settings = Settings.from_env()
    catalog, _domains, problems = load_catalog(build_plugin_manager(settings), settings, FrozenClock(dt.date(2026, 12, 1)),
                                               STOREFRONTS)
    assert problems == []
    return catalog


def levels(catalog, universe):
    return {p.support_level: p for p in catalog.products.values()
            if p.universe == universe and p.support_level and not p.partners_only}


def test_each_universe_sells_the_levels_the_founder_asked_for(catalog):
    assert {u: sorted(levels(catalog, u)) for u in ("web", "baremetal", "publiccloud", "enterprise")} == {
        "web": [1, 2], "baremetal": [1, 2, 3], "publiccloud": [1, 2, 3], "enterprise": [2, 3, 4]}


def test_the_level_included_by_default_costs_nothing_and_the_others_are_priced_everywhere(catalog):
    for universe, included in (("web", 1), ("baremetal", 1), ("publiccloud", 1), ("enterprise", 2)):
        tiers = levels(catalog, universe)
        assert tiers[included].plans[0].free, universe
        assert tiers[included].support_terms.credit_percent == 0
        for level, tier in tiers.items():
            if level == included:
                continue
            assert not tier.plans[0].free and tier.support_terms.credit_percent > 0, tier.code
            selling = [code for code, offer in catalog.offers.items() if tier.code in offer.products]
            assert selling and all(offer.prices.get(tier.code) for code, offer in catalog.offers.items()
                                   if tier.code in offer.products), tier.code


def test_every_level_promises_each_priority_and_the_catalog_shows_its_normal_first_response(catalog):
    for tier in (p for p in catalog.products.values() if p.support_level):
        terms = tier.support_terms
        assert sorted(t.priority for t in terms.targets) == ["high", "low", "normal", "urgent"], tier.code
        normal = next(t for t in terms.targets if t.priority == "normal")
        assert normal.first_response == tier.first_response_minutes
        urgent = next(t for t in terms.targets if t.priority == "urgent")
        assert urgent.first_response <= normal.first_response, tier.code  # more urgent is never slower


def test_higher_levels_count_every_hour_and_the_first_counts_business_hours(catalog):
    fr = load_calendars()["FR"]
    bm = levels(catalog, "baremetal")
    assert level_hours(bm[1].support_terms, fr) is fr and level_hours(bm[2].support_terms, fr) is fr
    assert level_hours(bm[3].support_terms, fr) is ROUND_THE_CLOCK
    assert level_hours(levels(catalog, "enterprise")[4].support_terms, fr) is ROUND_THE_CLOCK


def test_a_target_of_zero_is_no_promise_and_gets_no_clock(catalog):
    l1 = level_targets(levels(catalog, "web")[1].support_terms)
    assert l1[("normal", FIRST_RESPONSE)] == dt.timedelta(hours=24)
    assert l1[("normal", NEXT_RESPONSE)] == dt.timedelta(hours=24)
    assert ("normal", RESOLUTION) not in l1  # the free level promises no resolution time


def tier(**terms):
    base = dict(code="support-rogue-l2", universe="rogue", level=2, name="Rogue support", first_response_minutes=240)
    return SupportTierSpec(**{**base, **terms})


NORMAL = SlaTarget("normal", 240, 480, 2880)


@pytest.mark.parametrize("spec, rule", [
    (tier(hours="weekdays"), "bad_support_hours"),
    (tier(targets=(NORMAL, NORMAL)), "bad_sla_target"),
    (tier(targets=(NORMAL, SlaTarget("asap", 10))), "bad_sla_target"),
    (tier(targets=(NORMAL, SlaTarget("low", 0))), "bad_response_target"),
    (tier(targets=(NORMAL, SlaTarget("low", 480, -1))), "bad_response_target"),
    (tier(targets=(SlaTarget("normal", 60),)), "bad_response_target"),  # not the 240 the catalog shows
    (tier(free=True, credit_percent=10), "bad_service_credit"),
    (tier(credit_percent=150), "bad_service_credit"),
    (tier(credit_percent="ten"), "bad_service_credit"),
])
def test_broken_sla_terms_stop_start_up_naming_the_level(spec, rule):
    _catalog, problems = build_catalog([("rogue", [], [spec], [])], STOREFRONTS)
    assert [p.rule for p in problems] == [rule]
    assert "support-rogue-l2" in problems[0].message


def test_good_terms_pass_and_a_level_without_targets_promises_its_first_response_everywhere():
    catalog, problems = build_catalog([("rogue", [], [tier(targets=(NORMAL,), credit_percent=5), tier(code="support-rogue-l3",
                                                                                                   level=3)], [])],
                                      STOREFRONTS)
    assert problems == []
    plain = catalog.products["support-rogue-l3"].support_terms
    assert {t.priority: t.first_response for t in plain.targets} == dict.fromkeys(("low", "normal", "high", "urgent"), 240)


@pytest.mark.parametrize("targets", ['"fast"', '[{ priority = "normal", first_response = "4h" }]',
                                     '[{ priority = "normal", first_response = 240, answer = 1 }]'])
def test_targets_that_are_not_a_list_of_minutes_name_the_file_and_line(tmp_path, targets):
    path = tmp_path / "products.toml"
    path.write_text('[[support_tiers]]\ncode = "support-rogue-l1"\nlevel = 1\nname = "Rogue"\n'
                    f'first_response_minutes = 240\ntargets = {targets}\n')
    with pytest.raises(FileProblem) as exc:
        load_products_file(path, "rogue")
    assert exc.value.line == 1 and "target" in str(exc.value)


def test_the_catalog_shows_each_levels_promise_to_the_customer(client):
    fr = client.get("/v1/catalog?storefront=FR").json()["products"]
    l3 = next(p for p in fr if p["code"] == "support-baremetal-l3")
    terms = l3["support_terms"]
    assert (terms["hours"], terms["credit_percent"]) == ("calendar", 10)
    urgent = next(t for t in terms["targets"] if t["priority"] == "urgent")
    assert urgent == {"priority": "urgent", "first_response_minutes": 15, "next_response_minutes": 60,
                      "resolution_minutes": 240}
    l1 = next(p for p in fr if p["code"] == "support-web-l1")["support_terms"]
    assert next(t for t in l1["targets"] if t["priority"] == "normal")["resolution_minutes"] is None
    assert all(p["support_terms"] is None for p in fr if p["support_level"] is None)
