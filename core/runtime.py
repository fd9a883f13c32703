"""The runtime: settings, clock, plugin manager, database and the validated catalog.

Built by :func:`core.boot.build_runtime` for the app, the CLI, the scheduler and each test, so
nothing (plugins included) is shared through module globals. Domain code is handed one; this
module imports no domain package (the catalog, storefront and tax types are for type checkers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pluggy
from sqlalchemy import Engine

from core.clock import Clock
from core.config import Settings
from core.context import DunningPolicy, EventContext, MetricSpec, TranslationDomain
from core.db import session_scope
from core.telemetry import Telemetry

if TYPE_CHECKING:  # types only: the runtime is built above the domain packages (core.boot)
    from core.catalog import Catalog
    from core.countries.storefronts import Subsidiary
    from core.countries.tax import TaxTable


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
    metrics: dict[str, MetricSpec] = field(default_factory=dict)  # metered usage, by code (core/usage/)
    telemetry: Telemetry = field(default_factory=Telemetry)  # operational metrics (Prometheus), this runtime's own
    replica: Engine | None = None  # a read replica (``settings.replica_url``) for reports, forecast and exports

    @property
    def read_engine(self) -> Engine:
        """Where the read-only reports read: the replica when there is one, else the primary.
        A replica lags the primary by its replication delay; nothing that writes, or that
        must see its own writes, reads here."""
        return self.replica or self.engine

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
        if self.replica is not None:
            self.replica.dispose()
