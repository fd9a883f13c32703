"""Every hook a Univers plugin may implement, grouped by lifecycle.

Three kinds of hooks:

* **contribution** hooks return lists; the core validates them at start-up and names the
  plugin behind any invalid or duplicated item;
* **dispatch** hooks (``firstresult``) go to the universe that owns the service or product;
  an implementation returns ``None`` for what is not its own;
* **event** hooks fan out to every plugin and return nothing. They receive ids in batches,
  because renewal runs issue invoices by the hundred thousand.

Implementations take exactly the arguments named here and no default arguments (pluggy
ignores defaults). Add fields to the context objects, never parameters to the hooks.
"""

from __future__ import annotations

from core import hookspec
from core.catalog import OverlaySpec, ProductSpec, SupportTierSpec
from core.context import (
    ActionResult,
    ContractText,
    DunningPolicy,
    EInvoiceContext,
    EInvoiceDocument,
    FiscalReceipt,
    FiscalSubmission,
    EInvoiceTransmission,
    EventContext,
    InfraEntry,
    InfraEventContext,
    LineProblem,
    MetricSpec,
    OrderLineContext,
    PluginContext,
    ServiceContext,
    StateChange,
    TranslationDomain,
)

# --- contribution --------------------------------------------------------------------------


@hookspec
def univers_register_products(ctx: PluginContext) -> list[ProductSpec]:
    """Contribute the base catalog: products with their plans, names in English (msgids).

    Where and at what price they are sold is the overlays' business
    (:func:`univers_register_overlays`).

    :param ctx: settings and clock.
    :return: a list of :class:`core.catalog.ProductSpec`. Product and plan codes must be
        unique across all plugins; start-up fails and names the plugin otherwise.
    """


@hookspec
def univers_register_support_tiers(ctx: PluginContext) -> list[SupportTierSpec]:
    """Contribute the support tiers of a universe (levels 1 to 4).

    Each tier becomes an orderable subscription, billed and renewed like any service.

    :param ctx: settings and clock.
    :return: a list of :class:`core.catalog.SupportTierSpec`.
    """


@hookspec
def univers_register_overlays(ctx: PluginContext) -> list[OverlaySpec]:
    """Contribute one overlay per storefront: what it sells of this plugin's catalog, the local
    prices in its currency (each from a date) and its local products.

    A product that no overlay enables is sold nowhere. Overlays may name only this plugin's
    products and plans; start-up fails with the file and line of any problem.

    :param ctx: settings and clock.
    :return: a list of :class:`core.catalog.OverlaySpec`, usually read from data files with
        :func:`core.catalog.load_overlay_file`.
    """


@hookspec
def univers_register_translations(ctx: PluginContext) -> list[TranslationDomain]:
    """Contribute gettext domains: where their ``<lang>/LC_MESSAGES/<domain>.po`` live and
    which sources ``univers i18n extract`` reads.

    :param ctx: settings and clock.
    :return: a list of :class:`core.context.TranslationDomain`.
    """


@hookspec
def univers_register_dunning_policies(ctx: PluginContext) -> list[DunningPolicy]:
    """Contribute the dunning ladder of a universe: reminders, payment retries, suspension,
    termination and data deletion, in days (see :class:`core.context.DunningPolicy`).

    A universe that contributes none gets the core's default ladder. Enterprise customers
    usually get a longer grace.

    :param ctx: settings and clock.
    :return: a list of :class:`core.context.DunningPolicy`, one per universe, named by
        ``universe``. A second policy for the same universe stops start-up.
    """


@hookspec
def univers_register_metrics(ctx: PluginContext) -> list[MetricSpec]:
    """Contribute the metrics a universe bills by use (instance hours, GB-months, egress...):
    what ``POST /v1/usage`` accepts for the projects of that universe.

    :param ctx: settings and clock.
    :return: a list of :class:`core.context.MetricSpec`, each naming its ``universe``. Metric
        codes must be unique across all plugins; start-up fails and names both plugins
        otherwise.
    """


@hookspec
def univers_register_contracts(ctx: PluginContext) -> list[ContractText]:
    """Contribute a universe's specific terms: versions of its contract document, per storefront
    (or ``_all``: every storefront selling the universe) and language, each from a date.

    :param ctx: settings and clock.
    :return: a list of :class:`core.context.ContractText` whose ``document`` is the universe's
        name. An order of the universe must accept the version in force (core/ordering/contracts.py);
        a text changed for a date already in force stops start-up.
    """


# --- dispatch ------------------------------------------------------------------------------


@hookspec(firstresult=True)
def univers_render_national_einvoice(ctx: EInvoiceContext) -> EInvoiceDocument | None:
    """Render an invoice in a storefront's national e-invoice format (Italy's FatturaPA for SdI,
    Poland's KSeF FA(3)): the plug-in point for formats outside EN 16931.

    :param ctx: the storefront, the invoice as the API shows it, and the customer's locale.
    :return: the document, or ``None`` when this plugin has no format for that storefront.
        Stops at the first non-None result.
    """


@hookspec(firstresult=True)
def univers_submit_fiscal_record(ctx: FiscalSubmission) -> FiscalReceipt | None:
    """Send one record of a fiscal chain to the tax agency (Spain's VERI*FACTU web service): the
    transport, which a deployment plugs in (a certificate, an endpoint), outside any transaction.

    :param ctx: the storefront, the record, the document it records and its fiscal context.
    :return: the agency's answer, or ``None`` when this plugin does not submit for that storefront.
        Stops at the first non-None result.
    """


@hookspec(firstresult=True)
def univers_transmit_national_einvoice(ctx: EInvoiceContext, document: EInvoiceDocument) -> EInvoiceTransmission | None:
    """Send a national e-invoice to its tax authority's platform (Italy's SdI, Poland's KSeF) and
    return what the platform answered when it accepted the document.

    Called once per invoice: the core keeps the answer (the KSeF number, the SdI file id, the
    receipt) and never sends an accepted invoice again.

    :param ctx: the invoice as for :func:`univers_render_national_einvoice`.
    :param document: the document rendered for it, to be sent byte for byte.
    :return: the platform's reference and receipt, or ``None`` when this plugin is not the
        storefront's transport. A refusal or an outage raises; nothing is kept then.
    """


@hookspec(firstresult=True)
def univers_validate_order_line(ctx: OrderLineContext) -> list[LineProblem] | None:
    """Check a universe-specific order line (for example that a domain name is well formed).

    Called before anything is written. Stops at the first non-None result.

    :param ctx: the line, the storefront and the reader's locale.
    :return: ``None`` if the product is not this plugin's; otherwise a list of problems,
        empty when the line is acceptable.
    """


@hookspec(firstresult=True)
def univers_provision(ctx: ServiceContext) -> ActionResult | None:
    """Deliver a paid service on the infrastructure. Stops at the first non-None result.

    Called by the outbox worker, possibly more than once for the same service (after a
    crash, or a ``retry``): the implementation must be idempotent on ``ctx.idempotency_key``.

    :return: ``None`` if the service is not this plugin's, else an :class:`ActionResult`.
    """


@hookspec(firstresult=True)
def univers_suspend(ctx: ServiceContext) -> ActionResult | None:
    """Suspend a service (unpaid, or abuse) without deleting any data.

    Same contract as :func:`univers_provision`.
    """


@hookspec(firstresult=True)
def univers_resume(ctx: ServiceContext) -> ActionResult | None:
    """Bring a suspended service back. Same contract as :func:`univers_provision`."""


@hookspec(firstresult=True)
def univers_terminate(ctx: ServiceContext) -> ActionResult | None:
    """Stop a service for good, keeping its data until the retention period ends.

    Same contract as :func:`univers_provision`.
    """


@hookspec(firstresult=True)
def univers_restore(ctx: ServiceContext) -> ActionResult | None:
    """Bring a terminated service back from its kept data (staff restore, before deletion).
    The service comes back suspended unless its paid period is still running.

    Same contract as :func:`univers_provision`.
    """


@hookspec(firstresult=True)
def univers_delete(ctx: ServiceContext) -> ActionResult | None:
    """Delete a terminated service's data once the retention period is over. Irreversible.

    Same contract as :func:`univers_provision`.
    """


@hookspec
def univers_technical_actions(universe: str, product_kind: str) -> list[str] | None:
    """The technical actions (reboot, reinstall...) a service of this universe and product kind
    offers its admin and tech contacts; ``None`` for another plugin's universe."""


@hookspec(firstresult=True)
def univers_technical_action(ctx: ServiceContext, action: str) -> ActionResult | None:
    """Run a technical action on the infrastructure, from the provisioning outbox (idempotent
    by ``ctx.idempotency_key``, like the other dispatch hooks)."""


@hookspec(firstresult=True)
def univers_translate_infra_event(ctx: InfraEventContext) -> list[InfraEntry] | None:
    """Turn a raw event of a service's infrastructure into log entries its contacts read
    (``GET /v1/services/{id}/logs``). Called for the ``events`` of a dispatch hook's
    :class:`ActionResult` (provisioning, suspension, a technical action...) and for the raw
    events the infrastructure posts (``POST /v1/services/{id}/logs`` with ``events``).

    :param ctx: the service (id, universe, product kind, resource) and the event, in the
        plugin's own shape (a ``type`` and whatever it says).
    :return: ``None`` if the service is not this plugin's; otherwise the entries (possibly none:
        an event not worth showing), each with a severity of :data:`core.context.SEVERITIES`.
        Stops at the first non-None result.
    """


# --- events --------------------------------------------------------------------------------


@hookspec
def univers_on_orders_paid(ctx: EventContext, order_ids: list[int]) -> None:
    """Orders were paid in full (called after the transaction committed)."""


@hookspec
def univers_on_invoices_issued(ctx: EventContext, invoice_ids: list[int]) -> None:
    """Invoices were issued and numbered (called after the transaction committed)."""


@hookspec
def univers_on_service_state_changed(ctx: EventContext, changes: list[StateChange]) -> None:
    """Services changed state (called after the transaction committed)."""


__all__ = [
    "ActionResult",
    "ContractText",
    "DunningPolicy",
    "LineProblem",
    "MetricSpec",
    "univers_delete",
    "univers_on_invoices_issued",
    "univers_on_orders_paid",
    "univers_on_service_state_changed",
    "univers_provision",
    "univers_register_contracts",
    "univers_register_dunning_policies",
    "univers_register_metrics",
    "univers_register_overlays",
    "univers_register_products",
    "univers_register_support_tiers",
    "univers_register_translations",
    "univers_render_national_einvoice",
    "univers_restore",
    "univers_resume",
    "univers_submit_fiscal_record",
    "univers_suspend",
    "univers_technical_action",
    "univers_technical_actions",
    "univers_terminate",
    "univers_translate_infra_event",
    "univers_transmit_national_einvoice",
    "univers_validate_order_line",
]
