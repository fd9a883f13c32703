"""the work board: incidents and known bugs per universe and product, their updates, subscriptions

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 12:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'status_incident',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('universe', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('products', sa.JSON(), nullable=False),
        sa.Column('storefronts', sa.JSON(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('titles', sa.JSON(), nullable=False),
        sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('created_by', ID, nullable=True),
        sa.Column('created_at', core.models.UTCDateTime(), nullable=False),
        sa.Column('updated_at', core.models.UTCDateTime(), nullable=False),
        sa.Column('resolved_at', core.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['created_by'], ['account.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('idempotency_key'),
    )
    op.create_index('ix_status_incident_universe', 'status_incident', ['universe', 'resolved_at'], unique=False)
    op.create_index('ix_status_incident_resolved', 'status_incident', ['resolved_at', 'updated_at'], unique=False)
    op.create_table(
        'status_update',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('incident_id', ID, nullable=False),
        sa.Column('at', core.models.UTCDateTime(), nullable=False),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('texts', sa.JSON(), nullable=False),
        sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('author_id', ID, nullable=True),
        sa.ForeignKeyConstraint(['incident_id'], ['status_incident.id']),
        sa.ForeignKeyConstraint(['author_id'], ['account.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('incident_id', 'idempotency_key', name='uq_status_update_key'),
    )
    op.create_index('ix_status_update_incident', 'status_update', ['incident_id', 'id'], unique=False)
    op.create_table(
        'status_subscription',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('account_id', ID, nullable=False),
        sa.Column('universe', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('created_at', core.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['account.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account_id', 'universe', name='uq_status_subscription'),
    )
    op.create_index('ix_status_subscription_universe', 'status_subscription', ['universe', 'account_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_status_subscription_universe', table_name='status_subscription')
    op.drop_table('status_subscription')
    op.drop_index('ix_status_update_incident', table_name='status_update')
    op.drop_table('status_update')
    op.drop_index('ix_status_incident_resolved', table_name='status_incident')
    op.drop_index('ix_status_incident_universe', table_name='status_incident')
    op.drop_table('status_incident')
