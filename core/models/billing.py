"""Invoices, their numbering, payments and the prepaid ledger; the price list and tax rates copied for set-based renewal."""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from core.models.columns import ID, fk, money, pk, ts


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
    # The buyer's national e-invoice data (Italy's codice destinatario, PEC...), copied from the
    # account when the invoice is issued: correcting it later changes the next invoices, not this one.
    buyer_einvoice: Optional[dict] = Field(default=None, sa_column=Column(JSON, nullable=True))
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
    # A usage line (kind "usage", core/usage/metering.py): the month's exact quantity and unit price in
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


class FiscalRecord(SQLModel, table=True):
    """One link of a fiscal chain (Portugal, Spain: see :mod:`core.billing.chain`), written in the
    transaction that issues the document it records, then never changed nor deleted (triggers)."""

    __tablename__ = "fiscal_record"
    __table_args__ = (
        UniqueConstraint("subsidiary", "chain", "position", name="uq_fiscal_record_position"),
        UniqueConstraint("invoice_id", "kind", name="uq_fiscal_record_invoice"),
    )
    id: Optional[int] = pk()
    subsidiary: str = Field(max_length=4)  # the issuer
    chain: str = Field(max_length=24)  # the series the chain follows (Portugal: a series per year)
    position: int  # 1, 2, 3... gapless in its chain
    scheme: str = Field(max_length=4)  # pt | es
    kind: str = Field(max_length=12)  # alta (an issued document) | anulacion (a record annulled)
    invoice_id: int = fk("invoice.id")
    issuer_id: str = Field(max_length=32)  # the issuer's tax number as the scheme writes it
    doc_type: str = Field(max_length=4)  # FT, NC (pt); F1, F2, R1, R5 (es)
    number: str = Field(max_length=64)  # the document number as the scheme writes it
    issued_on: dt.date
    tax_minor: int = money()
    total_minor: int = money()
    generated_at: dt.datetime = ts()
    prev_hash: str = Field(default="", max_length=512)
    hash: str = Field(max_length=512)


class FiscalSubmission(SQLModel, table=True):
    """The tax agency's answer to a fiscal record sent to it (Spain's VERI*FACTU): the record
    itself never changes, so its fate is kept here, one row per record, written once."""

    __tablename__ = "fiscal_submission"
    record_id: int = Field(sa_column=Column(ID, ForeignKey("fiscal_record.id"), primary_key=True))
    status: str = Field(max_length=12)  # accepted | rejected
    reference: Optional[str] = Field(default=None, max_length=64)  # the agency's (AEAT: CSV)
    detail: Optional[str] = Field(default=None, max_length=500)
    submitted_at: dt.datetime = ts()


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


class NationalReceipt(SQLModel, table=True):
    """What a tax authority's platform answered when it accepted an invoice's national e-invoice
    (Poland's KSeF: the KSeF number and the receipt, UPO; Italy's SdI: its file id and receipt),
    with the SHA-256 of the exact XML sent. One per invoice, written once."""

    __tablename__ = "national_receipt"
    id: Optional[int] = pk()
    invoice_id: int = Field(sa_column=Column(ID, ForeignKey("invoice.id"), nullable=False, unique=True))
    reference: str = Field(max_length=64, unique=True)  # KSeF number, SdI file id
    sha256: str = Field(max_length=64)  # hex digest of the document sent
    receipt: str  # the receipt (UPO) as the transport returned it
    accepted_at: dt.datetime = ts()
