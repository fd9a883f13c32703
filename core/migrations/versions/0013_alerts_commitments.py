"""spending alerts and savings plans (commitments) of pay-as-you-go projects

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22 04:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'spending_alert',
        sa.Column('service_id', ID, nullable=False),
        sa.Column('threshold_minor', sa.BigInteger(), nullable=False),
        sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column('set_at', core.models.UTCDateTime(), nullable=False),
        sa.Column('set_by', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column('notified_period', sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(['service_id'], ['service.id']),
        sa.PrimaryKeyConstraint('service_id'),
    )
    op.create_table(
        'usage_commitment',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('service_id', ID, nullable=False),
        sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column('monthly_minor', sa.BigInteger(), nullable=False),
        sa.Column('discount_ppm', sa.Integer(), nullable=False),
        sa.Column('months', sa.Integer(), nullable=False),
        sa.Column('starts_on', sa.Date(), nullable=False),
        sa.Column('ends_on', sa.Date(), nullable=False),
        sa.Column('created_at', core.models.UTCDateTime(), nullable=False),
        sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.ForeignKeyConstraint(['service_id'], ['service.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('service_id', 'starts_on', name='uq_commitment_start'),
    )


def downgrade() -> None:
    op.drop_table('usage_commitment')
    op.drop_table('spending_alert')
