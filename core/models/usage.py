"""Pay-as-you-go: usage records, closed months, spending alerts and savings plans."""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from core.models.columns import ID, fk, pk, ts


class UsageRecord(SQLModel, table=True):
    """One metered record of a project's usage (core/usage/ingest.py), as its sender sent it, once: the
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
    """A project's spending alert (core/usage/alerts.py): its billing contact is told once per month
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
    """A savings plan (core/usage/commitments.py): the project's billing contact commits to pay
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
