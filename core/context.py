"""Typed objects passed to and returned from plugin hooks.

Hooks take one context object, so fields can be added later without breaking plugins
(pluggy silently ignores default arguments in hook implementations).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


@dataclass(frozen=True)
class PluginContext:
    """What a contribution hook may read: the settings and the clock."""

    settings: Any
    clock: Any


@dataclass(frozen=True)
class ServiceContext:
    """A service handed to a dispatch hook (provision, suspend, resume, terminate)."""

    service_id: int
    universe: str
    product_code: str
    plan_code: str
    product_kind: str
    account_handle: str
    subsidiary: str
    options: dict[str, Any]
    idempotency_key: str
    now: dt.datetime
    settings: Any = None


@dataclass(frozen=True)
class OrderLineContext:
    """An order line handed to ``univers_validate_order_line`` before anything is written."""

    universe: str
    product_code: str
    plan_code: str
    product_kind: str
    quantity: int
    options: dict[str, Any]
    subsidiary: str
    locale: str
    attributes: Mapping[str, Any] = field(default_factory=dict)  # the product's plugin-specific data


@dataclass(frozen=True)
class TranslationDomain:
    """A gettext domain: catalogs in ``locales_dir/<lang>/LC_MESSAGES/<domain>.po``, its
    template in ``locales_dir/<domain>.pot``, extracted from Python files and catalog data
    files under ``sources``."""

    domain: str
    locales_dir: Path
    sources: Path


@dataclass(frozen=True)
class LineProblem:
    """A reason why an order line is refused: a stable code, and a message in the reader's locale."""

    code: str
    message: str
    field: str | None = None


@dataclass(frozen=True)
class ActionResult:
    """What a dispatch hook reports back.

    ``done``: the infrastructure did it (``resource`` names what it made or touched).
    ``retry``: a transient failure; the outbox will try again with backoff, then park it.
    """

    status: Literal["done", "retry"]
    resource: str | None = None
    detail: str | None = None
    # what the infrastructure reported while doing it, in the plugin's own shape: each is turned
    # into log entries of the service by ``univers_translate_infra_event`` (core/infralogs)
    events: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class EInvoiceContext:
    """An issued invoice or credit note to render in a storefront's national e-invoice format."""

    storefront: str
    invoice: dict[str, Any]  # the invoice as the API shows it (JSON-ready), with seller and buyer
    locale: str
    fiscal: dict[str, Any] | None = None  # its fiscal chain records (Portugal, Spain): core.billing.chain.context
    # the buyer's account: ``kind`` (person | company) and the storefront's e-invoice fields it
    # gave (Italy's codice_destinatario, pec, codice_fiscale, address...; see ``einvoice_fields``)
    buyer: dict[str, Any] = field(default_factory=dict)
    # the storefront's legal entity as its data describes it (address, postcode, tax ids...)
    seller: dict[str, Any] = field(default_factory=dict)
    # for a credit note, the invoice it credits: ``number``, ``issued_on`` and, once KSeF accepted
    # it, ``ksef_number``; empty for an invoice
    credited: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EInvoiceDocument:
    content: bytes
    media_type: str
    filename: str
    # a link the invoice's PDF prints as a QR code (Poland's KSeF verification link, "KOD I")
    verification_url: str | None = None


@dataclass(frozen=True)
class EInvoiceTransmission:
    """What a tax authority's platform answered when it accepted a national e-invoice."""

    reference: str  # the number it gave the invoice: Poland's KSeF number, Italy's SdI file id
    receipt: str  # its receipt as it sent it (KSeF's UPO, SdI's ricevuta di consegna)


@dataclass(frozen=True)
class FiscalSubmission:
    """One record of a fiscal chain to send to the tax agency (Spain's VERI*FACTU), in chain order."""

    storefront: str
    record: dict[str, Any]  # the chain record (JSON-ready): kind alta | anulacion, number, hash...
    invoice: dict[str, Any]  # the document it records, as the API shows it
    fiscal: dict[str, Any]  # the document's fiscal context, as EInvoiceContext.fiscal


@dataclass(frozen=True)
class FiscalReceipt:
    """The agency's answer: ``accepted`` (with its reference, the AEAT's CSV), ``rejected`` (with
    why), or ``retry`` (not reached: nothing is recorded, the record is sent again next time)."""

    status: Literal["accepted", "rejected", "retry"]
    reference: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class EventContext:
    """Passed to event hooks: the clock's time of the event and the settings."""

    now: dt.datetime
    settings: Any = None


@dataclass(frozen=True)
class StateChange:
    service_id: int
    universe: str
    before: str
    after: str
    reason: str


@dataclass
class Contributions:
    """What one plugin contributed, as listed by ``univers plugins``."""

    name: str
    version: str
    hooks: list[str] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    plans: list[str] = field(default_factory=list)
    support_tiers: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DunningPolicy:
    """A universe's dunning ladder, in days, counted from the service's expiry (the end of its
    paid period) unless said otherwise.

    ``reminders``: renewal notices before expiry (7 and 1: at D-7 and D-1).
    ``retries``: charges of the unpaid renewal invoice again after expiry (D+1, D+3, D+5).
    ``suspend_after``: suspension at expiry plus this many days; ``warn_before`` days earlier
    the billing contact is warned.
    ``terminate_after``: days spent suspended before termination (the grace period).
    ``delete_after``: days after termination before the data is deleted (the retention
    period); until then staff may restore the service.

    Whatever the ladder says, nothing is suspended, terminated or deleted while a payment is
    pending, and a paid period is always served.
    """

    universe: str = "*"
    reminders: tuple[int, ...] = (7, 1)
    retries: tuple[int, ...] = (1, 3, 5)
    warn_before: int = 2
    suspend_after: int = 7
    terminate_after: int = 14
    delete_after: int = 30
    logs_kept: int = 30  # days an infrastructure log entry of its services is kept (core/infralogs)

    def problems(self) -> list[str]:
        out = []
        if any(d <= 0 for d in self.reminders) or any(d <= 0 for d in self.retries):
            out.append("reminders and retries are whole days before or after expiry, at least 1")
        if self.logs_kept < 1:
            out.append("logs_kept is at least 1 day")
        if min(self.suspend_after, self.terminate_after, self.delete_after, self.warn_before) < 0:
            out.append("suspend_after, terminate_after, delete_after and warn_before cannot be negative")
        if self.warn_before > self.suspend_after:
            out.append("the suspension warning cannot come before the expiry")
        if self.retries and max(self.retries) >= self.suspend_after:
            out.append("the last payment retry must come before the suspension (a charge in flight blocks it)")
        return out


@dataclass(frozen=True)
class ContractText:
    """One version of a contract document in one language (``univers_register_contracts``,
    core/ordering/contracts.py): ``document`` is ``general`` or the universe's name, ``storefront`` a
    storefront code or ``_all`` (every storefront selling the universe; ``{company}`` in the
    text is the storefront's legal entity), in force from ``effective_on``. With
    ``requires_acceptance``, services under an older version need it before their next renewal."""

    document: str
    storefront: str
    language: str
    effective_on: dt.date
    title: str
    body: str
    requires_acceptance: bool = True
    source: str | None = None


@dataclass(frozen=True)
class MetricSpec:
    """A metered quantity a universe bills by use (``univers_register_metrics``).

    ``code`` names it in usage records (``instance_hours``), unique across plugins; ``unit`` is
    what one unit of its quantity is (``hour``, ``GB-hour``, ``GB-month``, ``GB``), and
    ``name`` the English name customers read (a msgid of the plugin's gettext domain).
    ``dimension`` names what each record must say more, if anything (``flavour`` for instance
    hours): a record of a metric without one has no dimension, one of a metric with one must
    give it, among ``values`` when the plugin lists them. Quantities are kept exactly to six
    decimals (micro-units).

    Its price in each storefront that sells the universe is data (core/usage/rating.py): the
    ``[usage]`` table of the plugin's overlay, or, when ``plan`` is set (a template such as
    ``"pci-{value}-p1m"``), the plan of each dimension value: its ``hourly`` price per unit,
    capped per month at the plan's price.

    ``service_kind`` names the product kind whose services take its records: a service is
    *metered* when a metric of its universe names its kind, and only metered services take
    usage, savings plans, spending alerts and the monthly invoice in arrears.
    """

    code: str
    universe: str
    unit: str
    name: str = ""
    dimension: str | None = None
    values: tuple[str, ...] | None = None
    plan: str | None = None  # "pci-{value}-p1m": each dimension value is priced by that plan (hourly, capped monthly)
    service_kind: str = "project"  # the product kind whose services it measures (a Public Cloud project, a VoIP line…)

    def problems(self) -> list[str]:
        out = []
        if not self.code or len(self.code) > 32 or not all(c.isascii() and (c.isalnum() or c == "_") for c in self.code):
            out.append("a metric code is 1 to 32 letters, digits or underscores")
        if not self.universe or not self.unit:
            out.append("a metric names its universe and its unit")
        if self.values is not None and self.dimension is None:
            out.append("dimension values without a dimension")
        if self.values is not None and any(not v or len(v) > 64 for v in self.values):
            out.append("a dimension value is 1 to 64 characters")
        if not self.service_kind:
            out.append("a metric names the product kind whose services it measures")
        if self.plan is not None and (self.values is None or "{value}" not in self.plan):
            out.append("a metric priced by plan lists its dimension values and names the plan as a template with {value}")
        return out


# Infrastructure log severities, lowest first: an entry's level is its position (stored as such,
# so that "at least warning" is one range).
SEVERITIES = ("debug", "info", "notice", "warning", "error", "critical")


@dataclass(frozen=True)
class InfraEventContext:
    """A raw event of a service's infrastructure, handed to ``univers_translate_infra_event``:
    what the plugin's own infrastructure reported (``event``, in its own shape: a ``type`` and
    whatever it says), for the service of ``universe`` and ``product_kind`` whose infrastructure
    resource is ``resource`` (None when unknown), received ``now``."""

    service_id: int
    universe: str
    product_kind: str
    resource: str | None
    event: Mapping[str, Any]
    now: dt.datetime
    settings: Any = None


@dataclass(frozen=True)
class InfraEntry:
    """One log entry of a service's infrastructure, as its contacts read it (core/infralogs).

    ``severity`` is one of :data:`SEVERITIES`; ``source`` says what reported it, lower-case
    (``hardware``, ``network``, ``ddos``, ``intervention``, ``provisioning``...); ``message`` is the
    infrastructure's own text (not translated: the logs are shown as the provider receives them);
    ``fields`` are structured details (JSON values). ``at`` defaults to the time it was received."""

    severity: str
    source: str
    message: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    at: dt.datetime | None = None
