"""contract versions and their acceptances; legacy references and terms deadlines of services; withdrawal of orders

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-22 05:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'contract_version',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('document', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('storefront', sqlmodel.sql.sqltypes.AutoString(length=4), nullable=False),
        sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('effective_on', sa.Date(), nullable=False),
        sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('body', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('requires_acceptance', sa.Boolean(), nullable=False),
        sa.Column('created_at', core.models.UTCDateTime(), nullable=False),
        sa.Column('applied_at', core.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('document', 'storefront', 'language', 'effective_on', name='uq_contract_version'),
    )
    op.create_index('ix_contract_version_content_hash', 'contract_version', ['content_hash'], unique=False)
    op.create_table(
        'contract_acceptance',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('account_id', ID, nullable=False),
        sa.Column('version_id', ID, nullable=False),
        sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('accepted_at', core.models.UTCDateTime(), nullable=False),
        sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column('order_id', ID, nullable=True),
        sa.Column('service_id', ID, nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['account.id']),
        sa.ForeignKeyConstraint(['version_id'], ['contract_version.id']),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id']),
        sa.ForeignKeyConstraint(['service_id'], ['service.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_acceptance_account', 'contract_acceptance', ['account_id', 'version_id'], unique=False)
    # the right of withdrawal (core/ordering/withdrawal.py)
    op.add_column('orders', sa.Column('withdrawal_waived_at', core.models.UTCDateTime(), nullable=True))
    op.add_column('orders', sa.Column('withdrawn_at', core.models.UTCDateTime(), nullable=True))
    # plain ADD COLUMN and an index: no copy of the service table on SQLite
    op.add_column('service', sa.Column('legacy_ref', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    op.add_column('service', sa.Column('terms_due_by', sa.Date(), nullable=True))
    op.create_index('uq_service_legacy_ref', 'service', ['subsidiary', 'legacy_ref'], unique=True)


def downgrade() -> None:
    op.drop_column('orders', 'withdrawn_at')
    op.drop_column('orders', 'withdrawal_waived_at')
    op.drop_index('uq_service_legacy_ref', table_name='service')
    op.drop_column('service', 'terms_due_by')  # SQLite >= 3.35 drops a column in place
    op.drop_column('service', 'legacy_ref')
    op.drop_index('ix_acceptance_account', table_name='contract_acceptance')
    op.drop_table('contract_acceptance')
    op.drop_index('ix_contract_version_content_hash', table_name='contract_version')
    op.drop_table('contract_version')
