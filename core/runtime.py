"""The runtime: settings, clock, plugin manager, database and the validated catalog.

Built by :func:`build_runtime` for the app, the CLI, the scheduler and each test, so nothing
(plugins included) is shared through module globals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pluggy
from sqlalchemy import Engine

from core.catalog import Catalog, CatalogError, Problem
from core.clock import Clock
from core.config import Settings
from core.context import (
    DunningPolicy,
    EventContext,
    MetricSpec,
    PluginContext,
    TranslationDomain,
)
from core.db import make_engine, migrate, session_scope
from core.i18n import register_domain
from core.i18n_tools import translation_problems
from core.plugins import (
    build_plugin_manager,
    collect_catalog,
    dunning_policies,
    metrics,
    translation_domains,
)
from core.price_list import sync_prices
from core.rating import price_problems
from core.subsidiaries import Subsidiary, load_subsidiaries
from core.tax import TaxTable, load_taxes, sync_rates


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    pm: pluggy.PluginManager
    engine: Engine
    catalog: Catalog
    storefronts: dict[str, Subsidiary]
    domains: dict[str, TranslationDomain]
    taxes: TaxTable
    dunning: dict[str, DunningPolicy] = field(default_factory=lambda: {"*": DunningPolicy()})
    metrics: dict[str, MetricSpec] = field(default_factory=dict)  # metered usage, by code (core/usage.py)

    def is_metered(self, universe: str, kind: str) -> bool:
        """Whether services of this universe and product kind are billed by use (a metric names the kind)."""
        return any(m.universe == universe and m.service_kind == kind for m in self.metrics.values())

    @property
    def metered_kinds(self) -> set[tuple[str, str]]:
        """(universe, product kind) of the services billed by use."""
        return {(m.universe, m.service_kind) for m in self.metrics.values()}

    def ladder(self, universe: str) -> DunningPolicy:
        return self.dunning.get(universe) or self.dunning["*"]

    def session(self):
        return session_scope(self.engine)

    def event_ctx(self) -> EventContext:
        return EventContext(now=self.clock.now(), settings=self.settings)

    def close(self) -> None:
        self.engine.dispose()


def build_runtime(
    settings: Settings,
    clock: Clock | None = None,
    *,
    extra_plugins: list[tuple[str, object]] | None = None,
    engine: Engine | None = None,
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
    return Runtime(settings, clock, pm, engine, catalog, storefronts, domains, taxes, dunning, metered)


def sync_contracts(conn, pm: pluggy.PluginManager, ctx: PluginContext, catalog: Catalog, storefronts: dict,
                   clock: Clock) -> list[Problem]:
    """The contract versions of the core (general terms) and of the plugins, written once."""
    from core import contracts
    from core.plugins import contract_texts

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
