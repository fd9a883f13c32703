"""the renewal closer to its limit: one index fewer on every service update, HOT invoice updates

Revision ID: 0025
Revises: 0020
Create Date: 2026-12-07 12:15:00

* ``uq_service_legacy_ref`` only holds the services imported from the legacy system
  (``legacy_ref IS NOT NULL``): the same uniqueness (NULLs never collide), but PostgreSQL no
  longer writes an entry into it for every new row version of every service the renewal updates.
* ``invoice`` keeps 70 % of each page free on PostgreSQL (``fillfactor`` 30): the run updates
  each new invoice three times in its transaction (totals, balance payment, number); the first
  two touch no indexed column, and with room on the page they become HOT updates, which write no
  index entry at all.
"""

import sqlalchemy as sa
from alembic import op

revision = '0025'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain index operations (no batch): on SQLite a batch would rebuild the tables and lose the
    # immutability triggers of 0005.
    op.drop_index('uq_service_legacy_ref', table_name='service')
    op.create_index('uq_service_legacy_ref', 'service', ['subsidiary', 'legacy_ref'], unique=True,
                    postgresql_where=sa.text('legacy_ref IS NOT NULL'), sqlite_where=sa.text('legacy_ref IS NOT NULL'))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE invoice SET (fillfactor = 30)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE invoice RESET (fillfactor)")
    op.drop_index('uq_service_legacy_ref', table_name='service')
    op.create_index('uq_service_legacy_ref', 'service', ['subsidiary', 'legacy_ref'], unique=True)
