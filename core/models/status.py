"""The work board (core/status/): incidents and known bugs per universe and product, their updates,
and the customers subscribed to them. Texts written by staff (titles, updates) are data, kept per
language as JSON (``{"en": "...", "fr": "..."}``); the labels of statuses and kinds go through Babel."""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.models.columns import fk, pk, ts


class Incident(SQLModel, table=True):
    """An incident or a known bug of a universe: on some of its products (none listed: all of them)
    and some storefronts (none listed: all). Open until resolved."""

    __tablename__ = "status_incident"
    __table_args__ = (
        Index("ix_status_incident_universe", "universe", "resolved_at"),  # the open ones of the universes of a page of services
        Index("ix_status_incident_resolved", "resolved_at", "updated_at"),  # the board: open, then recently resolved
    )
    id: Optional[int] = pk()
    universe: str = Field(max_length=32)
    products: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # product codes; [] all
    storefronts: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # storefront codes; [] all
    kind: str = Field(max_length=16)  # incident | known_bug
    status: str = Field(max_length=16)  # investigating | identified | fixing | resolved
    titles: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))  # language -> title
    idempotency_key: Optional[str] = Field(default=None, max_length=64, unique=True)  # a retried creation creates nothing
    created_by: Optional[int] = fk("account.id", nullable=True, index=False)
    created_at: dt.datetime = ts()
    updated_at: dt.datetime = ts()
    resolved_at: Optional[dt.datetime] = ts(nullable=True)


class IncidentUpdate(SQLModel, table=True):
    """One step of an incident: its status then and what staff said, in several languages. The
    opening is the first; resolving is the last."""

    __tablename__ = "status_update"
    __table_args__ = (
        Index("ix_status_update_incident", "incident_id", "id"),
        UniqueConstraint("incident_id", "idempotency_key", name="uq_status_update_key"),  # a retried update posts once
    )
    id: Optional[int] = pk()
    incident_id: int = fk("status_incident.id", index=False)
    at: dt.datetime = ts()
    status: str = Field(max_length=16)
    texts: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))  # language -> text
    idempotency_key: Optional[str] = Field(default=None, max_length=64)
    author_id: Optional[int] = fk("account.id", nullable=True, index=False)


class StatusSubscription(SQLModel, table=True):
    """A customer told by mail of each update of the incidents of a universe (``*``: all)."""

    __tablename__ = "status_subscription"
    __table_args__ = (
        UniqueConstraint("account_id", "universe", name="uq_status_subscription"),
        Index("ix_status_subscription_universe", "universe", "account_id"),  # the subscribers of an update
    )
    id: Optional[int] = pk()
    account_id: int = fk("account.id", index=False)
    universe: str = Field(max_length=32)
    created_at: dt.datetime = ts()
