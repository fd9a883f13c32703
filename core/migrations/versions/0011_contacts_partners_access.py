"""contacts, partners and access: staff roles, scoped expiring keys, abuse holds, contact changes,
technical actions through the outbox

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22 01:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    # Plain column operations (no batch): on SQLite a batch would rebuild tables.
    op.add_column('account', sa.Column('staff_role', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
    op.add_column('account', sa.Column('closed_at', core.models.UTCDateTime(), nullable=True))
    # every staff account made before roles existed is an administrator
    op.execute("UPDATE account SET staff_role = 'administrator' WHERE is_staff")
    op.add_column('api_key', sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default=''))
    op.add_column('api_key', sa.Column('scopes', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False, server_default='*'))
    op.add_column('api_key', sa.Column('expires_at', core.models.UTCDateTime(), nullable=True))
    op.add_column('outbox', sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
    op.add_column('audit_event', sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
    op.add_column('service', sa.Column('abuse_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
    op.add_column('service', sa.Column('abuse_since', core.models.UTCDateTime(), nullable=True))
    op.create_table(
        'partner',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('account_id', ID, nullable=False),
        sa.Column('universe', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('joined_at', core.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['account.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account_id', 'universe', name='uq_partner_universe'),
    )
    op.create_table(
        'contact_change',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('service_id', ID, nullable=False),
        sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column('from_account_id', ID, nullable=False),
        sa.Column('to_account_id', ID, nullable=False),
        sa.Column('requested_by', ID, nullable=False),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('from_token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('to_token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('from_accepted_at', core.models.UTCDateTime(), nullable=True),
        sa.Column('to_accepted_at', core.models.UTCDateTime(), nullable=True),
        sa.Column('expires_at', core.models.UTCDateTime(), nullable=False),
        sa.Column('created_at', core.models.UTCDateTime(), nullable=False),
        sa.Column('decided_at', core.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['service_id'], ['service.id']),
        sa.ForeignKeyConstraint(['from_account_id'], ['account.id']),
        sa.ForeignKeyConstraint(['to_account_id'], ['account.id']),
        sa.ForeignKeyConstraint(['requested_by'], ['account.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('from_token_hash'),
        sa.UniqueConstraint('to_token_hash'),
    )
    op.create_index('ix_contact_change_service', 'contact_change', ['service_id', 'status'], unique=False)
    op.create_index('ix_contact_change_due', 'contact_change', ['status', 'expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_contact_change_due', table_name='contact_change')
    op.drop_index('ix_contact_change_service', table_name='contact_change')
    op.drop_table('contact_change')
    op.drop_table('partner')
    op.drop_column('service', 'abuse_since')
    op.drop_column('service', 'abuse_reason')
    op.drop_column('audit_event', 'role')
    op.drop_column('outbox', 'detail')
    for column in ('expires_at', 'scopes', 'name'):
        op.drop_column('api_key', column)
    op.drop_column('account', 'closed_at')
    op.drop_column('account', 'staff_role')
