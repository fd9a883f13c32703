"""Support tickets and their event log (core/support/tickets.py). The SLA clocks are not stored:
they are derived from the log (core/support/clocks.py); the ticket keeps the earliest deadline of
its running clocks, so that queues sort by urgency and the scheduler finds what is due."""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.models.columns import fk, money, pk, ts


class SupportTicket(SQLModel, table=True):
    __tablename__ = "support_ticket"
    __table_args__ = (
        Index("ix_ticket_service", "service_id", "id"),
        Index("ix_ticket_account", "account_id", "id"),
        Index("ix_ticket_queue", "queue", "due_at", "id"),  # a staff queue, most urgent first
        Index("ix_ticket_status", "queue", "status", "id"),  # a staff queue, one status
        Index("ix_ticket_check", "next_check_at"),  # the SLA job: what is due now
    )
    id: Optional[int] = pk()
    service_id: int = fk("service.id", index=False)
    account_id: int = fk("account.id", index=False)  # the customer: the service's admin contact when opened
    opened_by: Optional[int] = fk("account.id", nullable=True, index=False)  # None: a system job
    universe: str = Field(max_length=32)
    storefront: str = Field(max_length=4)  # whose business calendar the clocks count
    level_code: str = Field(max_length=64)  # the support level in force when it was opened ("abuse": the desk's SLA)
    level_service_id: Optional[int] = fk("service.id", nullable=True, index=False)  # the paid subscription, if any
    queue: str = Field(max_length=16)  # support | abuse
    category: str = Field(max_length=16)  # technical | billing | abuse
    subject: str = Field(max_length=200)
    priority: str = Field(max_length=8)  # low | normal | high | urgent
    status: str = Field(max_length=24)  # new | open | waiting_for_customer | waiting_for_third_party | solved | closed
    due_at: Optional[dt.datetime] = ts(nullable=True)  # the earliest deadline of its running clocks
    next_check_at: Optional[dt.datetime] = ts(nullable=True)  # when the SLA job looks again (a warning, a breach)
    alert_level: int = 0  # 0 none, 1 warned, 2 to 4: escalated (the breach is level 2)
    first_response_at: Optional[dt.datetime] = ts(nullable=True)
    solved_at: Optional[dt.datetime] = ts(nullable=True)
    decision: Optional[str] = Field(default=None, max_length=16)  # an abuse case: lifted | upheld
    created_at: dt.datetime = ts()
    updated_at: dt.datetime = ts()


class TicketEvent(SQLModel, table=True):
    """One step of a ticket: its opening, a message (the customer's, an agent's public reply, an
    internal note), a change of status or priority. Append-only: the clocks are replayed from it."""

    __tablename__ = "support_ticket_event"
    __table_args__ = (Index("ix_ticket_event", "ticket_id", "id"),)
    id: Optional[int] = pk()
    ticket_id: int = fk("support_ticket.id", index=False)
    at: dt.datetime = ts()
    kind: str = Field(max_length=16)  # opened | customer_reply | agent_reply | note | status | priority
    value: Optional[str] = Field(default=None, max_length=32)  # the new status or priority
    author_id: Optional[int] = fk("account.id", nullable=True, index=False)
    author_role: Optional[str] = Field(default=None, max_length=40)  # its roles then: admin+tech, support_agent, system
    body: Optional[str] = None


class SlaBreach(SQLModel, table=True):
    """A target of a ticket that ran out, once per ticket and target (the unique key), with the
    service credit it gave: a credit note on the level's latest invoice."""

    __tablename__ = "support_breach"
    __table_args__ = (UniqueConstraint("ticket_id", "target", name="uq_breach_ticket_target"),)
    id: Optional[int] = pk()
    ticket_id: int = fk("support_ticket.id", index=False)
    target: str = Field(max_length=16)
    breached_at: dt.datetime = ts()
    recorded_at: dt.datetime = ts()
    credit_note_id: Optional[int] = fk("invoice.id", nullable=True, index=False)
    credit_minor: int = money()
