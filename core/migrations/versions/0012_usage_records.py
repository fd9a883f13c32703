"""usage records of pay-as-you-go projects, their closed periods, and usage invoice lines

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23 01:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'usage_record',
        sa.Column('service_id', ID, autoincrement=False, nullable=False),
        sa.Column('record_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('metric', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('dimension', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('quantity_micro', sa.BigInteger(), nullable=False),
        sa.Column('at', core.models.UTCDateTime(), nullable=False),
        sa.Column('period', sa.Date(), nullable=False),
        sa.Column('received_at', core.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('service_id', 'record_id'),  # the idempotency key; no FK: see core.models.UsageRecord
    )
    op.create_index('ix_usage_rating', 'usage_record', ['period', 'service_id', 'metric', 'dimension'], unique=False)
    op.create_table(
        'usage_period',
        sa.Column('service_id', ID, nullable=False),
        sa.Column('period', sa.Date(), nullable=False),
        sa.Column('closed_at', core.models.UTCDateTime(), nullable=False),
        sa.Column('invoice_id', ID, nullable=True),
        sa.ForeignKeyConstraint(['service_id'], ['service.id']),
        sa.ForeignKeyConstraint(['invoice_id'], ['invoice.id']),
        sa.PrimaryKeyConstraint('service_id', 'period'),
    )
    # usage lines (core/usage/metering.py): the exact quantity and unit price, in micro-units
    op.add_column('invoice_line', sa.Column('quantity_micro', sa.BigInteger(), nullable=True))
    op.add_column('invoice_line', sa.Column('unit_price_micro', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column('invoice_line', 'unit_price_micro')  # SQLite >= 3.35 drops a column in place (keeps the triggers)
    op.drop_column('invoice_line', 'quantity_micro')
    op.drop_table('usage_period')
    op.drop_index('ix_usage_rating', table_name='usage_record')
    op.drop_table('usage_record')
