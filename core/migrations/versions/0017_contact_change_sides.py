"""the contact changes waiting for an account's answer, found by side (the console's My services)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 06:00:00
"""

from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_contact_change_from', 'contact_change', ['from_account_id', 'status'], unique=False)
    op.create_index('ix_contact_change_to', 'contact_change', ['to_account_id', 'status'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_contact_change_to', table_name='contact_change')
    op.drop_index('ix_contact_change_from', table_name='contact_change')
