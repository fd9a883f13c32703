"""lighter indexes for renewal

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 21:43:35.583811
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain index operations (no batch): on SQLite a batch would rebuild the tables and lose the
    # immutability triggers of 0005.
    op.drop_index('ix_invoice_line_credited_line_id', table_name='invoice_line')
    op.create_index('ix_invoice_line_credited', 'invoice_line', ['credited_line_id'], unique=False,
                    postgresql_where=sa.text('credited_line_id IS NOT NULL'), sqlite_where=sa.text('credited_line_id IS NOT NULL'))
    op.drop_index('ix_service_renewal', table_name='service')


def downgrade() -> None:
    op.create_index('ix_service_renewal', 'service', ['renewal_mode', 'state', 'billed_until'], unique=False)
    op.drop_index('ix_invoice_line_credited', table_name='invoice_line')
    op.create_index('ix_invoice_line_credited_line_id', 'invoice_line', ['credited_line_id'], unique=False)
