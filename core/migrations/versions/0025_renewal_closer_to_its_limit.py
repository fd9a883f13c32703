"""the renewal closer to its limit: one index entry fewer on every service update

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 12:15:00

* ``uq_service_legacy_ref`` only holds the services imported from the legacy system
  (``legacy_ref IS NOT NULL``): the same uniqueness (NULLs never collide), but PostgreSQL no
  longer writes an entry into it for every new row version of every service the renewal updates.
"""

import sqlalchemy as sa
from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain index operations (no batch): on SQLite a batch would rebuild the tables and lose the
    # immutability triggers of 0005.
    op.drop_index('uq_service_legacy_ref', table_name='service')
    op.create_index('uq_service_legacy_ref', 'service', ['subsidiary', 'legacy_ref'], unique=True,
                    postgresql_where=sa.text('legacy_ref IS NOT NULL'), sqlite_where=sa.text('legacy_ref IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('uq_service_legacy_ref', table_name='service')
    op.create_index('uq_service_legacy_ref', 'service', ['subsidiary', 'legacy_ref'], unique=True)
