"""Boot: build a :class:`~core.runtime.Runtime` from the settings.

It loads the plugins, checks the catalog, its translations and the contract texts (start-up
refuses any problem that ``univers catalog check`` reports), migrates the database and syncs the
price list, the tax rates and the contract versions. The edges (the app, the CLI, the scheduler,
the tests) call it; no domain package imports it.
"""

from __future__ import annotations

import pluggy
from sqlalchemy import Engine

from core.catalog import Catalog, CatalogError, Problem
from core.catalog.price_list import sync_prices
from core.clock import Clock
from core.config import Settings
from core.context import PluginContext, TranslationDomain
from core.countries.storefronts import Subsidiary, load_subsidiaries
from core.countries.tax import load_taxes, sync_rates
from core.db import make_engine, migrate
from core.i18n import register_domain
from core.i18n_tools import translation_problems
from core.ordering import contracts
from core.plugins import (
    build_plugin_manager,
    collect_catalog,
    contract_texts,
    dunning_policies,
    metrics,
    translation_domains,
)
from core.runtime import Runtime
from core.usage.rating import price_problems


def build_runtime(
    settings: Settings,
    clock: Clock | None = None,
    *,
    extra_plugins: list[tuple[str, object]] | None = None,
    engine: Engine | None = None,
    replica: Engine | None = None,
    migrate_db: bool = True,
) -> Runtime:
    """Load plugins, check the catalog and its translations (start-up refuses any problem that
    ``univers catalog check`` reports), migrate, and sync the price list."""
    clock = clock or Clock()
    taxes = load_taxes()
    storefronts = load_subsidiaries(taxes=taxes)
    pm = build_plugin_manager(settings, extra_plugins)
    catalog, domains, problems = load_catalog(pm, settings, clock, storefronts)
    if problems:
        raise CatalogError(problems)
    ctx = PluginContext(settings=settings, clock=clock)
    dunning, metered = dunning_policies(pm, ctx), metrics(pm, ctx)  # refused before the database is touched
    engine = engine or make_engine(settings.database_url)
    if migrate_db:
        migrate(engine)
        with engine.begin() as conn:
            problems = sync_prices(conn, catalog, clock.today())
            problems += sync_contracts(conn, pm, ctx, catalog, storefronts, clock)
            sync_rates(conn, taxes)
            if conn.dialect.name == "postgresql":  # fresh statistics, or the planner scans them per renewed service
                conn.exec_driver_sql("ANALYZE catalog_price, tax_rate")
        if problems:
            engine.dispose()
            raise CatalogError(problems)
    if replica is None and settings.replica_url:  # read-only: never migrated, it follows the primary
        replica = make_engine(settings.replica_url)
    return Runtime(settings, clock, pm, engine, catalog, storefronts, domains, taxes, dunning, metered, replica=replica)


def sync_contracts(conn, pm: pluggy.PluginManager, ctx: PluginContext, catalog: Catalog, storefronts: dict,
                   clock: Clock) -> list[Problem]:
    """The contract versions of the core (general terms) and of the plugins, written once."""
    texts, problems = contracts.read_texts(contracts.DATA, contracts.GENERAL)
    texts += contract_texts(pm, ctx)
    sold: dict[str, set[str]] = {}
    for sf, offer in catalog.offers.items():
        for code in offer.products:
            if code in catalog.products:
                sold.setdefault(catalog.products[code].universe, set()).add(sf)
    return problems + contracts.sync(conn, contracts.expand(texts, storefronts, sold), clock.today(), clock.now())


def load_catalog(pm: pluggy.PluginManager, settings: Settings, clock: Clock, storefronts: dict[str, Subsidiary]
                 ) -> tuple[Catalog, dict[str, TranslationDomain], list[Problem]]:
    """The catalog, the gettext domains, and every problem with either."""
    ctx = PluginContext(settings=settings, clock=clock)
    catalog, problems = collect_catalog(pm, ctx, storefronts)
    domains = translation_domains(pm, ctx)
    for domain in domains.values():
        register_domain(domain.domain, domain.locales_dir)
    problems += price_problems(catalog, metrics(pm, ctx))  # every metric priced where its universe sells
    return catalog, domains, problems + translation_problems(catalog, storefronts, domains)
