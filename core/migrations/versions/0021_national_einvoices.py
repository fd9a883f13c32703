"""national e-invoices: the buyer's e-invoice data on the account (Italy's codice destinatario,
PEC, codice fiscale, address) and the receipts of the national platforms (KSeF number, SdI id)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 12:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.add_column('account', sa.Column('einvoice', sa.JSON(), nullable=True))
    op.create_table(
        'national_receipt',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('invoice_id', ID, nullable=False),
        sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('receipt', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('accepted_at', core.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['invoice_id'], ['invoice.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('invoice_id'),
        sa.UniqueConstraint('reference'),
    )


def downgrade() -> None:
    op.drop_table('national_receipt')
    op.drop_column('account', 'einvoice')
