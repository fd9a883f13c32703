"""the buyer's national e-invoice data frozen with each issued invoice

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 16:00:00

An account's e-invoice data (Italy's codice destinatario, PEC, codice fiscale, address) may now
be corrected after sign-up (``PUT /v1/me/einvoice``); an issued invoice keeps what it was issued
with, as it keeps the buyer's name and VAT number. The invoices issued before are given their
account's current data, then the immutability triggers of 0005 freeze the column with the others.
"""

import sqlalchemy as sa
from alembic import op

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

MESSAGE = "invoice_immutable: an issued invoice cannot be changed or deleted; issue a credit note"
FROZEN = ["account_id", "order_id", "subsidiary", "currency", "kind", "series", "fiscal_year", "seq", "issued_on", "due_on",
          "net_minor", "tax_minor", "total_minor", "buyer_name", "buyer_country", "buyer_region", "buyer_vat_number"]


def _freeze(columns: list[str]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in columns)
        op.execute(f"""
        CREATE OR REPLACE FUNCTION univers_invoice_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' OR {changed} THEN
                RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END $$""")
        return
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in columns)
    op.execute("DROP TRIGGER invoice_frozen")
    op.execute(f"CREATE TRIGGER invoice_frozen BEFORE UPDATE ON invoice WHEN OLD.seq IS NOT NULL AND ({changed}) "
               f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")


def upgrade() -> None:
    # Plain operations (no batch): on SQLite a batch would rebuild the table and lose its triggers.
    op.add_column('invoice', sa.Column('buyer_einvoice', sa.JSON(), nullable=True))
    op.execute("UPDATE invoice SET buyer_einvoice = (SELECT einvoice FROM account WHERE account.id = invoice.account_id) "
               "WHERE seq IS NOT NULL")
    # json has no equality operator on PostgreSQL: compare its text
    _freeze(FROZEN + (["buyer_einvoice::text"] if op.get_bind().dialect.name == "postgresql" else ["buyer_einvoice"]))


def downgrade() -> None:
    _freeze(FROZEN)
    op.drop_column('invoice', 'buyer_einvoice')
