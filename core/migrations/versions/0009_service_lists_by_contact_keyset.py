"""service lists by contact: keyset indexes

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-21 22:30:00.000000

A customer's service list is the services it owns or is a contact of, by id. Each of the four
columns gets an index ordered by id within the account, so a page reads the next ids of each
(a few dozen index entries) however long the list is: the admin and tech indexes gain the id,
and the billing contact, whose only index was ordered by billing date, gets one.
"""

from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain index operations (no batch): on SQLite a batch would rebuild the tables and lose the
    # immutability triggers of 0005.
    op.drop_index('ix_service_admin_account_id', table_name='service')
    op.drop_index('ix_service_tech_account_id', table_name='service')
    op.create_index('ix_service_admin', 'service', ['admin_account_id', 'id'], unique=False)
    op.create_index('ix_service_tech', 'service', ['tech_account_id', 'id'], unique=False)
    op.create_index('ix_service_billing', 'service', ['billing_account_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_service_billing', table_name='service')
    op.drop_index('ix_service_tech', table_name='service')
    op.drop_index('ix_service_admin', table_name='service')
    op.create_index('ix_service_tech_account_id', 'service', ['tech_account_id'], unique=False)
    op.create_index('ix_service_admin_account_id', 'service', ['admin_account_id'], unique=False)
