"""Contract versions and their acceptances."""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import (
    Index,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from core.models.columns import fk, pk, ts


class ContractVersion(SQLModel, table=True):
    """A version of a contract document (core/ordering/contracts.py): the general terms of a storefront,
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
