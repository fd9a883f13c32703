"""the web console's sessions and sign-in links, and an index to find a customer by e-mail

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 20:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'console_session',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('account_id', ID, nullable=False),
        sa.Column('api_key_id', ID, nullable=True),
        sa.Column('scopes', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('csrf', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('created_at', core.models.UTCDateTime(), nullable=False),
        sa.Column('expires_at', core.models.UTCDateTime(), nullable=False),
        sa.Column('ended_at', core.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['account.id']),
        sa.ForeignKeyConstraint(['api_key_id'], ['api_key.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
    )
    op.create_index(op.f('ix_console_session_account_id'), 'console_session', ['account_id'], unique=False)
    op.create_index(op.f('ix_account_email'), 'account', ['email'], unique=False)
    op.create_table(
        'console_link',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('account_id', ID, nullable=False),
        sa.Column('created_at', core.models.UTCDateTime(), nullable=False),
        sa.Column('expires_at', core.models.UTCDateTime(), nullable=False),
        sa.Column('used_at', core.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['account.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
    )
    op.create_index(op.f('ix_console_link_account_id'), 'console_link', ['account_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_console_link_account_id'), table_name='console_link')
    op.drop_table('console_link')
    op.drop_index(op.f('ix_account_email'), table_name='account')
    op.drop_index(op.f('ix_console_session_account_id'), table_name='console_session')
    op.drop_table('console_session')
