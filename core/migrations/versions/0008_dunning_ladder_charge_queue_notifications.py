"""dunning ladder: charge queue, notifications, data deletion

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21 10:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain column and index operations (no batch): on SQLite a batch would rebuild tables.
    op.add_column('service', sa.Column('deleted_on', sa.Date(), nullable=True))
    op.add_column('payment', sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True))
    op.add_column('payment', sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('payment', sa.Column('next_attempt_at', core.models.UTCDateTime(), nullable=True))
    op.add_column('payment', sa.Column('locked_until', core.models.UTCDateTime(), nullable=True))
    op.create_index('uq_payment_idempotency_key', 'payment', ['idempotency_key'], unique=True)
    op.create_index('ix_payment_queued', 'payment', ['next_attempt_at'], unique=False,
                    postgresql_where=sa.text("status = 'queued'"), sqlite_where=sa.text("status = 'queued'"))
    op.create_table(
        'notification',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('service_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('invoice_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', core.models.UTCDateTime(), nullable=False),
        sa.Column('locked_until', core.models.UTCDateTime(), nullable=True),
        sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column('recipient', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
        sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column('body', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column('created_at', core.models.UTCDateTime(), nullable=False),
        sa.Column('sent_at', core.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['account.id']),
        sa.ForeignKeyConstraint(['invoice_id'], ['invoice.id']),
        sa.ForeignKeyConstraint(['service_id'], ['service.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key'),
    )
    op.create_index('ix_notification_due', 'notification', ['status', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_notification_due', table_name='notification')
    op.drop_table('notification')
    op.drop_index('ix_payment_queued', table_name='payment')
    op.drop_index('uq_payment_idempotency_key', table_name='payment')
    for column in ('locked_until', 'next_attempt_at', 'attempts', 'idempotency_key'):
        op.drop_column('payment', column)
    op.drop_column('service', 'deleted_on')
