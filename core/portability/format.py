"""The ``univers-export`` format: a customer leaves with its data, and another system can take it in.

* :func:`core.portability.export.export_account` gives everything about an account as one JSON document, the format
  ``univers-export`` version 1, described below and typed by :class:`AccountExport` (a msgspec
  Struct: ``msgspec.json.schema(AccountExport)`` is its JSON Schema, see :func:`json_schema`).
* :func:`core.portability.account_import.import_account` loads such a document into another Univers database, with fresh ids.
  Exporting again from there gives the same document (:func:`core.portability.export.canonical` is the comparison).
* :func:`core.portability.closure.close_account` closes an account once nothing runs and nothing is owed: personal data
  is erased, invoices are kept untouched (they carry their own copy of the buyer, as the law
  requires), API keys are revoked. Exporting first is the customer's job.

The format, version 1 (every amount is a decimal string in the currency of the object that
holds it, e.g. ``"12.30"`` with ``"currency": "EUR"``; tax rates are percent strings, ``"20"``
or ``"9.975"``; dates ``YYYY-MM-DD``; timestamps ISO 8601 in UTC)::

    format       "univers-export"
    version      1
    exported_at  when the document was made
    account      the account: handle, storefront, person or company, name, e-mail, language,
                 country, region, VAT number and its confirmation, tax zone, payment method
    api_keys     metadata of its keys (prefix, name, scopes, dates); never a secret or a hash
    services     the services it is the admin, tech or billing contact of: plan, state, dates,
                 price, options, its ``contacts`` (handles), its ``holder`` and the account's
                 ``roles`` on it
    orders       its orders with their lines
    invoices     the invoices addressed to it: number (series, fiscal year, sequence), lines,
                 tax breakdown, buyer as invoiced, and the PDF (base64)
    credit_notes the same, for the credit notes (``credits``: the invoice they correct)
    payments     its payment attempts (``attempt`` names the retry: ``renewal``, ``retry-D+3``)
    balance      the prepaid balance and its ledger entries
    usage        the metered usage of its projects (services of kind ``project``), one item per
                 project, month (``period``, its first day), metric and dimension: ``quantity``
                 the exact sum (a decimal string, at most 6 decimals, in the metric's unit),
                 ``records`` how many records it sums, ``closed`` whether the month is invoiced
    audit        the audit events of the account, its services, orders, invoices, payments
    usage_periods    the projects' closed months: ``closed_at`` and the usage invoice
                 (``invoice_id``; null when the month cost nothing or was invoiced to another
                 account, its billing contact)
    commitments      the savings plans of the projects it is the billing contact of: ``monthly``
                 amount, ``percent_off``, ``months``, ``starts_on``, ``ends_on`` (excluded)
    spending_alerts  the spending alert of those projects: ``threshold`` (excluding tax) and the
                 month it was last notified (``notified_period``)
    contracts    the terms the account accepted: the version (document, storefront, language,
                 effective date, title, ``content_hash``), when, through which channel, with
                 which order or for which service
    tickets      the support tickets of its services it may read (all where it is the admin or
                 tech contact, those about invoices and the abuse cases where it is the billing
                 contact): level, queue, subject, priority, status, dates, the ``thread`` without
                 the agents' internal notes, and the ``breaches`` with their credit notes (see
                 :mod:`core.portability.tickets`)
    infra_logs   the infrastructure log entries of the services it is the admin or tech contact
                 of (see :mod:`core.portability.infra_logs`)
    status_subscriptions  the universes of the work board it follows by mail (``*``: all),
                 and since when

Invoice lines of usage invoices (kind ``usage``) also carry ``exact_quantity`` and
``exact_unit_price``, the month's exact quantity and unit price (decimal strings of at most 6
decimals; the line's ``quantity`` is 1 and its ``unit_price`` the amount); ``null`` elsewhere.

**Usage is exported as monthly sums, not as records.** A project sends records by the hour,
millions a month for a large account: the export would be mostly records, and each import
would replay them. The sums are what is billed — each usage invoice line is one (metric,
dimension) sum of its month, rated — and what the customer's invoices show; they are read with
one ``GROUP BY`` per chunk of projects. A closed month without usage (a savings plan's month
with nothing used) gets no zero item in ``usage``: it is in ``usage_periods``, which lists every
closed month. Savings plans and alerts are billing information (``service.invoices``): they are
exported for the projects the account is the billing contact of, not those it is only admin or
tech contact of; the usage quantities, which every contact sees, are exported for all.

Version 1 grew: ``usage_periods``, ``commitments`` and ``spending_alerts`` (empty when absent)
and the lines' ``exact_quantity`` and ``exact_unit_price`` (null when absent) came with
pay-as-you-go, and ``usage`` was always ``[]`` before; ``contracts`` came with contracts and
``tickets`` (with audit events about tickets) with support, ``infra_logs`` with the infrastructure
logs, ``status_subscriptions`` with the work board: a document made earlier still reads.

Every object has the ``id`` it had in the exporting database, and references between objects
(``order_id``, ``invoice_id``, ``service_id``, ``credits``, ``credited_line_id``, a breach's
``credit_note_id``, and ``commitment_id`` in audit events) use those ids; a reference to
something outside the export (another account's invoice or order) is ``null``. Not exported: other accounts' personal data
(a contact is given by handle only), notification e-mails, pending contact changes, and the
infrastructure's own state.

The import writes each usage sum as one record (id ``import:YYYY-MM:metric:dimension``, at the
month's first day, received now): the month so far carries on in the new database (its
consumption, forecast and spending alert, and the monthly run if the month is not closed yet),
and the closed months are closed there too (with the imported invoice). An export from there
gives each sum with ``records`` 1, which :func:`core.portability.export.canonical` leaves out.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

import msgspec

from core.models import (
    Account,
    ApiKey,
    AuditEvent,
    BalanceEntry,
    Commitment,
    ContactChange,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    InvoiceTax,
    Notification,
    Order,
    OrderLine,
    Payment,
    Service,
    SpendingAlert,
    UsagePeriod,
    UsageRecord,
)
from core.money import from_minor, ppm_to_percent
from core.portability.infra_logs import InfraLogPart
from core.portability.tickets import TicketPart

FORMAT = "univers-export"
VERSION = 1
CHUNK = 500

acct = Account.__table__
keys = ApiKey.__table__
svc = Service.__table__
orders = Order.__table__
order_lines = OrderLine.__table__
inv = Invoice.__table__
inv_line = InvoiceLine.__table__
inv_tax = InvoiceTax.__table__
counter = InvoiceCounter.__table__
pay = Payment.__table__
ledger = BalanceEntry.__table__
events = AuditEvent.__table__
changes = ContactChange.__table__
notes = Notification.__table__
records = UsageRecord.__table__
closed_periods = UsagePeriod.__table__
plans = Commitment.__table__
alerts = SpendingAlert.__table__


# --- the format ---------------------------------------------------------------------------------


class AccountPart(msgspec.Struct, forbid_unknown_fields=True):
    id: int
    handle: str
    subsidiary: str
    kind: str
    name: str
    email: str
    language: str
    country: str
    region: str | None
    vat_number: str | None
    vat_verified: bool
    vat_confirmed_on: dt.date | None
    vat_confirmation: str | None
    tax_zone: str
    currency: str
    payment_method: str
    test_outcome: str | None
    created_at: dt.datetime
    closed_at: dt.datetime | None
    einvoice: dict[str, str] | None = None  # the national e-invoice data the storefront asks (added to version 1)


class ApiKeyPart(msgspec.Struct, forbid_unknown_fields=True):
    prefix: str
    name: str
    scopes: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None


class Contacts(msgspec.Struct, forbid_unknown_fields=True):
    admin: str
    tech: str
    billing: str


class ServicePart(msgspec.Struct, forbid_unknown_fields=True):
    id: int
    holder: str
    contacts: Contacts
    roles: list[str]
    order_id: int | None
    universe: str
    product: str
    plan: str
    kind: str
    subsidiary: str
    currency: str
    state: str
    renewal_mode: str
    period_months: int
    quantity: int
    price: str
    start_on: dt.date
    expires_on: dt.date
    billed_until: dt.date
    engagement_end: dt.date | None
    options: dict[str, Any]
    resource: str | None
    suspended_on: dt.date | None
    terminated_on: dt.date | None
    deleted_on: dt.date | None
    abuse_reason: str | None
    abuse_since: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class OrderLinePart(msgspec.Struct, forbid_unknown_fields=True):
    line_no: int
    universe: str
    product: str
    plan: str
    quantity: int
    options: dict[str, Any]
    unit_price: str
    setup: str
    period_months: int
    engagement_months: int


class OrderPart(msgspec.Struct, forbid_unknown_fields=True):
    id: int
    status: str
    subsidiary: str
    currency: str
    total: str
    invoice_id: int | None
    idempotency_key: str
    request_hash: str
    created_at: dt.datetime
    updated_at: dt.datetime
    lines: list[OrderLinePart]


class InvoiceLinePart(msgspec.Struct, forbid_unknown_fields=True):
    id: int
    service_id: int | None
    kind: str
    universe: str
    product: str
    plan: str
    period_start: dt.date
    period_end: dt.date
    quantity: int
    unit_price: str
    net: str
    tax_name: str
    tax_category: str
    tax_rate: str
    tax2_name: str | None
    tax2_rate: str | None
    credited_line_id: int | None
    # a usage line (kind ``usage``): the month's exact quantity and unit price (decimal strings,
    # at most 6 decimals; ``quantity`` is then 1 and ``unit_price`` the line's net); null otherwise
    exact_quantity: str | None = None
    exact_unit_price: str | None = None


class InvoiceTaxPart(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    category: str
    rate: str
    base: str
    tax: str


class Buyer(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    country: str
    region: str | None
    vat_number: str | None
    einvoice: dict[str, str] | None = None  # its national e-invoice data as issued (added to version 1)


class InvoicePart(msgspec.Struct, forbid_unknown_fields=True):
    id: int
    number: str
    kind: str
    status: str
    subsidiary: str
    currency: str
    series: str
    fiscal_year: int
    seq: int
    issued_on: dt.date
    due_on: dt.date
    order_id: int | None
    net: str
    tax: str
    total: str
    buyer: Buyer
    credits: int | None
    reason: str | None
    idempotency_key: str | None
    paid_at: dt.datetime | None
    created_at: dt.datetime
    lines: list[InvoiceLinePart]
    taxes: list[InvoiceTaxPart]
    pdf: str | None  # base64 of the PDF (a Factur-X on the EU storefronts); null when left out


class PaymentPart(msgspec.Struct, forbid_unknown_fields=True):
    id: int
    invoice_id: int | None
    method: str
    purpose: str
    amount: str
    currency: str
    status: str
    gateway_ref: str | None
    failure_code: str | None
    attempt: str | None
    attempts: int
    next_attempt_at: dt.datetime | None
    created_at: dt.datetime
    settled_at: dt.datetime | None


class BalanceEntryPart(msgspec.Struct, forbid_unknown_fields=True):
    id: int
    amount: str
    reason: str
    invoice_id: int | None
    payment_id: int | None
    created_at: dt.datetime


class BalancePart(msgspec.Struct, forbid_unknown_fields=True):
    currency: str
    amount: str
    entries: list[BalanceEntryPart]


class UsagePart(msgspec.Struct, forbid_unknown_fields=True):
    """A project's usage of a metric (and dimension) in a month: the sum of its records."""

    service_id: int
    period: dt.date  # the month's first day
    metric: str
    dimension: str | None
    quantity: str  # exact decimal, at most 6 decimals, in the metric's unit
    records: int  # how many records the sum is made of
    closed: bool  # the month is closed (invoiced) for the project


class UsagePeriodPart(msgspec.Struct, forbid_unknown_fields=True):
    """A project's closed month: rated, invoiced (``invoice_id``; null when it cost nothing, or
    when the invoice went to another account), and closed to late records."""

    service_id: int
    period: dt.date
    closed_at: dt.datetime
    invoice_id: int | None


class CommitmentPart(msgspec.Struct, forbid_unknown_fields=True):
    """A savings plan of a project: ``monthly`` every month from ``starts_on`` to ``ends_on``
    (excluded), at ``percent_off`` the list price of the usage it covers."""

    id: int
    service_id: int
    currency: str
    monthly: str
    percent_off: str
    months: int
    starts_on: dt.date
    ends_on: dt.date
    created_at: dt.datetime
    created_by: str


class SpendingAlertPart(msgspec.Struct, forbid_unknown_fields=True):
    service_id: int
    threshold: str  # excluding tax
    currency: str
    set_at: dt.datetime
    set_by: str
    notified_period: dt.date | None  # the month whose crossing was notified


class ContractPart(msgspec.Struct, forbid_unknown_fields=True):
    document: str  # "general", or a universe's terms
    storefront: str
    language: str
    effective_on: dt.date
    title: str
    content_hash: str  # the SHA-256 of the text accepted
    accepted_at: dt.datetime
    channel: str  # api | staff | import
    actor: str
    order_id: int | None
    service_id: int | None


class AuditPart(msgspec.Struct, forbid_unknown_fields=True):
    id: int
    at: dt.datetime
    actor: str
    role: str | None
    entity: Literal["account", "service", "order", "invoice", "payment", "ticket"]
    entity_id: int
    action: str
    before: Any
    after: Any


class StatusSubscriptionPart(msgspec.Struct, forbid_unknown_fields=True):
    """A universe of the work board the account follows by mail (``*``: all of them)."""

    universe: Annotated[str, msgspec.Meta(pattern=r"^(\*|[a-z][a-z0-9_-]{0,31})$")]
    since: dt.datetime


class AccountExport(msgspec.Struct, forbid_unknown_fields=True):
    """The whole document (format ``univers-export``, version 1)."""

    format: Literal["univers-export"]
    version: Literal[1]
    exported_at: dt.datetime
    account: AccountPart
    api_keys: list[ApiKeyPart]
    services: list[ServicePart]
    orders: list[OrderPart]
    invoices: list[InvoicePart]
    credit_notes: list[InvoicePart]
    payments: list[PaymentPart]
    balance: BalancePart
    usage: list[UsagePart]
    audit: list[AuditPart]
    # pay-as-you-go, added to version 1 with defaults: a document made before still reads
    usage_periods: list[UsagePeriodPart] = msgspec.field(default_factory=list)
    commitments: list[CommitmentPart] = msgspec.field(default_factory=list)
    spending_alerts: list[SpendingAlertPart] = msgspec.field(default_factory=list)
    contracts: list[ContractPart] = msgspec.field(default_factory=list)  # added to version 1 with contracts
    tickets: list[TicketPart] = msgspec.field(default_factory=list)  # added to version 1 with support
    infra_logs: list[InfraLogPart] = msgspec.field(default_factory=list)  # added to version 1 with the logs
    status_subscriptions: list[StatusSubscriptionPart] = msgspec.field(default_factory=list)  # ... with the work board


def json_schema() -> dict:
    """The JSON Schema of the format, for the system that imports it."""
    return msgspec.json.schema(AccountExport)


# Keys of the audit events' before/after values that refer to exported objects.
REFERENCES = {"invoice_id": "invoice", "credits": "invoice", "order_id": "order", "service_id": "service",
              "payment_id": "payment", "commitment_id": "commitment", "credit_note_id": "invoice"}
ENTITIES = ("account", "service", "order", "invoice", "payment", "ticket")  # what audit events are about


def amount_text(minor: int | None, currency: str) -> str | None:
    return None if minor is None else str(from_minor(minor, currency))


def rate_text(ppm: int | None) -> str | None:
    return None if ppm is None else ppm_to_percent(ppm)


def chunks(ids: list[int]):
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


def load_json(text: str | None) -> Any:
    return json.loads(text) if text else None


def with_refs(value: Any, mapping: dict[str, Any]) -> Any:
    """Rewrite the references of an audit value: ``mapping[kind]`` is a set (keep those, null the
    others) or a dict (old id → new id; unknown ids become null)."""
    if not isinstance(value, dict):
        return value
    out = dict(value)
    for key, kind in REFERENCES.items():
        if isinstance(out.get(key), int) and not isinstance(out[key], bool):
            known = mapping.get(kind, ())
            out[key] = known.get(out[key]) if isinstance(known, dict) else (out[key] if out[key] in known else None)
    return out
