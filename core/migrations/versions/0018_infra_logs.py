"""infrastructure logs per service (core/infralogs): entries unique per (service, entry id), paged newest first

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 12:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'infra_log',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('service_id', ID, nullable=False),  # no FK: see core.models.InfraLogEntry
        sa.Column('entry_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('at', core.models.UTCDateTime(), nullable=False),
        sa.Column('severity', sa.SmallInteger(), nullable=False),
        sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('message', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column('fields', sa.JSON(), nullable=True),
        sa.Column('received_at', core.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('service_id', 'entry_id', name='uq_infra_log_entry'),
    )
    op.create_index('ix_infra_log_page', 'infra_log', ['service_id', 'at', 'id'], unique=False)
    op.create_index('ix_infra_log_tail', 'infra_log', ['service_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_infra_log_tail', table_name='infra_log')
    op.drop_index('ix_infra_log_page', table_name='infra_log')
    op.drop_table('infra_log')
