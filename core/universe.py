"""A base for universe plugins whose catalog is a data file and whose infrastructure is simulated.

A universe subclasses :class:`Universe`, names itself, points at its ``catalog.json`` and
overrides what differs (resource names, order-line checks). The hook implementations below
are inherited; pluggy registers an instance like any other plugin object.
"""

from __future__ import annotations

from pathlib import Path

from core import hookimpl
from core.catalog import ProductSpec, SupportTierSpec, load_catalog_file
from core.context import ActionResult, LineProblem, OrderLineContext, PluginContext, ServiceContext
from core.i18n import translate
from core.sim import SimulatedInfrastructure


class Universe:
    name: str = ""
    catalog_file: Path
    delay_factor: float = 1.0

    def __init__(self) -> None:
        self.infrastructure = SimulatedInfrastructure(self.name, self.delay_factor)
        self._catalog: tuple[list[ProductSpec], list[SupportTierSpec]] | None = None

    def catalog(self) -> tuple[list[ProductSpec], list[SupportTierSpec]]:
        if self._catalog is None:
            self._catalog = load_catalog_file(self.catalog_file, self.name)
        return self._catalog

    # What a subclass overrides --------------------------------------------------------------
    def resource_name(self, ctx: ServiceContext) -> str:
        return f"{self.name}-{ctx.service_id}"

    def check_line(self, ctx: OrderLineContext) -> list[LineProblem]:
        """Universe-specific checks; by default, the options the product requires are present."""
        product = next((p for p in self.catalog()[0] if p.code == ctx.product_code), None)
        return required_option_problems(ctx, *(product.required_options if product else ()))

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
    def univers_validate_order_line(self, ctx: OrderLineContext) -> list[LineProblem] | None:
        if not self._mine(ctx.universe):
            return None
        return self.check_line(ctx)

    def _act(self, ctx: ServiceContext, action: str) -> ActionResult | None:
        if not self._mine(ctx.universe):
            return None
        name = self.resource_name(ctx) if action == "provision" else f"{action}:{self.resource_name(ctx)}"
        return self.infrastructure.apply(ctx, action, name)

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


def required_option_problems(ctx: OrderLineContext, *names: str) -> list[LineProblem]:
    """Problems for options a line must carry (shared by universes that need e.g. a domain)."""
    return [
        LineProblem("missing_option", translate("The option {name} is required for this product.", ctx.locale).format(name=n), f"options.{n}")
        for n in names
        if not str(ctx.options.get(n, "")).strip()
    ]
