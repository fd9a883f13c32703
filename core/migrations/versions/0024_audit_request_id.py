"""audit events carry the id of the API request that wrote them (issue 20: structured logs)

Revision ID: 0024
Revises: 0021
Create Date: 2026-12-07 12:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0024'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_event') as batch:
        batch.add_column(sa.Column('request_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    op.create_index('ix_audit_request', 'audit_event', ['request_id'], unique=False,
                    postgresql_where=sa.text('request_id IS NOT NULL'), sqlite_where=sa.text('request_id IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_audit_request', table_name='audit_event')
    with op.batch_alter_table('audit_event') as batch:
        batch.drop_column('request_id')
