"""Orders, services, the outbox and notification queues, the audit log and renewal runs."""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import (
    JSON,
    Column,
    Index,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from core.models.columns import ID, fk, money, pk, ts


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
    withdrawn_at: Optional[dt.datetime] = ts(nullable=True)  # the consumer withdrew (core/ordering/withdrawal.py)


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
        # a legacy import, re-run, is once; only the imported services are in it, so that the renewal's
        # update of every service writes no entry into it (PostgreSQL indexes each new row version)
        Index("uq_service_legacy_ref", "subsidiary", "legacy_ref", unique=True,
              postgresql_where=text("legacy_ref IS NOT NULL"), sqlite_where=text("legacy_ref IS NOT NULL")),
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
    legacy_ref: Optional[str] = Field(default=None, max_length=64)  # its id in the old billing system (core/portability/legacy.py)
    terms_due_by: Optional[dt.date] = None  # new terms to accept: not renewed from this date without them (core/ordering/contracts.py)
    created_at: dt.datetime = ts()
    updated_at: dt.datetime = ts()


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
    kind: str = Field(max_length=24)  # core.notify.mail.KINDS, core.customers.contacts.KINDS
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
    __table_args__ = (
        Index("ix_audit_entity", "entity", "entity_id", "id"),
        # what one request wrote (GET /v1/staff/events?request_id=): a job's events, with none, stay out of it
        Index("ix_audit_request", "request_id", postgresql_where=text("request_id IS NOT NULL"),
              sqlite_where=text("request_id IS NOT NULL")),
    )
    id: Optional[int] = pk()
    at: dt.datetime = ts()
    actor: str = Field(max_length=80)  # account:<handle> | staff:<handle> | system:<job>
    role: Optional[str] = Field(default=None, max_length=40)  # the actor's role(s) on the object: admin+billing, abuse_desk...
    entity: str = Field(max_length=16)  # service | order | invoice | payment | account
    entity_id: int = Field(sa_column=Column(ID, nullable=False))
    action: str = Field(max_length=40)
    before: Optional[str] = None
    after: Optional[str] = None
    request_id: Optional[str] = Field(default=None, max_length=64)  # the API request that wrote it (X-Request-Id)


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
