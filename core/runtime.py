"""The runtime: settings, clock, plugin manager, database and the validated catalog.

Built by :func:`build_runtime` for the app, the CLI, the scheduler and each test, so nothing
(plugins included) is shared through module globals.
"""

from __future__ import annotations

from dataclasses import dataclass

import pluggy
from sqlalchemy import Engine

from core.catalog import Catalog
from core.clock import Clock
from core.config import Settings
from core.context import EventContext, PluginContext
from core.db import make_engine, migrate, session_scope
from core.plugins import build_plugin_manager, collect_catalog
from core.subsidiaries import Subsidiary, load_subsidiaries


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    pm: pluggy.PluginManager
    engine: Engine
    catalog: Catalog
    storefronts: dict[str, Subsidiary]

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
    clock = clock or Clock()
    storefronts = load_subsidiaries()
    pm = build_plugin_manager(settings, extra_plugins)
    catalog = collect_catalog(pm, PluginContext(settings=settings, clock=clock), storefronts)
    engine = engine or make_engine(settings.database_url)
    if migrate_db:
        migrate(engine)
    return Runtime(settings, clock, pm, engine, catalog, storefronts)
