"""A base for universe plugins whose catalog is data and whose infrastructure is simulated.

A universe subclasses :class:`Universe`, names itself and overrides what differs (resource
names, order-line checks). Its data sits next to its module::

    catalog/products.toml            the base catalog (English names are the gettext msgids)
    catalog/countries/<SF>.toml      one overlay per storefront: what is sold, local prices
    locales/ (optional)              its own gettext catalogs; built-ins share the project's

The hook implementations below are inherited; pluggy registers an instance like any other
plugin object.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from core import hookimpl
from core.catalog import (
    OverlaySpec,
    ProductSpec,
    SupportTierSpec,
    load_overlay_file,
    load_products_file,
)
from core.context import (
    ActionResult,
    ContractText,
    DunningPolicy,
    InfraEntry,
    InfraEventContext,
    LineProblem,
    MetricSpec,
    OrderLineContext,
    PluginContext,
    ServiceContext,
    TranslationDomain,
)
from core.i18n import locales_dir
from core.sim import SimulatedInfrastructure

# What the simulated infrastructure reports for each action, as log entries: event type ->
# (severity, source, message). The message is the infrastructure's own text (English, not
# translated: logs are shown as the provider receives them); ``{name}`` takes the event's fields.
LOG_EVENTS: dict[str, tuple[str, str, str]] = {
    "provision": ("info", "provisioning", "{resource} delivered"),
    "suspend": ("warning", "lifecycle", "{resource} suspended"),
    "resume": ("info", "lifecycle", "{resource} resumed"),
    "terminate": ("warning", "lifecycle", "{resource} stopped; its data is kept until deletion"),
    "restore": ("info", "lifecycle", "{resource} restored from its kept data"),
    "technical": ("notice", "intervention", "{action} of {resource} done"),
}


class _Fields(dict):
    def __missing__(self, key: str) -> str:
        return "?"


class Universe:
    name: str = ""
    delay_factor: float = 1.0
    dunning: DunningPolicy | None = None  # None: the core's default ladder
    technical_actions: dict[str, tuple[str, ...]] = {}  # product kind -> actions its contacts may run
    metrics: tuple[MetricSpec, ...] = ()  # what it bills by use; ``universe`` is filled in with its name
    # its infrastructure's events as log entries (LOG_EVENTS, plus its own: a disk replaced...)
    log_events: dict[str, tuple[str, str, str]] = {}

    def __init__(self) -> None:
        self.infrastructure = SimulatedInfrastructure(self.name, self.delay_factor)

    @property
    def home(self) -> Path:
        """The directory of the subclass's module: where its data files are."""
        return Path(sys.modules[type(self).__module__].__file__).resolve().parent

    @property
    def catalog_dir(self) -> Path:
        return self.home / "catalog"

    @property
    def locales_dir(self) -> Path:
        own = self.home / "locales"
        return own if own.is_dir() else locales_dir()

    def catalog(self) -> tuple[list[ProductSpec], list[SupportTierSpec]]:
        """The base catalog; read again only when the file changed (both contribution hooks use it)."""
        path = self.catalog_dir / "products.toml"
        key = (str(path), path.stat().st_mtime_ns if path.exists() else 0)
        if getattr(self, "_catalog_key", None) != key:
            self._catalog_key, self._catalog = key, load_products_file(path, self.name)
        return self._catalog

    def overlays(self) -> list[OverlaySpec]:
        return [load_overlay_file(path, self.name) for path in sorted((self.catalog_dir / "countries").glob("*.toml"))]

    # What a subclass overrides --------------------------------------------------------------
    def resource_name(self, ctx: ServiceContext) -> str:
        return f"{self.name}-{ctx.service_id}"

    def metric_specs(self) -> list[MetricSpec]:
        """The metrics it bills by use (``metrics``, with this universe's name)."""
        return [replace(m, universe=self.name) for m in self.metrics]

    def check_line(self, ctx: OrderLineContext) -> list[LineProblem]:
        """Universe-specific checks of an order line (the core already checked required options)."""
        return []

    def infra_events(self, ctx: ServiceContext, action: str, technical: bool) -> tuple[dict, ...]:
        """What its infrastructure reports when it did ``action`` (raw events, translated by
        :meth:`translate_event`): by default one event named after the action."""
        if action == "delete":  # the logs go with the data
            return ()
        resource = self.resource_name(ctx)
        return ({"type": "technical", "action": action, "resource": resource},) if technical else \
            ({"type": action, "resource": resource},)

    def translate_event(self, ctx: InfraEventContext) -> list[InfraEntry]:
        """A raw event of its infrastructure as log entries (``log_events`` then ``LOG_EVENTS``
        by the event's ``type``; an unknown type is kept as a notice of source ``infrastructure``)."""
        event = dict(ctx.event)
        kind = str(event.pop("type", "") or "event")
        severity, source, text = self.log_events.get(kind) or LOG_EVENTS.get(kind) or (
            "notice", "infrastructure", kind + " on {resource}")
        event.pop("id", None)
        values = _Fields({"resource": ctx.resource or f"{self.name}-{ctx.service_id}", **event})
        return [InfraEntry(severity, source, text.format_map(values), {"event": kind, **event})]

    # Hook implementations --------------------------------------------------------------------
    def _mine(self, universe: str) -> bool:
        return universe == self.name

    @hookimpl
    def univers_register_products(self, ctx: PluginContext) -> list[ProductSpec]:
        return self.catalog()[0]

    @hookimpl
    def univers_register_support_tiers(self, ctx: PluginContext) -> list[SupportTierSpec]:
        return self.catalog()[1]

    @hookimpl
    def univers_register_overlays(self, ctx: PluginContext) -> list[OverlaySpec]:
        return self.overlays()

    @hookimpl
    def univers_register_translations(self, ctx: PluginContext) -> list[TranslationDomain]:
        return [TranslationDomain(self.name, self.locales_dir, self.home)]

    @hookimpl
    def univers_register_dunning_policies(self, ctx: PluginContext) -> list[DunningPolicy]:
        return [replace(self.dunning, universe=self.name)] if self.dunning else []

    @hookimpl
    def univers_register_metrics(self, ctx: PluginContext) -> list[MetricSpec]:
        return self.metric_specs()

    @hookimpl
    def univers_register_contracts(self, ctx: PluginContext) -> list[ContractText]:
        """Its specific terms: ``catalog/contracts/<STOREFRONT or _all>/<YYYY-MM-DD>.<lang>.md``."""
        from core.ordering.contracts import read_texts

        texts, problems = read_texts(self.catalog_dir / "contracts", self.name)
        if problems:
            raise ValueError("; ".join(str(p) for p in problems))
        return texts

    @hookimpl
    def univers_validate_order_line(self, ctx: OrderLineContext) -> list[LineProblem] | None:
        if not self._mine(ctx.universe):
            return None
        return self.check_line(ctx)

    def _act(self, ctx: ServiceContext, action: str) -> ActionResult | None:
        if not self._mine(ctx.universe):
            return None
        name = self.resource_name(ctx) if action == "provision" else f"{action}:{self.resource_name(ctx)}"
        return self._reported(ctx, self.infrastructure.apply(ctx, action, name), action, technical=False)

    def _reported(self, ctx: ServiceContext, result: ActionResult, action: str, technical: bool) -> ActionResult:
        if result.status != "done":
            return result
        return replace(result, resource=result.resource, events=self.infra_events(ctx, action, technical))

    @hookimpl
    def univers_provision(self, ctx: ServiceContext) -> ActionResult | None:
        return self._act(ctx, "provision")

    @hookimpl
    def univers_suspend(self, ctx: ServiceContext) -> ActionResult | None:
        return self._act(ctx, "suspend")

    @hookimpl
    def univers_resume(self, ctx: ServiceContext) -> ActionResult | None:
        return self._act(ctx, "resume")

    @hookimpl
    def univers_terminate(self, ctx: ServiceContext) -> ActionResult | None:
        return self._act(ctx, "terminate")

    @hookimpl
    def univers_restore(self, ctx: ServiceContext) -> ActionResult | None:
        return self._act(ctx, "restore")

    @hookimpl
    def univers_delete(self, ctx: ServiceContext) -> ActionResult | None:
        return self._act(ctx, "delete")

    @hookimpl
    def univers_technical_actions(self, universe: str, product_kind: str) -> list[str] | None:
        if not self._mine(universe):
            return None
        return list(self.technical_actions.get(product_kind, ()))

    @hookimpl
    def univers_technical_action(self, ctx: ServiceContext, action: str) -> ActionResult | None:
        if not self._mine(ctx.universe) or action not in self.technical_actions.get(ctx.product_kind, ()):
            return None
        return self._reported(ctx, self.infrastructure.apply(ctx, action, f"{action}:{self.resource_name(ctx)}"), action,
                              technical=True)

    @hookimpl
    def univers_translate_infra_event(self, ctx: InfraEventContext) -> list[InfraEntry] | None:
        if not self._mine(ctx.universe):
            return None
        return self.translate_event(ctx)

