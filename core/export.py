"""Reversibility: a customer leaves with its data, and another system can take it in.

* :func:`export_account` gives everything about an account as one JSON document, the format
  ``univers-export`` version 1, described below and typed by :class:`AccountExport` (a msgspec
  Struct: ``msgspec.json.schema(AccountExport)`` is its JSON Schema, see :func:`json_schema`).
* :func:`import_account` loads such a document into another Univers database, with fresh ids.
  Exporting again from there gives the same document (:func:`canonical` is the comparison).
* :func:`close_account` closes an account once nothing runs and nothing is owed: personal data
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
pay-as-you-go, and ``usage`` was always ``[]`` before: a document made earlier still reads.

Every object has the ``id`` it had in the exporting database, and references between objects
(``order_id``, ``invoice_id``, ``service_id``, ``credits``, ``credited_line_id``, and
``commitment_id`` in audit events) use those ids; a reference to something outside the export
(another account's invoice or order) is ``null``. Not exported: other accounts' personal data
(a contact is given by handle only), notification e-mails, pending contact changes, and the
infrastructure's own state.

The import writes each usage sum as one record (id ``import:YYYY-MM:metric:dimension``, at the
month's first day, received now): the month so far carries on in the new database (its
consumption, forecast and spending alert, and the monthly run if the month is not closed yet),
and the closed months are closed there too (with the imported invoice). An export from there
gives each sum with ``records`` 1, which :func:`canonical` leaves out.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
from sqlalchemy import and_, bindparam, func, insert, or_, select, tuple_, update
from sqlalchemy.engine import Connection

from core import audit
from core.audit import Actor
from core.errors import Conflict, InvalidInput, NotFound
from core.i18n import N_
from core.models import (
    Account,
    ApiKey,
    AuditEvent,
    BalanceEntry,
    Commitment,
    ContactChange,
    ContractAcceptance,
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
from core.money import MoneyError, from_minor, ppm_to_percent, rate_to_ppm, to_minor
from core.runtime import Runtime
from core.usage import format_micro, to_micro

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
    entity: Literal["account", "service", "order", "invoice", "payment"]
    entity_id: int
    action: str
    before: Any
    after: Any


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


def json_schema() -> dict:
    """The JSON Schema of the format, for the system that imports it."""
    return msgspec.json.schema(AccountExport)


# Keys of the audit events' before/after values that refer to exported objects.
REFERENCES = {"invoice_id": "invoice", "credits": "invoice", "order_id": "order", "service_id": "service",
              "payment_id": "payment", "commitment_id": "commitment"}
ENTITIES = ("account", "service", "order", "invoice", "payment")  # what audit events are about


def _amount(minor: int | None, currency: str) -> str | None:
    return None if minor is None else str(from_minor(minor, currency))


def _rate(ppm: int | None) -> str | None:
    return None if ppm is None else ppm_to_percent(ppm)


def _chunks(ids: list[int]):
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


# --- export -------------------------------------------------------------------------------------


def export_account(conn: Connection, rt: Runtime, account_id: int, *, documents: bool = True) -> dict:
    """Everything about an account, as the ``univers-export`` document (plain JSON types).
    ``documents=False`` leaves the PDFs out (``pdf`` is null). Rows are read in chunks, each
    with one query per table, whatever the number of services or invoices."""
    row = conn.execute(select(acct).where(acct.c.id == account_id)).mappings().one_or_none()
    if row is None or row["is_staff"]:
        raise NotFound(what="customer")
    currency = rt.storefronts[row["subsidiary"]].currency
    account = AccountPart(
        row["id"], row["handle"], row["subsidiary"], row["kind"], row["name"], row["email"], row["language"], row["country"],
        row["region"], row["vat_number"], row["vat_verified"], row["vat_confirmed_on"], row["vat_confirmation"],
        row["tax_zone"], currency, row["payment_method"], row["test_outcome"], row["created_at"], row["closed_at"])
    api_keys = [ApiKeyPart(k["prefix"], k["name"], k["scopes"], k["created_at"], k["expires_at"], k["revoked_at"])
                for k in conn.execute(select(keys).where(keys.c.account_id == account_id).order_by(keys.c.id)).mappings()]
    services = _services(conn, account_id)
    order_list = _orders(conn, account_id)
    invoices = _invoices(conn, rt, account_id, documents)
    payments = [PaymentPart(
        p["id"], p["invoice_id"], p["method"], p["purpose"], _amount(p["amount_minor"], p["currency"]), p["currency"],
        p["status"], p["gateway_ref"], p["failure_code"],
        p["idempotency_key"].rsplit(":", 1)[0] if p["idempotency_key"] and ":" in p["idempotency_key"] else None,
        p["attempts"], p["next_attempt_at"], p["created_at"], p["settled_at"],
    ) for p in conn.execute(select(pay).where(pay.c.account_id == account_id).order_by(pay.c.id)).mappings()]
    entries = [BalanceEntryPart(e["id"], _amount(e["amount_minor"], currency), e["reason"], e["invoice_id"], e["payment_id"],
                                e["created_at"])
               for e in conn.execute(select(ledger).where(ledger.c.account_id == account_id).order_by(ledger.c.id)).mappings()]
    usage, usage_periods, commitments, spending_alerts = _pay_as_you_go(conn, services)
    known = {"account": {account_id}, "service": {s.id for s in services}, "order": {o.id for o in order_list},
             "invoice": {i.id for i in invoices}, "payment": {p.id for p in payments},
             "commitment": {c.id for c in commitments}}
    # a reference to something outside the export is dropped: no other account's ids leak out
    for s in services:
        s.order_id = s.order_id if s.order_id in known["order"] else None
    for i in invoices:
        i.order_id = i.order_id if i.order_id in known["order"] else None
        for ln in i.lines:
            ln.service_id = ln.service_id if ln.service_id in known["service"] else None
    for o in order_list:
        o.invoice_id = o.invoice_id if o.invoice_id in known["invoice"] else None
    for p in usage_periods:  # a month invoiced to another account (its billing contact) keeps no invoice
        p.invoice_id = p.invoice_id if p.invoice_id in known["invoice"] else None
    from core.contracts import accepted_by

    accepted = [ContractPart(c["document"], c["storefront"], c["language"], c["effective_on"], c["title"], c["content_hash"],
                             c["accepted_at"], c["channel"], c["actor"],
                             c["order_id"] if c["order_id"] in known["order"] else None,
                             c["service_id"] if c["service_id"] in known["service"] else None)
                for c in accepted_by(conn, account_id)]
    document = AccountExport(
        FORMAT, VERSION, rt.clock.now(), account, api_keys, services, order_list,
        [i for i in invoices if i.kind != "credit_note"], [i for i in invoices if i.kind == "credit_note"], payments,
        BalancePart(currency, _amount(row["balance_minor"], currency), entries), usage, _audit(conn, known),
        usage_periods, commitments, spending_alerts, accepted)
    return msgspec.to_builtins(document)


def _services(conn: Connection, account_id: int) -> list[ServicePart]:
    """The services the account is a contact of, by id, a chunk at a time through the contact
    indexes (the same union of keyset pages as the service list), with the contacts' handles."""
    from core.services import list_services

    out: list[ServicePart] = []
    after = 0
    actor = Actor("export", account_id)
    while True:
        rows = list_services(conn, actor, after, 200)
        if not rows:
            return out
        ids = {r[c] for r in rows for c in ("account_id", "admin_account_id", "tech_account_id", "billing_account_id")}
        handles = dict(conn.execute(select(acct.c.id, acct.c.handle).where(acct.c.id.in_(ids))).all())
        for r in rows:
            out.append(ServicePart(
                r["id"], handles[r["account_id"]],
                Contacts(handles[r["admin_account_id"]], handles[r["tech_account_id"]], handles[r["billing_account_id"]]),
                [role for role in ("admin", "tech", "billing") if r[f"{role}_account_id"] == account_id],
                r["order_id"], r["universe"], r["product_code"], r["plan_code"], r["kind"], r["subsidiary"], r["currency"],
                r["state"], r["renewal_mode"], r["period_months"], r["quantity"], _amount(r["price_minor"], r["currency"]),
                r["start_on"], r["expires_on"], r["billed_until"], r["engagement_end"], r["options"] or {}, r["resource"],
                r["suspended_on"], r["terminated_on"], r["deleted_on"], r["abuse_reason"], r["abuse_since"],
                r["created_at"], r["updated_at"]))
        after = rows[-1]["id"]


def _orders(conn: Connection, account_id: int) -> list[OrderPart]:
    rows = conn.execute(select(orders).where(orders.c.account_id == account_id).order_by(orders.c.id)).mappings().all()
    lines: dict[int, list[OrderLinePart]] = {}
    currency = {r["id"]: r["currency"] for r in rows}
    for part in _chunks(list(currency)):
        for ln in conn.execute(select(order_lines).where(order_lines.c.order_id.in_(part))
                               .order_by(order_lines.c.order_id, order_lines.c.line_no)).mappings():
            cur = currency[ln["order_id"]]
            lines.setdefault(ln["order_id"], []).append(OrderLinePart(
                ln["line_no"], ln["universe"], ln["product_code"], ln["plan_code"], ln["quantity"], ln["options"] or {},
                _amount(ln["unit_price_minor"], cur), _amount(ln["setup_minor"], cur), ln["period_months"],
                ln["engagement_months"]))
    return [OrderPart(r["id"], r["status"], r["subsidiary"], r["currency"], _amount(r["total_minor"], r["currency"]),
                      r["invoice_id"], r["idempotency_key"], r["request_hash"], r["created_at"], r["updated_at"],
                      lines.get(r["id"], [])) for r in rows]


def _invoices(conn: Connection, rt: Runtime, account_id: int, documents: bool) -> list[InvoicePart]:
    """Issued invoices and credit notes addressed to the account, by id, a chunk at a time."""
    from core import documents as docs
    from core.invoicing import number

    out: list[InvoicePart] = []
    after = 0
    while True:
        rows = conn.execute(select(inv).where(inv.c.account_id == account_id, inv.c.id > after, inv.c.seq.is_not(None))
                            .order_by(inv.c.id).limit(CHUNK)).mappings().all()
        if not rows:
            return out
        ids = [r["id"] for r in rows]
        cur = {r["id"]: r["currency"] for r in rows}
        lines: dict[int, list[InvoiceLinePart]] = {}
        for ln in conn.execute(select(inv_line).where(inv_line.c.invoice_id.in_(ids)).order_by(inv_line.c.id)).mappings():
            c = cur[ln["invoice_id"]]
            lines.setdefault(ln["invoice_id"], []).append(InvoiceLinePart(
                ln["id"], ln["service_id"], ln["kind"], ln["universe"], ln["product_code"], ln["plan_code"],
                ln["period_start"], ln["period_end"], ln["quantity"], _amount(ln["unit_price_minor"], c),
                _amount(ln["net_minor"], c), ln["tax_name"], ln["tax_category"], _rate(ln["tax_rate_ppm"]), ln["tax2_name"],
                _rate(ln["tax2_rate_ppm"]), ln["credited_line_id"],
                None if ln["quantity_micro"] is None else format_micro(ln["quantity_micro"]),
                None if ln["unit_price_micro"] is None else format_micro(ln["unit_price_micro"])))
        taxes: dict[int, list[InvoiceTaxPart]] = {}
        for t in conn.execute(select(inv_tax).where(inv_tax.c.invoice_id.in_(ids))
                              .order_by(inv_tax.c.invoice_id, inv_tax.c.category, inv_tax.c.rate_ppm, inv_tax.c.name)).mappings():
            c = cur[t["invoice_id"]]
            taxes.setdefault(t["invoice_id"], []).append(InvoiceTaxPart(
                t["name"], t["category"], _rate(t["rate_ppm"]), _amount(t["base_minor"], c), _amount(t["tax_minor"], c)))
        for r in rows:
            c = r["currency"]
            pdf = None
            if documents:
                pdf = base64.b64encode(docs.render(conn, rt, account_id, r["id"], "pdf")[0]).decode("ascii")
            out.append(InvoicePart(
                r["id"], number(r["series"], r["fiscal_year"], r["seq"]), r["kind"], r["status"], r["subsidiary"], c,
                r["series"], r["fiscal_year"], r["seq"], r["issued_on"], r["due_on"], r["order_id"],
                _amount(r["net_minor"], c), _amount(r["tax_minor"], c), _amount(r["total_minor"], c),
                Buyer(r["buyer_name"], r["buyer_country"], r["buyer_region"], r["buyer_vat_number"]),
                r["credited_invoice_id"], r["reason"], r["idempotency_key"], r["paid_at"], r["created_at"],
                lines.get(r["id"], []), taxes.get(r["id"], []), pdf))
        after = ids[-1]


def _pay_as_you_go(conn: Connection, services: list[ServicePart]) -> tuple[
        list[UsagePart], list[UsagePeriodPart], list[CommitmentPart], list[SpendingAlertPart]]:
    """The exported projects' usage, as sums per (project, month, metric, dimension), their closed
    months, and — of the projects the account is the billing contact of — their savings plans
    and spending alert. A chunk of projects at a time: one ``GROUP BY`` over the records, one
    query per other table."""
    projects = [s.id for s in services if s.kind == "project"]
    billing = {s.id for s in services if s.kind == "project" and "billing" in s.roles}
    usage: list[UsagePart] = []
    closed: list[UsagePeriodPart] = []
    commitments: list[CommitmentPart] = []
    spending: list[SpendingAlertPart] = []
    for part in _chunks(projects):
        shut = conn.execute(select(closed_periods).where(closed_periods.c.service_id.in_(part))
                            .order_by(closed_periods.c.service_id, closed_periods.c.period)).mappings().all()
        closed.extend(UsagePeriodPart(p["service_id"], p["period"], p["closed_at"], p["invoice_id"]) for p in shut)
        is_closed = {(p["service_id"], p["period"]) for p in shut}
        sums = conn.execute(
            select(records.c.service_id, records.c.period, records.c.metric, records.c.dimension,
                   func.sum(records.c.quantity_micro), func.count())
            .where(records.c.service_id.in_(part))
            .group_by(records.c.service_id, records.c.period, records.c.metric, records.c.dimension)).all()
        # sorted here: the engines order a NULL dimension differently
        sums.sort(key=lambda r: (r[0], r[1], r[2], r[3] is not None, r[3] or ""))
        usage.extend(UsagePart(sid, period, metric, dimension, format_micro(int(quantity)), count, (sid, period) in is_closed)
                     for sid, period, metric, dimension, quantity, count in sums)
        mine = [sid for sid in part if sid in billing]
        if not mine:
            continue
        commitments.extend(CommitmentPart(
            c["id"], c["service_id"], c["currency"], _amount(c["monthly_minor"], c["currency"]), _rate(c["discount_ppm"]),
            c["months"], c["starts_on"], c["ends_on"], c["created_at"], c["created_by"])
            for c in conn.execute(select(plans).where(plans.c.service_id.in_(mine)).order_by(plans.c.id)).mappings())
        spending.extend(SpendingAlertPart(
            a["service_id"], _amount(a["threshold_minor"], a["currency"]), a["currency"], a["set_at"], a["set_by"],
            a["notified_period"])
            for a in conn.execute(select(alerts).where(alerts.c.service_id.in_(mine)).order_by(alerts.c.service_id)).mappings())
    return usage, closed, commitments, spending


def _audit(conn: Connection, known: dict[str, set[int]]) -> list[AuditPart]:
    """The events of every exported object, through the (entity, entity_id) index, by id."""
    rows = []
    for entity in ENTITIES:
        for part in _chunks(sorted(known[entity])):
            rows.extend(conn.execute(select(events).where(events.c.entity == entity, events.c.entity_id.in_(part))).mappings())
    rows.sort(key=lambda r: r["id"])
    return [AuditPart(r["id"], r["at"], r["actor"], r["role"], r["entity"], r["entity_id"], r["action"],
                      _refs(_load(r["before"]), known), _refs(_load(r["after"]), known)) for r in rows]


def _load(text: str | None) -> Any:
    return json.loads(text) if text else None


def _refs(value: Any, mapping: dict[str, Any]) -> Any:
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


def canonical(document: dict) -> dict:
    """The document as the round trip keeps it: without ``exported_at``, with every id replaced by
    its rank in the document (and the references with it), each PDF by whether it is there
    (a PDF records when it was rendered), and the usage sums without their count of records (an
    import keeps each sum as one record). Two exports of the same history compare equal. A
    document made before the pay-as-you-go sections gets them empty, as :func:`parse` reads it."""
    doc = json.loads(json.dumps(document))
    doc.pop("exported_at", None)
    for section in ("usage_periods", "commitments", "spending_alerts", "contracts"):
        doc.setdefault(section, [])
    rank = {
        "account": {doc["account"]["id"]: 1},
        "service": {s["id"]: n for n, s in enumerate(doc["services"], 1)},
        "order": {o["id"]: n for n, o in enumerate(doc["orders"], 1)},
        "invoice": {i["id"]: n for n, i in enumerate(doc["invoices"] + doc["credit_notes"], 1)},
        "line": {ln["id"]: n for n, ln in enumerate((ln for i in doc["invoices"] + doc["credit_notes"] for ln in i["lines"]), 1)},
        "payment": {p["id"]: n for n, p in enumerate(doc["payments"], 1)},
        "commitment": {c["id"]: n for n, c in enumerate(doc["commitments"], 1)},
        "entry": {e["id"]: n for n, e in enumerate(doc["balance"]["entries"], 1)},
        "event": {e["id"]: n for n, e in enumerate(doc["audit"], 1)},
    }

    def r(kind: str, value):
        return None if value is None else rank[kind].get(value)

    doc["account"]["id"] = 1
    for s in doc["services"]:
        s["id"], s["order_id"] = r("service", s["id"]), r("order", s["order_id"])
    for o in doc["orders"]:
        o["id"], o["invoice_id"] = r("order", o["id"]), r("invoice", o["invoice_id"])
    for i in doc["invoices"] + doc["credit_notes"]:
        i["id"], i["order_id"], i["credits"] = r("invoice", i["id"]), r("order", i["order_id"]), r("invoice", i["credits"])
        i["pdf"] = i["pdf"] is not None
        for ln in i["lines"]:
            ln["id"], ln["service_id"] = r("line", ln["id"]), r("service", ln["service_id"])
            ln["credited_line_id"] = r("line", ln["credited_line_id"])
    for p in doc["payments"]:
        p["id"], p["invoice_id"] = r("payment", p["id"]), r("invoice", p["invoice_id"])
    for e in doc["balance"]["entries"]:
        e["id"], e["invoice_id"], e["payment_id"] = r("entry", e["id"]), r("invoice", e["invoice_id"]), r("payment", e["payment_id"])
    for e in doc["audit"]:
        e["id"], e["entity_id"] = r("event", e["id"]), r(e["entity"], e["entity_id"])
        e["before"], e["after"] = _refs(e["before"], rank), _refs(e["after"], rank)
    for u in doc["usage"]:
        u["service_id"] = r("service", u["service_id"])
        u.pop("records", None)
    doc["usage"].sort(key=lambda u: (u["service_id"] or 0, u["period"], u["metric"], u["dimension"] is not None, u["dimension"] or ""))
    for p in doc["usage_periods"]:
        p["service_id"], p["invoice_id"] = r("service", p["service_id"]), r("invoice", p["invoice_id"])
    for c in doc["commitments"]:
        c["id"], c["service_id"] = r("commitment", c["id"]), r("service", c["service_id"])
    for a in doc["spending_alerts"]:
        a["service_id"] = r("service", a["service_id"])
    for c in doc["contracts"]:
        c["order_id"], c["service_id"] = r("order", c["order_id"]), r("service", c["service_id"])
    return doc


# --- import -------------------------------------------------------------------------------------


@dataclass
class Imported:
    """What :func:`import_account` did: the new account, and every contact it could not keep
    (another account, not in the export, now replaced by the imported account itself)."""

    account_id: int
    handle: str
    handle_changed: bool = False
    remapped_contacts: list[dict] = field(default_factory=list)  # {"service_id", "role", "handle"}
    counts: dict[str, int] = field(default_factory=dict)


def parse(data: dict | bytes | str) -> AccountExport:
    """Check a document against the format: the right format and version, every field typed."""
    if isinstance(data, (bytes, str)):
        try:
            data = json.loads(data)
        except ValueError:
            raise InvalidInput(N_("This file is not a Univers export."), code="unsupported_export") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
        raise InvalidInput(N_("This file is not a Univers export in a version this system reads (format {format}, version {version})."),
                           code="unsupported_export", format=FORMAT, version=VERSION)
    try:
        return msgspec.convert(data, AccountExport)
    except msgspec.ValidationError as exc:
        raise InvalidInput(N_("The export is not valid: {reason}."), code="invalid_export", reason=str(exc)) from None


def import_account(conn: Connection, rt: Runtime, data: dict | bytes | str, actor: Actor | None = None) -> Imported:
    """Load an export into this database as a new account, with fresh ids. Issued invoices and
    credit notes keep their numbers (series, fiscal year, sequence) and are inserted as issued
    documents; the invoice counters move past them, so this database's next numbers follow.
    Nothing is provisioned or charged: payments in flight are kept as they were exported."""
    doc = parse(data)
    actor = actor or Actor.system("import")
    a = doc.account
    sub = rt.storefronts.get(a.subsidiary)
    if sub is None:
        raise InvalidInput(N_("Unknown or closed storefront {storefront}."), code="unknown_storefront", storefront=a.subsidiary)
    cur = sub.currency

    def minor(amount: str | None, currency: str = cur) -> int | None:
        try:
            return None if amount is None else to_minor(amount, currency)
        except ValueError:
            raise InvalidInput(N_("The export is not valid: {reason}."), code="invalid_export",
                               reason=f"amount {amount!r} in {currency}") from None

    def exact(value: str | None) -> int | None:
        if value is None:
            return None
        micro = to_micro(value)
        if micro is None:
            raise _invalid(f"exact quantity or price {value!r}")
        return micro

    entries = doc.balance.entries
    if doc.balance.currency != cur or sum(minor(e.amount) for e in entries) != minor(doc.balance.amount):
        raise InvalidInput(N_("The export is not valid: {reason}."), code="invalid_export",
                           reason="the balance is not the sum of its entries")
    documents = doc.invoices + doc.credit_notes
    numbers = {(i.subsidiary, i.series, i.fiscal_year, i.seq) for i in documents}
    if len(numbers) != len(documents):
        raise InvalidInput(N_("The export is not valid: {reason}."), code="invalid_export", reason="an invoice number is repeated")
    for part in _chunks(sorted(numbers)):
        taken = conn.execute(select(inv.c.series, inv.c.fiscal_year, inv.c.seq).where(
            tuple_(inv.c.subsidiary, inv.c.series, inv.c.fiscal_year, inv.c.seq).in_(part)).limit(1)).first()
        if taken is not None:
            from core.invoicing import number

            raise Conflict(N_("The invoice number {number} is already used in this database."), code="invoice_number_taken",
                           number=number(*taken))
    micro = _check_pay_as_you_go(doc, rt)
    now = rt.clock.now()

    # the account: its handle if free here
    handle = a.handle
    changed = conn.execute(select(acct.c.id).where(acct.c.handle == handle)).first() is not None
    if changed:
        handle = _free_handle(conn, a.handle)
    account_id = conn.execute(insert(acct).values(
        handle=handle, subsidiary=a.subsidiary, kind=a.kind, name=a.name, email=a.email, language=a.language,
        country=a.country, region=a.region, vat_number=a.vat_number, vat_verified=a.vat_verified,
        vat_confirmed_on=a.vat_confirmed_on, vat_confirmation=a.vat_confirmation, tax_zone=a.tax_zone, is_staff=False,
        staff_role=None, balance_minor=minor(doc.balance.amount), payment_method=a.payment_method,
        test_outcome=a.test_outcome, created_at=a.created_at, closed_at=a.closed_at,
    ).returning(acct.c.id)).scalar_one()
    result = Imported(account_id, handle, changed)
    ids: dict[str, dict[int, int]] = {"account": {a.id: account_id}}

    # orders (their invoice is set once the invoices exist)
    ids["order"] = _insert_many(conn, orders, [dict(
        account_id=account_id, idempotency_key=o.idempotency_key, request_hash=o.request_hash, status=o.status,
        subsidiary=o.subsidiary, currency=o.currency, total_minor=minor(o.total, o.currency), invoice_id=None,
        created_at=o.created_at, updated_at=o.updated_at) for o in doc.orders], [o.id for o in doc.orders])
    rows = [dict(order_id=ids["order"][o.id], line_no=ln.line_no, universe=ln.universe, product_code=ln.product,
                 plan_code=ln.plan, quantity=ln.quantity, options=ln.options, unit_price_minor=minor(ln.unit_price, o.currency),
                 setup_minor=minor(ln.setup, o.currency), period_months=ln.period_months, engagement_months=ln.engagement_months)
            for o in doc.orders for ln in o.lines]
    if rows:
        conn.execute(insert(order_lines), rows)

    # services: a contact that is another account becomes the imported account
    def contact(s: ServicePart, role: str, who: str) -> int:
        if who != a.handle:
            result.remapped_contacts.append({"service_id": s.id, "role": role, "handle": who})
        return account_id

    ids["service"] = _insert_many(conn, svc, [dict(
        account_id=contact(s, "holder", s.holder), admin_account_id=contact(s, "admin", s.contacts.admin),
        tech_account_id=contact(s, "tech", s.contacts.tech), billing_account_id=contact(s, "billing", s.contacts.billing),
        order_id=ids["order"].get(s.order_id), universe=s.universe, product_code=s.product, plan_code=s.plan, kind=s.kind,
        subsidiary=s.subsidiary, currency=s.currency, state=s.state, renewal_mode=s.renewal_mode,
        period_months=s.period_months, quantity=s.quantity, price_minor=minor(s.price, s.currency), start_on=s.start_on,
        expires_on=s.expires_on, billed_until=s.billed_until, engagement_end=s.engagement_end, options=s.options,
        resource=s.resource, suspended_on=s.suspended_on, terminated_on=s.terminated_on, deleted_on=s.deleted_on,
        abuse_reason=s.abuse_reason, abuse_since=s.abuse_since, created_at=s.created_at, updated_at=s.updated_at,
    ) for s in doc.services], [s.id for s in doc.services])

    # invoices, then credit notes (they point at the invoices and their lines): inserted without
    # their sequence number, so that their lines and breakdown can go in, then numbered
    ids["invoice"], ids["line"] = {}, {}
    for group in (doc.invoices, doc.credit_notes):
        ids["invoice"].update(_insert_many(conn, inv, [dict(
            account_id=account_id, order_id=ids["order"].get(i.order_id), run_id=None, subsidiary=i.subsidiary,
            currency=i.currency, kind=i.kind, status=i.status, series=i.series, fiscal_year=i.fiscal_year, seq=None,
            issued_on=i.issued_on, due_on=i.due_on, net_minor=minor(i.net, i.currency), tax_minor=minor(i.tax, i.currency),
            total_minor=minor(i.total, i.currency), buyer_name=i.buyer.name, buyer_country=i.buyer.country,
            buyer_region=i.buyer.region, buyer_vat_number=i.buyer.vat_number,
            credited_invoice_id=ids["invoice"].get(i.credits), reason=i.reason, idempotency_key=i.idempotency_key,
            paid_at=i.paid_at, created_at=i.created_at) for i in group], [i.id for i in group]))
        lines = [(i, ln) for i in group for ln in i.lines]
        ids["line"].update(_insert_many(conn, inv_line, [dict(
            invoice_id=ids["invoice"][i.id], service_id=ids["service"].get(ln.service_id), kind=ln.kind,
            universe=ln.universe, product_code=ln.product, plan_code=ln.plan, period_start=ln.period_start,
            period_end=ln.period_end, quantity=ln.quantity, unit_price_minor=minor(ln.unit_price, i.currency),
            net_minor=minor(ln.net, i.currency), tax_name=ln.tax_name, tax_category=ln.tax_category,
            tax_rate_ppm=rate_to_ppm(ln.tax_rate), tax2_name=ln.tax2_name,
            tax2_rate_ppm=None if ln.tax2_rate is None else rate_to_ppm(ln.tax2_rate),
            credited_line_id=ids["line"].get(ln.credited_line_id), quantity_micro=exact(ln.exact_quantity),
            unit_price_micro=exact(ln.exact_unit_price)) for i, ln in lines], [ln.id for _, ln in lines]))
        rows = [dict(invoice_id=ids["invoice"][i.id], name=t.name, category=t.category, rate_ppm=rate_to_ppm(t.rate),
                     base_minor=minor(t.base, i.currency), tax_minor=minor(t.tax, i.currency)) for i in group for t in i.taxes]
        if rows:
            conn.execute(insert(inv_tax), rows)
    if documents:
        conn.execute(update(inv).where(inv.c.id == bindparam("b_id")).values(seq=bindparam("b_seq")),
                     [{"b_id": ids["invoice"][i.id], "b_seq": i.seq} for i in documents])
        _move_counters(conn, numbers)
    for o in doc.orders:
        if o.invoice_id in ids["invoice"]:
            conn.execute(update(orders).where(orders.c.id == ids["order"][o.id]).values(invoice_id=ids["invoice"][o.invoice_id]))

    # payments (a retry's key is rebuilt on the new invoice id) and the balance ledger
    ids["payment"] = _insert_many(conn, pay, [dict(
        account_id=account_id, invoice_id=ids["invoice"].get(p.invoice_id), method=p.method, purpose=p.purpose,
        amount_minor=minor(p.amount, p.currency), currency=p.currency, status=p.status, gateway_ref=p.gateway_ref,
        failure_code=p.failure_code,
        idempotency_key=f"{p.attempt}:{ids['invoice'][p.invoice_id]}" if p.attempt and p.invoice_id in ids["invoice"] else None,
        attempts=p.attempts, next_attempt_at=p.next_attempt_at, locked_until=None, created_at=p.created_at,
        settled_at=p.settled_at) for p in doc.payments], [p.id for p in doc.payments])
    rows = [dict(account_id=account_id, amount_minor=minor(e.amount), reason=e.reason, invoice_id=ids["invoice"].get(e.invoice_id),
                 payment_id=ids["payment"].get(e.payment_id), created_at=e.created_at) for e in entries]
    if rows:
        conn.execute(insert(ledger), rows)

    # pay-as-you-go: each month's sums as one record per (project, month, metric, dimension), so that
    # the month so far (its consumption, forecast and alerts) carries on and closed months stay closed
    rows = [dict(service_id=ids["service"][u.service_id], record_id=_record_id(u), metric=u.metric, dimension=u.dimension,
                 quantity_micro=q, at=dt.datetime(u.period.year, u.period.month, 1, tzinfo=dt.UTC), period=u.period,
                 received_at=now) for u, q in zip(doc.usage, micro, strict=True)]
    if rows:
        conn.execute(insert(records), rows)
    shut = {(p.service_id, p.period): dict(service_id=ids["service"][p.service_id], period=p.period, closed_at=p.closed_at,
                                           invoice_id=ids["invoice"].get(p.invoice_id)) for p in doc.usage_periods}
    for u in doc.usage:  # a month said closed without its period (a document made elsewhere): closed now
        if u.closed and (u.service_id, u.period) not in shut:
            shut[(u.service_id, u.period)] = dict(service_id=ids["service"][u.service_id], period=u.period, closed_at=now,
                                                  invoice_id=None)
    if shut:
        conn.execute(insert(closed_periods), list(shut.values()))
    ids["commitment"] = _insert_many(conn, plans, [dict(
        service_id=ids["service"][c.service_id], currency=c.currency, monthly_minor=minor(c.monthly, c.currency),
        discount_ppm=rate_to_ppm(c.percent_off), months=c.months, starts_on=c.starts_on, ends_on=c.ends_on,
        created_at=c.created_at, created_by=c.created_by) for c in doc.commitments], [c.id for c in doc.commitments])
    rows = [dict(service_id=ids["service"][a.service_id], threshold_minor=minor(a.threshold, a.currency), currency=a.currency,
                 set_at=a.set_at, set_by=a.set_by, notified_period=a.notified_period) for a in doc.spending_alerts]
    if rows:
        conn.execute(insert(alerts), rows)
    rows = _acceptances(conn, account_id, doc, ids)
    if rows:
        conn.execute(insert(ContractAcceptance.__table__), rows)

    # the audit log, each event on its new object, then the import itself
    rows = [dict(at=e.at, actor=e.actor, role=e.role, entity=e.entity, entity_id=ids[e.entity][e.entity_id], action=e.action,
                 before=audit._dump(_refs(e.before, ids)), after=audit._dump(_refs(e.after, ids)))
            for e in doc.audit if e.entity_id in ids.get(e.entity, {})]
    if rows:
        conn.execute(insert(events), rows)
    result.counts = {"services": len(doc.services), "orders": len(doc.orders), "invoices": len(doc.invoices),
                     "credit_notes": len(doc.credit_notes), "payments": len(doc.payments), "balance_entries": len(entries),
                     "usage": len(doc.usage), "usage_periods": len(shut), "commitments": len(doc.commitments),
                     "spending_alerts": len(doc.spending_alerts), "contracts": len(doc.contracts), "audit_events": len(rows)}
    audit.record(conn, now, actor, "account", account_id, "account.imported", None,
                 {"handle": handle, "from_handle": a.handle, "exported_at": doc.exported_at.isoformat(), **result.counts,
                  "remapped_contacts": len(result.remapped_contacts)})
    return result


def _invalid(reason: str) -> InvalidInput:
    return InvalidInput(N_("The export is not valid: {reason}."), code="invalid_export", reason=reason)


def _check_pay_as_you_go(doc: AccountExport, rt: Runtime) -> list[int]:
    """Refuse a document whose pay-as-you-go parts would not load: a service that is not in the
    export, a month not named by its first day, a metric this system does not rate, a quantity
    that is not exact, a key given twice. Returns the usage quantities in micro-units."""
    services = {s.id for s in doc.services}
    for what, parts in (("usage", doc.usage), ("usage period", doc.usage_periods), ("savings plan", doc.commitments),
                        ("spending alert", doc.spending_alerts)):
        for part in parts:
            if part.service_id not in services:
                raise _invalid(f"{what} of service {part.service_id}, which is not in the export")
    micro = []
    for u in doc.usage:
        if u.period.day != 1:
            raise _invalid(f"usage period {u.period} is not a month's first day")
        if u.metric not in rt.metrics:
            raise _invalid(f"unknown metric {u.metric!r}")
        q = to_micro(u.quantity)
        if q is None or q < 0:
            raise _invalid(f"usage quantity {u.quantity!r}")
        micro.append(q)
    for what, keys in (("usage", [(u.service_id, u.period, u.metric, u.dimension) for u in doc.usage]),
                       ("usage period", [(p.service_id, p.period) for p in doc.usage_periods]),
                       ("savings plan", [(c.service_id, c.starts_on) for c in doc.commitments]),
                       ("spending alert", [a.service_id for a in doc.spending_alerts])):
        if len(set(keys)) != len(keys):
            raise _invalid(f"a {what} is repeated")
    if any(p.period.day != 1 for p in doc.usage_periods):
        raise _invalid("a usage period is not a month's first day")
    for c in doc.commitments:
        try:
            if not 0 <= rate_to_ppm(c.percent_off) < 1_000_000 or c.starts_on.day != 1:
                raise MoneyError(c.percent_off)
        except MoneyError:
            raise _invalid(f"savings plan {c.id}") from None
    return micro


def _record_id(u: UsagePart) -> str:
    """The record an imported monthly sum becomes: ``import:YYYY-MM:metric:dimension`` (a digest
    of metric and dimension past 64 characters, the key's limit)."""
    text = f"import:{u.period:%Y-%m}:{u.metric}:{u.dimension or ''}"
    if len(text) <= 64:
        return text
    return f"import:{u.period:%Y-%m}:{hashlib.sha256(f'{u.metric}:{u.dimension}'.encode()).hexdigest()[:40]}"


def _insert_many(conn: Connection, table, rows: list[dict], old_ids: list[int]) -> dict[int, int]:
    """Insert rows in one statement; returns old id → new id (ids come back in row order)."""
    if not rows:
        return {}
    new = conn.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).scalars().all()
    return dict(zip(old_ids, new, strict=True))


def _move_counters(conn: Connection, numbers: set[tuple]) -> None:
    """Each (storefront, series, year) counter goes at least as far as the imported numbers."""
    from core.invoicing import _ensure_counter

    top: dict[tuple, int] = {}
    for subsidiary, series, year, seq in numbers:
        top[(subsidiary, series, year)] = max(seq, top.get((subsidiary, series, year), 0))
    for (subsidiary, series, year), seq in sorted(top.items()):
        _ensure_counter(conn, subsidiary, series, year)
        key = and_(counter.c.subsidiary == subsidiary, counter.c.series == series, counter.c.fiscal_year == year)
        conn.execute(select(counter.c.last_seq).where(key).with_for_update()).scalar_one()
        conn.execute(update(counter).where(key, counter.c.last_seq < seq).values(last_seq=seq))


def _free_handle(conn: Connection, handle: str) -> str:
    stem = re.sub(r"[^a-z]", "", handle.split("-")[0].lower())[:2] or "xx"
    for _ in range(50):
        candidate = f"{stem}{secrets.randbelow(90000) + 10000}-univers"
        if conn.execute(select(acct.c.id).where(acct.c.handle == candidate)).first() is None:
            return candidate
    raise Conflict(code="handle_unavailable")


# --- closure ------------------------------------------------------------------------------------

LIVE_STATES = ("pending", "active", "suspended")
CLOSED_NAME = "Closed account"
PERSONAL = frozenset({"name", "email", "vat_number", "region", "vat_confirmation"})


def close_account(conn: Connection, rt: Runtime, account_id: int, actor: Actor) -> dict:
    """Close an account for good. Refused (409) while it is a contact of a service that is
    pending, active or suspended (``account_has_services``), has an issued invoice not paid
    (``account_has_unpaid``) or a payment queued or pending (``account_has_pending_payments``).

    Then its personal data is erased (name, e-mail, VAT number and its confirmation, region;
    also from its own audit events and its sent notifications), keeping what accounting needs
    (storefront, country, tax zone, handle); its API keys are revoked, its pending contact
    changes cancelled, and ``closed_at`` set: it authenticates no more. Invoices and credit
    notes are not touched: they keep the buyer as invoiced, as the law requires. What is left on
    the prepaid balance stays on the ledger."""
    row = conn.execute(select(acct).where(acct.c.id == account_id).with_for_update()).mappings().one_or_none()
    if row is None or row["is_staff"]:
        raise NotFound(what="customer")
    if row["closed_at"] is not None:
        raise Conflict(N_("This account is already closed."), code="account_closed")
    live = conn.execute(select(func.count()).select_from(svc).where(
        or_(svc.c.admin_account_id == account_id, svc.c.tech_account_id == account_id,
            svc.c.billing_account_id == account_id, svc.c.account_id == account_id),
        svc.c.state.in_(LIVE_STATES))).scalar_one()
    if live:
        raise Conflict(N_("Services not yet ended: {count}. Stop them, or hand them to another contact, and close the "
                          "account once they have ended."), code="account_has_services", count=live)
    unpaid = conn.execute(select(func.count()).select_from(inv).where(
        inv.c.account_id == account_id, inv.c.status == "issued")).scalar_one()
    if unpaid:
        raise Conflict(N_("Invoices not yet paid: {count}. Pay them before closing the account."),
                       code="account_has_unpaid", count=unpaid)
    in_flight = conn.execute(select(func.count()).select_from(pay).where(
        pay.c.account_id == account_id, pay.c.status.in_(("queued", "pending")))).scalar_one()
    if in_flight:
        raise Conflict(N_("Payments still in progress: {count}. Close the account once they are settled."),
                       code="account_has_pending_payments", count=in_flight)
    now = rt.clock.now()
    erased = dict(name=CLOSED_NAME, email=f"closed-{account_id}@invalid", vat_number=None, vat_verified=False,
                  vat_confirmed_on=None, vat_confirmation=None, region=None, test_outcome=None, closed_at=now)
    conn.execute(update(acct).where(acct.c.id == account_id).values(**erased))
    revoked = conn.execute(update(keys).where(keys.c.account_id == account_id, keys.c.revoked_at.is_(None))
                           .values(revoked_at=now)).rowcount
    conn.execute(update(changes).where(changes.c.status == "pending", or_(
        changes.c.from_account_id == account_id, changes.c.to_account_id == account_id,
        changes.c.requested_by == account_id)).values(status="cancelled", decided_at=now))
    conn.execute(update(notes).where(notes.c.account_id == account_id, notes.c.status != "pending")
                 .values(recipient=None, subject=None, body=None))
    _scrub_audit(conn, account_id)
    audit.record(conn, now, actor, "account", account_id, "account.closed", None,
                 {"closed_at": now.isoformat(), "api_keys_revoked": revoked})
    return {**row, **erased}


def _scrub_audit(conn: Connection, account_id: int) -> None:
    """Personal values leave the account's own audit events; the events themselves stay."""
    rows = conn.execute(select(events.c.id, events.c.before, events.c.after).where(
        events.c.entity == "account", events.c.entity_id == account_id)).all()
    for event_id, before, after in rows:
        values = {}
        for name, text in (("before", before), ("after", after)):
            value = _load(text)
            if isinstance(value, dict) and PERSONAL & value.keys():
                values[name] = audit._dump({k: (None if k in PERSONAL else v) for k, v in value.items()})
        if values:
            conn.execute(update(events).where(events.c.id == event_id).values(**values))


def _acceptances(conn: Connection, account_id: int, doc: AccountExport, ids: dict) -> list[dict]:
    """The accepted terms, on this database's versions of the same text (its hash): a version
    this database does not have is refused, since an acceptance of unknown terms proves nothing."""
    from core.models import ContractVersion

    versions = ContractVersion.__table__
    hashes = sorted({c.content_hash for c in doc.contracts})
    here = {}
    for part in _chunks(hashes):
        for h, storefront, version_id in conn.execute(select(versions.c.content_hash, versions.c.storefront, versions.c.id)
                                                      .where(versions.c.content_hash.in_(part))):
            here[h, storefront] = version_id
    rows = []
    for c in doc.contracts:
        version_id = here.get((c.content_hash, c.storefront))
        if version_id is None:
            raise InvalidInput(N_("The export is not valid: {reason}."), code="invalid_export",
                               reason=f"terms {c.document} of {c.effective_on} ({c.content_hash[:12]}) are not in this database")
        rows.append(dict(account_id=account_id, version_id=version_id, content_hash=c.content_hash, accepted_at=c.accepted_at,
                         channel=c.channel, actor=c.actor, order_id=ids["order"].get(c.order_id),
                         service_id=ids["service"].get(c.service_id)))
    return rows
