"""Infrastructure logs: what the infrastructure reports about each service (core/infralogs/)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from sqlalchemy import JSON, Column, Index, SmallInteger, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.models.columns import ID, pk, ts


class InfraLogEntry(SQLModel, table=True):
    """One log entry of a service's infrastructure, as its sender (a universe's infrastructure,
    through a plugin or a staff key) sent it, once: (service, ``entry_id``) is unique, so an entry
    sent again is stored once. ``severity`` is a level (0 debug … 5 critical, core/infralogs), so
    that "at least warning" is one range; ``id`` orders entries as they arrived (the live tail's
    cursor) and breaks ties of ``at`` in pages (newest first, ``ix_infra_log_page``).

    Like usage records, written in bulk: no foreign key on ``service_id`` (ingestion joins every
    entry to its service), and deleted with the service's data (core/infralogs/retention.py)."""

    __tablename__ = "infra_log"
    __table_args__ = (
        UniqueConstraint("service_id", "entry_id", name="uq_infra_log_entry"),  # the idempotency key
        Index("ix_infra_log_page", "service_id", "at", "id"),  # a service's page, newest first, and its purge
        Index("ix_infra_log_tail", "service_id", "id"),  # the live tail: what arrived after a cursor
    )
    id: Optional[int] = pk()
    service_id: int = Field(sa_column=Column(ID, nullable=False))
    entry_id: str = Field(max_length=64)
    at: dt.datetime = ts()
    severity: int = Field(sa_column=Column(SmallInteger, nullable=False))
    source: str = Field(max_length=32)
    message: str = Field(max_length=2000)
    fields: Optional[dict[str, Any]] = Field(default=None, sa_column=Column(JSON, nullable=True))
    received_at: dt.datetime = ts()
