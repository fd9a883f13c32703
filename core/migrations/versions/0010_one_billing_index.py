"""one billing index on service

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-21 23:50:00

The renewal reads a chunk's services by billing account, and ``ix_service_billing``
(billing_account_id, id) serves that as well as the service lists. The index on
(billing_account_id, billed_until) only cost a new entry at every renewal, since the renewal
moves ``billed_until``.
"""

from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_service_billing_due', table_name='service')


def downgrade() -> None:
    op.create_index('ix_service_billing_due', 'service', ['billing_account_id', 'billed_until'], unique=False)
