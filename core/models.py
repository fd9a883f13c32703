"""Database tables (SQLModel). API schemas live in :mod:`core.api.schemas`; table objects never
leak into responses.

Money is integer minor units (``*_minor``), tax rates are parts per million (``*_ppm``), unit
prices for metered products are micro-units (``*_micro``). Timestamps are UTC; SQLite drops
the zone, so :class:`UTCDateTime` puts it back on read. Billing periods are dates.

Every table is defined here, so that ``SQLModel.metadata`` is complete before Alembic runs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from core.clock import UTC

ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements only INTEGER keys


class UTCDateTime(TypeDecorator):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def pk() -> Any:
    return Field(default=None, sa_column=Column(ID, primary_key=True, autoincrement=True))


def fk(target: str, *, nullable: bool = False, index: bool = True) -> Any:
    from sqlalchemy import ForeignKey

    return Field(default=None if nullable else ..., sa_column=Column(ID, ForeignKey(target), nullable=nullable, index=index))


def ts(*, nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))


def money() -> Any:
    return Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class Account(SQLModel, table=True):
    """A customer account (person or company), or a staff account."""

    __tablename__ = "account"
    id: Optional[int] = pk()
    handle: str = Field(max_length=32, unique=True)
    subsidiary: str = Field(max_length=4, index=True)
    kind: str = Field(max_length=10)  # person | company
    name: str = Field(max_length=200)
    email: str = Field(max_length=254)
    language: str = Field(max_length=16)
    country: str = Field(max_length=2)
    region: Optional[str] = Field(default=None, max_length=8)  # province or state where taxes depend on it
    vat_number: Optional[str] = Field(default=None, max_length=32)
    vat_verified: bool = False  # confirmed (VIES or a document), not merely well formed
    vat_confirmed_on: Optional[dt.date] = None
    vat_confirmation: Optional[str] = Field(default=None, max_length=200)  # how: method and reference
    tax_zone: str = Field(default="", max_length=8)  # see core/tax.py; joined by renewal to tax_rate
    is_staff: bool = False
    staff_role: Optional[str] = Field(default=None, max_length=20)  # see core/access.py STAFF_ROLES
    balance_minor: int = money()
    payment_method: str = Field(default="balance", max_length=16)  # balance | test
    test_outcome: Optional[str] = Field(default=None, max_length=16)  # scripted test-gateway outcome
    created_at: dt.datetime = ts()
    closed_at: Optional[dt.datetime] = ts(nullable=True)  # closed by its holder: personal data erased


class ApiKey(SQLModel, table=True):
    """A secret shown once at creation; only its SHA-256 is kept. ``scopes`` is a space-separated
    list (see core/access.py SCOPES); a key past ``expires_at`` or revoked authenticates nothing."""

    __tablename__ = "api_key"
    id: Optional[int] = pk()
    account_id: int = fk("account.id")
    key_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)
    name: str = Field(default="", max_length=64)
    scopes: str = Field(default="*", max_length=200)
    created_at: dt.datetime = ts()
    expires_at: Optional[dt.datetime] = ts(nullable=True)
    revoked_at: Optional[dt.datetime] = ts(nullable=True)


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("account_id", "idempotency_key", name="uq_order_idempotency"),)
    id: Optional[int] = pk()
    account_id: int = fk("account.id")
    idempotency_key: str = Field(max_length=128)
    request_hash: str = Field(max_length=64)
    status: str = Field(max_length=20)  # awaiting_payment | paid | delivering | delivered | cancelled
    subsidiary: str = Field(max_length=4)
    currency: str = Field(max_length=3)
    total_minor: int = money()
    invoice_id: Optional[int] = Field(default=None, sa_column=Column(ID, nullable=True))  # no FK: invoice → order already
    created_at: dt.datetime = ts()
    updated_at: dt.datetime = ts()
    withdrawal_waived_at: Optional[dt.datetime] = ts(nullable=True)  # the consumer asked for delivery at once, waiving it
    withdrawn_at: Optional[dt.datetime] = ts(nullable=True)  # the consumer withdrew (core/withdrawal.py)


class OrderLine(SQLModel, table=True):
    __tablename__ = "order_line"
    id: Optional[int] = pk()
    order_id: int = fk("orders.id")
    line_no: int
    universe: str = Field(max_length=32)
    product_code: str = Field(max_length=64)
    plan_code: str = Field(max_length=64)
    quantity: int
    options: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    unit_price_minor: int = money()
    setup_minor: int = money()
    period_months: int
    engagement_months: int = 0


class Service(SQLModel, table=True):
    """What was delivered. ``expires_on`` is paid-through; ``billed_until`` is invoiced-through."""

    __tablename__ = "service"
    __table_args__ = (
        Index("ix_service_dunning", "state", "expires_on"),
        Index("ix_service_account", "account_id", "id"),  # one per contact column, by id: keyset pages of a list
        Index("ix_service_admin", "admin_account_id", "id"),
        Index("ix_service_tech", "tech_account_id", "id"),
        Index("ix_service_billing", "billing_account_id", "id"),
        Index("uq_service_legacy_ref", "subsidiary", "legacy_ref", unique=True),  # a legacy import, re-run, is once
    )
    id: Optional[int] = pk()
    account_id: int = fk("account.id", index=False)
    admin_account_id: int = fk("account.id", index=False)
    tech_account_id: int = fk("account.id", index=False)
    billing_account_id: int = fk("account.id", index=False)
    order_id: Optional[int] = fk("orders.id", nullable=True)
    universe: str = Field(max_length=32)
    product_code: str = Field(max_length=64)
    plan_code: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    subsidiary: str = Field(max_length=4)
    currency: str = Field(max_length=3)
    state: str = Field(max_length=12)  # pending | active | suspended | terminated | deleted
    renewal_mode: str = Field(default="automatic", max_length=12)  # automatic | manual | terminate
    period_months: int
    quantity: int = 1
    price_minor: int = money()  # per period, for the whole quantity
    start_on: dt.date
    expires_on: dt.date
    billed_until: dt.date
    engagement_end: Optional[dt.date] = None
    options: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    resource: Optional[str] = Field(default=None, max_length=200)
    suspended_on: Optional[dt.date] = None
    terminated_on: Optional[dt.date] = None
    deleted_on: Optional[dt.date] = None  # its data deleted, after the retention period
    abuse_reason: Optional[str] = Field(default=None, max_length=500)  # suspended for abuse (shown to the customer)
    abuse_since: Optional[dt.datetime] = ts(nullable=True)  # independent of ``state``: lifting one never lifts the other
    legacy_ref: Optional[str] = Field(default=None, max_length=64)  # its id in the old billing system (core/legacy.py)
    terms_due_by: Optional[dt.date] = None  # new terms to accept: not renewed from this date without them (core/contracts.py)
    created_at: dt.datetime = ts()
    updated_at: dt.datetime = ts()


class Invoice(SQLModel, table=True):
    """Issued once, then immutable. ``seq`` is allocated at issue time from the gapless counter."""

    __tablename__ = "invoice"
    __table_args__ = (
        UniqueConstraint("subsidiary", "series", "fiscal_year", "seq", name="uq_invoice_number"),
        UniqueConstraint("credited_invoice_id", "idempotency_key", name="uq_credit_note_key"),
        Index("ix_invoice_run", "run_id", "account_id", "due_on"),
        Index("ix_invoice_account", "account_id", "id"),
        Index("ix_invoice_open", "status", "due_on"),
    )
    id: Optional[int] = pk()
    account_id: int = fk("account.id", index=False)
    order_id: Optional[int] = fk("orders.id", nullable=True)
    run_id: Optional[int] = Field(default=None, sa_column=Column(ID, nullable=True))
    subsidiary: str = Field(max_length=4)
    currency: str = Field(max_length=3)
    kind: str = Field(max_length=12)  # order | renewal | usage | credit_note
    status: str = Field(max_length=12)  # draft | issued | paid | credited (cancelled by a credit note)
    series: str = Field(max_length=16)
    fiscal_year: Optional[int] = None
    seq: Optional[int] = None
    issued_on: Optional[dt.date] = None
    due_on: dt.date
    net_minor: int = money()
    tax_minor: int = money()
    total_minor: int = money()
    # The buyer as invoiced, frozen with the invoice (the account may change later).
    buyer_name: str = Field(default="", max_length=200)
    buyer_country: str = Field(default="", max_length=2)
    buyer_region: Optional[str] = Field(default=None, max_length=8)
    buyer_vat_number: Optional[str] = Field(default=None, max_length=32)
    # A credit note: the invoice it corrects, why, and the key that makes a retry harmless.
    credited_invoice_id: Optional[int] = fk("invoice.id", nullable=True)
    reason: Optional[str] = Field(default=None, max_length=500)
    idempotency_key: Optional[str] = Field(default=None, max_length=128)
    paid_at: Optional[dt.datetime] = ts(nullable=True)
    created_at: dt.datetime = ts()


class InvoiceLine(SQLModel, table=True):
    """Unique on (service, kind, period start): the database forbids billing a period twice."""

    __tablename__ = "invoice_line"
    __table_args__ = (
        UniqueConstraint("service_id", "kind", "period_start", name="uq_line_service_period"),
        Index("ix_invoice_line_credited", "credited_line_id", postgresql_where=text("credited_line_id IS NOT NULL"),
              sqlite_where=text("credited_line_id IS NOT NULL")),
    )
    id: Optional[int] = pk()
    invoice_id: int = fk("invoice.id")
    service_id: Optional[int] = fk("service.id", nullable=True, index=False)
    kind: str = Field(max_length=12)  # recurring | setup | usage (product_code: the metric, plan_code: its dimension or "")
    universe: str = Field(max_length=32)
    product_code: str = Field(max_length=64)
    plan_code: str = Field(max_length=64)
    period_start: dt.date
    period_end: dt.date
    quantity: int
    unit_price_minor: int = money()
    net_minor: int = money()
    tax_name: str = Field(default="VAT", max_length=16)
    tax_category: str = Field(max_length=4)
    tax_rate_ppm: int
    # A second tax on the same base (Québec's QST on top of GST), or none.
    tax2_name: Optional[str] = Field(default=None, max_length=16)
    tax2_rate_ppm: Optional[int] = None
    # On a credit note: the line it credits. Indexed only where set (renewals insert lines by the million).
    credited_line_id: Optional[int] = fk("invoice_line.id", nullable=True, index=False)
    # A usage line (kind "usage", core/metering.py): the month's exact quantity and unit price in
    # micro-units; ``quantity`` is then 1 and ``unit_price_minor`` the line's net (so that quantity ×
    # unit price = net holds in minor units, as e-invoices require). NULL on other lines.
    quantity_micro: Optional[int] = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    unit_price_micro: Optional[int] = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class InvoiceTax(SQLModel, table=True):
    """Tax breakdown: one row per (tax, category, rate), computed over the summed line amounts."""

    __tablename__ = "invoice_tax"
    invoice_id: int = Field(sa_column=Column(ID, primary_key=True))
    name: str = Field(default="VAT", primary_key=True, max_length=16)
    category: str = Field(primary_key=True, max_length=4)
    rate_ppm: int = Field(primary_key=True)
    base_minor: int = money()
    tax_minor: int = money()


class InvoiceCounter(SQLModel, table=True):
    """One gapless counter per (subsidiary, series, year), locked while numbers are allocated."""

    __tablename__ = "invoice_counter"
    subsidiary: str = Field(primary_key=True, max_length=4)
    series: str = Field(primary_key=True, max_length=16)
    fiscal_year: int = Field(primary_key=True)
    last_seq: int = 0


class Payment(SQLModel, table=True):
    """One payment attempt. Charges of the renewal run and of dunning retries are ``queued``
    here, then executed by the charge workers (a lease, bounded concurrency, retries); the
    attempt's ``idempotency_key`` goes to the gateway, so a retried call never charges twice."""

    __tablename__ = "payment"
    __table_args__ = (
        Index("ix_payment_invoice", "invoice_id", "status"),
        Index("uq_payment_idempotency_key", "idempotency_key", unique=True),
        Index("ix_payment_queued", "next_attempt_at", postgresql_where=text("status = 'queued'"),
              sqlite_where=text("status = 'queued'")),
    )
    id: Optional[int] = pk()
    account_id: int = fk("account.id")
    invoice_id: Optional[int] = fk("invoice.id", nullable=True, index=False)
    method: str = Field(max_length=16)  # balance | test
    purpose: str = Field(max_length=12)  # invoice | topup
    amount_minor: int = money()
    currency: str = Field(max_length=3)
    status: str = Field(max_length=12)  # queued | pending | succeeded | failed | cancelled
    gateway_ref: Optional[str] = Field(default=None, max_length=64, unique=True)
    failure_code: Optional[str] = Field(default=None, max_length=32)
    idempotency_key: Optional[str] = Field(default=None, max_length=80)
    attempts: int = 0  # calls to the gateway for this attempt (a timeout is retried with the same key)
    next_attempt_at: Optional[dt.datetime] = ts(nullable=True)
    locked_until: Optional[dt.datetime] = ts(nullable=True)
    created_at: dt.datetime = ts()
    settled_at: Optional[dt.datetime] = ts(nullable=True)


class BalanceEntry(SQLModel, table=True):
    """The prepaid balance ledger; ``account.balance_minor`` is its running sum."""

    __tablename__ = "balance_entry"
    id: Optional[int] = pk()
    account_id: int = fk("account.id")
    amount_minor: int = money()  # positive: credit; negative: debit
    reason: str = Field(max_length=16)  # topup | invoice
    invoice_id: Optional[int] = fk("invoice.id", nullable=True, index=False)
    payment_id: Optional[int] = fk("payment.id", nullable=True, index=False)
    created_at: dt.datetime = ts()


class OutboxItem(SQLModel, table=True):
    """An infrastructure action written in the same transaction as the state change."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)
    id: Optional[int] = pk()
    action: str = Field(max_length=12)  # provision | suspend | resume | terminate | restore | delete | technical
    detail: Optional[str] = Field(default=None, max_length=40)  # a technical action's name (reboot, reinstall...)
    service_id: int = fk("service.id")
    key: str = Field(max_length=80, unique=True)
    status: str = Field(default="pending", max_length=10)  # pending | done | parked
    attempts: int = 0
    next_attempt_at: dt.datetime = ts()
    locked_until: Optional[dt.datetime] = ts(nullable=True)
    last_error: Optional[str] = Field(default=None, max_length=500)
    created_at: dt.datetime = ts()
    done_at: Optional[dt.datetime] = ts(nullable=True)


class Notification(SQLModel, table=True):
    """A message to a service's billing contact, queued in the transaction that decided it
    (the unique key makes a second run a no-op), rendered in the contact's language and
    delivered over SMTP by the mail worker, which keeps what it sent."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_due", "status", "next_attempt_at"),)
    id: Optional[int] = pk()
    kind: str = Field(max_length=24)  # core.notifications.KINDS, core.contacts.KINDS
    key: str = Field(max_length=120, unique=True)
    account_id: int = fk("account.id", index=False)  # the recipient: the billing contact
    service_id: Optional[int] = fk("service.id", nullable=True, index=False)
    invoice_id: Optional[int] = fk("invoice.id", nullable=True, index=False)
    status: str = Field(default="pending", max_length=10)  # pending | sent | parked
    attempts: int = 0
    next_attempt_at: dt.datetime = ts()
    locked_until: Optional[dt.datetime] = ts(nullable=True)
    last_error: Optional[str] = Field(default=None, max_length=500)
    recipient: Optional[str] = Field(default=None, max_length=254)
    subject: Optional[str] = Field(default=None, max_length=300)
    body: Optional[str] = None
    created_at: dt.datetime = ts()
    sent_at: Optional[dt.datetime] = ts(nullable=True)


class AuditEvent(SQLModel, table=True):
    """Who did what, when, with the values before and after (JSON text)."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id", "id"),)
    id: Optional[int] = pk()
    at: dt.datetime = ts()
    actor: str = Field(max_length=80)  # account:<handle> | staff:<handle> | system:<job>
    role: Optional[str] = Field(default=None, max_length=40)  # the actor's role(s) on the object: admin+billing, abuse_desk...
    entity: str = Field(max_length=16)  # service | order | invoice | payment | account
    entity_id: int = Field(sa_column=Column(ID, nullable=False))
    action: str = Field(max_length=40)
    before: Optional[str] = None
    after: Optional[str] = None


class Partner(SQLModel, table=True):
    """An account in the partner programme of a universe: it runs its clients' services as
    their admin or tech contact and lists them all in one place."""

    __tablename__ = "partner"
    __table_args__ = (UniqueConstraint("account_id", "universe", name="uq_partner_universe"),)
    id: Optional[int] = pk()
    account_id: int = fk("account.id", index=False)
    universe: str = Field(max_length=32)
    joined_at: dt.datetime = ts()


class ContactChange(SQLModel, table=True):
    """A change of one of a service's contacts, asked by its admin contact. It is applied once
    both the outgoing and the incoming account have accepted with their one-time tokens (kept
    hashed), and fails if either refuses or ``expires_at`` passes."""

    __tablename__ = "contact_change"
    __table_args__ = (Index("ix_contact_change_service", "service_id", "status"),
                      Index("ix_contact_change_due", "status", "expires_at"))  # the daily expiry sweep
    id: Optional[int] = pk()
    service_id: int = fk("service.id", index=False)
    role: str = Field(max_length=8)  # admin | tech | billing
    from_account_id: int = fk("account.id", index=False)
    to_account_id: int = fk("account.id", index=False)
    requested_by: int = fk("account.id", index=False)
    status: str = Field(default="pending", max_length=10)  # pending | done | refused | expired | cancelled
    from_token_hash: str = Field(max_length=64, unique=True)
    to_token_hash: str = Field(max_length=64, unique=True)
    from_accepted_at: Optional[dt.datetime] = ts(nullable=True)
    to_accepted_at: Optional[dt.datetime] = ts(nullable=True)
    expires_at: dt.datetime = ts()
    created_at: dt.datetime = ts()
    decided_at: Optional[dt.datetime] = ts(nullable=True)


class RenewalRun(SQLModel, table=True):
    """One renewal run and its summary."""

    __tablename__ = "renewal_run"
    id: Optional[int] = pk()
    run_on: dt.date
    started_at: dt.datetime = ts()
    finished_at: Optional[dt.datetime] = ts(nullable=True)
    status: str = Field(default="running", max_length=12)
    services: int = 0
    invoices: int = 0
    paid: int = 0
    unpaid: int = 0
    suspended: int = 0
    terminated: int = 0
    ended: int = 0


class UsageRecord(SQLModel, table=True):
    """One metered record of a project's usage (core/usage.py), as its sender sent it, once: the
    key is (project, the sender's ``record_id``), so a record sent again counts once. The
    quantity is exact in micro-units (millionths of the metric's unit); ``period`` is the first
    day of the UTC month of ``at``, the month it is billed in (in arrears).

    Written by the hundred thousand a second, so it carries only what ingestion and rating need:
    no surrogate id (the key is the sender's), and no foreign key on ``service_id`` (checked per
    row, it cost a third of the insert; ingestion joins every record to its project anyway,
    and service rows are never deleted)."""

    __tablename__ = "usage_record"
    __table_args__ = (
        Index("ix_usage_rating", "period", "service_id", "metric", "dimension"),  # a period rated set-based
    )
    service_id: int = Field(sa_column=Column(ID, primary_key=True, autoincrement=False))  # the project
    record_id: str = Field(primary_key=True, max_length=64)
    metric: str = Field(max_length=32)
    dimension: Optional[str] = Field(default=None, max_length=64)  # e.g. the instance flavour
    quantity_micro: int = Field(sa_column=Column(BigInteger, nullable=False))
    at: dt.datetime = ts()
    period: dt.date
    received_at: dt.datetime = ts()


class UsagePeriod(SQLModel, table=True):
    """A project's closed billing period: its usage was rated and invoiced, so late records for
    it are refused."""

    __tablename__ = "usage_period"
    service_id: int = Field(sa_column=Column(ID, ForeignKey("service.id"), primary_key=True))
    period: dt.date = Field(primary_key=True)
    closed_at: dt.datetime = ts()
    invoice_id: Optional[int] = fk("invoice.id", nullable=True, index=False)


class SpendingAlert(SQLModel, table=True):
    """A project's spending alert (core/alerts.py): its billing contact is told once per month
    when the month's usage, priced, crosses ``threshold_minor`` (excluding tax). Setting a new
    threshold clears ``notified_period``, so a raised threshold warns again."""

    __tablename__ = "spending_alert"
    service_id: int = Field(sa_column=Column(ID, ForeignKey("service.id"), primary_key=True))
    threshold_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    set_at: dt.datetime = ts()
    set_by: str = Field(max_length=120)
    notified_period: Optional[dt.date] = None  # the month whose crossing was notified


class Commitment(SQLModel, table=True):
    """A savings plan (core/commitments.py): the project's billing contact commits to pay
    ``monthly_minor`` each month from ``starts_on`` (a month's first day) for ``months`` months,
    at ``discount_ppm`` off the list price of the usage it covers. One per project and month:
    ``starts_on`` is unique per project, and overlaps are refused under the project's lock."""

    __tablename__ = "usage_commitment"
    __table_args__ = (UniqueConstraint("service_id", "starts_on", name="uq_commitment_start"),)
    id: Optional[int] = pk()
    service_id: int = fk("service.id", index=False)  # the unique key leads with it
    currency: str = Field(max_length=3)
    monthly_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    discount_ppm: int
    months: int
    starts_on: dt.date
    ends_on: dt.date  # the first month after it, excluded
    created_at: dt.datetime = ts()
    created_by: str = Field(max_length=120)


class ContractVersion(SQLModel, table=True):
    """A version of a contract document (core/contracts.py): the general terms of a storefront,
    or a universe's specific terms there, in one language, in force from ``effective_on``.
    ``content_hash`` (SHA-256 of the text) is what a customer accepts."""

    __tablename__ = "contract_version"
    __table_args__ = (UniqueConstraint("document", "storefront", "language", "effective_on", name="uq_contract_version"),)
    id: Optional[int] = pk()
    document: str = Field(max_length=32)  # "general", or a universe's name
    storefront: str = Field(max_length=4)
    language: str = Field(max_length=16)
    effective_on: dt.date
    title: str = Field(max_length=200)
    body: str
    content_hash: str = Field(max_length=64, index=True)  # the same text in two storefronts: one hash
    requires_acceptance: bool = True  # services under an older version need it before their next renewal
    created_at: dt.datetime = ts()
    applied_at: Optional[dt.datetime] = ts(nullable=True)  # when the services under older terms were given a deadline


class ContractAcceptance(SQLModel, table=True):
    """An account's acceptance of a contract version: when, through which channel (its API key,
    or staff on its behalf), with which order or for which service."""

    __tablename__ = "contract_acceptance"
    __table_args__ = (Index("ix_acceptance_account", "account_id", "version_id"),)
    id: Optional[int] = pk()
    account_id: int = fk("account.id", index=False)
    version_id: int = fk("contract_version.id", index=False)
    content_hash: str = Field(max_length=64)
    accepted_at: dt.datetime = ts()
    channel: str = Field(max_length=16)  # api | staff | import
    actor: str = Field(max_length=120)
    order_id: Optional[int] = fk("orders.id", nullable=True, index=False)
    service_id: Optional[int] = fk("service.id", nullable=True, index=False)


TABLES = [
    Account, ApiKey, Order, OrderLine, Service, Invoice, InvoiceLine, InvoiceTax, InvoiceCounter,
    Payment, BalanceEntry, OutboxItem, Notification, AuditEvent, RenewalRun, Partner, ContactChange,
    UsageRecord, UsagePeriod, SpendingAlert, Commitment, ContractVersion, ContractAcceptance,
]


class CatalogPrice(SQLModel, table=True):
    """The local price list of every storefront, copied from the catalog overlays at start-up so
    that set-based renewal can price each service at the price in force on its renewal date.
    ``valid_to`` is exclusive (the next price's start); an open-ended price has 9999-12-31."""

    __tablename__ = "catalog_price"
    storefront: str = Field(max_length=4, primary_key=True)
    plan_code: str = Field(max_length=64, primary_key=True)
    valid_from: dt.date = Field(primary_key=True)
    valid_to: dt.date
    currency: str = Field(max_length=3)
    amount_minor: int = money()
    setup_minor: int = money()
    hourly_micro: Optional[int] = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class TaxRateRow(SQLModel, table=True):
    """The tax zones of ``core/data/taxes.json``, copied at start-up for set-based renewal.
    ``valid_to`` is exclusive (the day after the last day); open-ended rates have 9999-12-31."""

    __tablename__ = "tax_rate"
    zone: str = Field(max_length=8, primary_key=True)
    name: str = Field(max_length=16, primary_key=True)
    valid_from: dt.date = Field(primary_key=True)
    valid_to: dt.date
    stacked: bool = False
    category: str = Field(max_length=4)
    rate_ppm: int
