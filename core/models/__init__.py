"""Database tables (SQLModel). API schemas live beside their routes in :mod:`core.api`; table objects never
leak into responses.

Money is integer minor units (``*_minor``), tax rates are parts per million (``*_ppm``), unit
prices for metered products are micro-units (``*_micro``). Timestamps are UTC; SQLite drops
the zone, so :class:`UTCDateTime` puts it back on read. Billing periods are dates.

Every table module is imported here, so that ``SQLModel.metadata`` is complete before Alembic runs
(``TABLES`` lists them; ``tests/test_migrations.py`` checks the migrations against it).
"""

from core.models.accounts import (
    Account,
    ApiKey,
    ConsoleLink,
    ConsoleSession,
    ContactChange,
    Partner,
)
from core.models.billing import (
    BalanceEntry,
    CatalogPrice,
    FiscalRecord,
    FiscalSubmission,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    InvoiceTax,
    NationalReceipt,
    Payment,
    TaxRateRow,
)
from core.models.columns import ID, UTCDateTime
from core.models.contracts import ContractAcceptance, ContractVersion
from core.models.infralogs import InfraLogEntry
from core.models.services import (
    AuditEvent,
    Notification,
    Order,
    OrderLine,
    OutboxItem,
    RenewalRun,
    Service,
)
from core.models.status import Incident, IncidentUpdate, StatusSubscription
from core.models.support import SlaBreach, SupportTicket, TicketEvent
from core.models.usage import Commitment, SpendingAlert, UsagePeriod, UsageRecord

TABLES = [
    Account, ApiKey, Order, OrderLine, Service, Invoice, InvoiceLine, InvoiceTax, InvoiceCounter,
    Payment, BalanceEntry, OutboxItem, Notification, AuditEvent, RenewalRun, Partner, ContactChange,
    UsageRecord, UsagePeriod, SpendingAlert, Commitment, ContractVersion, ContractAcceptance, SupportTicket,
    TicketEvent, SlaBreach, ConsoleSession, ConsoleLink, FiscalRecord, FiscalSubmission, Incident, IncidentUpdate,
    StatusSubscription, InfraLogEntry, NationalReceipt,
]

__all__ = ["ID", "UTCDateTime", "TABLES", "Account", "ApiKey", "Order", "OrderLine", "Service", "Invoice",
    "InvoiceLine", "InvoiceTax", "InvoiceCounter", "Payment", "BalanceEntry", "OutboxItem", "Notification",
    "AuditEvent", "RenewalRun", "Partner", "ContactChange", "UsageRecord", "UsagePeriod", "SpendingAlert",
    "Commitment", "ContractVersion", "ContractAcceptance", "CatalogPrice", "TaxRateRow", "SupportTicket",
    "TicketEvent", "SlaBreach", "ConsoleSession", "ConsoleLink", "FiscalRecord", "FiscalSubmission", "Incident",
    "IncidentUpdate", "StatusSubscription", "InfraLogEntry", "NationalReceipt"]
