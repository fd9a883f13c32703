"""Accounts, their API keys, partner programmes and contact changes."""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import (
    JSON,
    Column,
    Index,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from core.models.columns import fk, money, pk, ts


class Account(SQLModel, table=True):
    """A customer account (person or company), or a staff account."""

    __tablename__ = "account"
    id: Optional[int] = pk()
    handle: str = Field(max_length=32, unique=True)
    subsidiary: str = Field(max_length=4, index=True)
    kind: str = Field(max_length=10)  # person | company
    name: str = Field(max_length=200)
    email: str = Field(max_length=254, index=True)  # the back office finds a customer by it
    language: str = Field(max_length=16)
    country: str = Field(max_length=2)
    region: Optional[str] = Field(default=None, max_length=8)  # province or state where taxes depend on it
    vat_number: Optional[str] = Field(default=None, max_length=32)
    vat_verified: bool = False  # confirmed (VIES or a document), not merely well formed
    vat_confirmed_on: Optional[dt.date] = None
    vat_confirmation: Optional[str] = Field(default=None, max_length=200)  # how: method and reference
    tax_zone: str = Field(default="", max_length=8)  # see core/countries/tax.py; joined by renewal to tax_rate
    # what a storefront's national e-invoice needs of its buyers (Italy: codice destinatario, PEC,
    # codice fiscale, address), keyed as the storefront's ``einvoice_fields`` data says; None: nothing
    einvoice: Optional[dict] = Field(default=None, sa_column=Column(JSON, nullable=True))
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
                      Index("ix_contact_change_due", "status", "expires_at"),  # the daily expiry sweep
                      # the changes waiting for an account's answer, one index per side (core.customers.contacts.waiting_for)
                      Index("ix_contact_change_from", "from_account_id", "status"),
                      Index("ix_contact_change_to", "to_account_id", "status"))
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


class ConsoleSession(SQLModel, table=True):
    """A signed-in browser of the web console (core/console): the cookie carries a random token,
    only its SHA-256 is kept. It acts with the scopes of the API key it signed in with, and ends at
    sign-out, at ``expires_at``, or when that key is revoked. ``csrf`` is the token every form of
    the session must send back."""

    __tablename__ = "console_session"
    id: Optional[int] = pk()
    token_hash: str = Field(max_length=64, unique=True)
    account_id: int = fk("account.id")
    api_key_id: Optional[int] = fk("api_key.id", nullable=True, index=False)
    scopes: str = Field(max_length=200)
    csrf: str = Field(max_length=64)
    created_at: dt.datetime = ts()
    expires_at: dt.datetime = ts()
    ended_at: Optional[dt.datetime] = ts(nullable=True)


class ConsoleLink(SQLModel, table=True):
    """A one-time sign-in link sent by mail (core/console/session.py): only the SHA-256 of its token
    is kept; it opens one session, once, before ``expires_at``."""

    __tablename__ = "console_link"
    id: Optional[int] = pk()
    token_hash: str = Field(max_length=64, unique=True)
    account_id: int = fk("account.id")
    created_at: dt.datetime = ts()
    expires_at: dt.datetime = ts()
    used_at: Optional[dt.datetime] = ts(nullable=True)
