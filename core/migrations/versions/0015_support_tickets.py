"""support tickets, their event log and their SLA breaches

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 15:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'support_ticket',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('service_id', ID, nullable=False),
        sa.Column('account_id', ID, nullable=False),
        sa.Column('opened_by', ID, nullable=True),
        sa.Column('universe', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('storefront', sqlmodel.sql.sqltypes.AutoString(length=4), nullable=False),
        sa.Column('level_code', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('level_service_id', ID, nullable=True),
        sa.Column('queue', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('priority', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column('due_at', core.models.UTCDateTime(), nullable=True),
        sa.Column('next_check_at', core.models.UTCDateTime(), nullable=True),
        sa.Column('alert_level', sa.Integer(), nullable=False),
        sa.Column('first_response_at', core.models.UTCDateTime(), nullable=True),
        sa.Column('solved_at', core.models.UTCDateTime(), nullable=True),
        sa.Column('decision', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column('created_at', core.models.UTCDateTime(), nullable=False),
        sa.Column('updated_at', core.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['service_id'], ['service.id']),
        sa.ForeignKeyConstraint(['account_id'], ['account.id']),
        sa.ForeignKeyConstraint(['opened_by'], ['account.id']),
        sa.ForeignKeyConstraint(['level_service_id'], ['service.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_ticket_service', 'support_ticket', ['service_id', 'id'], unique=False)
    op.create_index('ix_ticket_account', 'support_ticket', ['account_id', 'id'], unique=False)
    op.create_index('ix_ticket_queue', 'support_ticket', ['queue', 'due_at', 'id'], unique=False)
    op.create_index('ix_ticket_status', 'support_ticket', ['queue', 'status', 'id'], unique=False)
    op.create_index('ix_ticket_check', 'support_ticket', ['next_check_at'], unique=False)
    op.create_table(
        'support_ticket_event',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('ticket_id', ID, nullable=False),
        sa.Column('at', core.models.UTCDateTime(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column('author_id', ID, nullable=True),
        sa.Column('author_role', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column('body', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.ForeignKeyConstraint(['ticket_id'], ['support_ticket.id']),
        sa.ForeignKeyConstraint(['author_id'], ['account.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_ticket_event', 'support_ticket_event', ['ticket_id', 'id'], unique=False)
    op.create_table(
        'support_breach',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('ticket_id', ID, nullable=False),
        sa.Column('target', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('breached_at', core.models.UTCDateTime(), nullable=False),
        sa.Column('recorded_at', core.models.UTCDateTime(), nullable=False),
        sa.Column('credit_note_id', ID, nullable=True),
        sa.Column('credit_minor', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['ticket_id'], ['support_ticket.id']),
        sa.ForeignKeyConstraint(['credit_note_id'], ['invoice.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('ticket_id', 'target', name='uq_breach_ticket_target'),
    )


def downgrade() -> None:
    op.drop_table('support_breach')
    op.drop_index('ix_ticket_event', table_name='support_ticket_event')
    op.drop_table('support_ticket_event')
    op.drop_index('ix_ticket_check', table_name='support_ticket')
    op.drop_index('ix_ticket_status', table_name='support_ticket')
    op.drop_index('ix_ticket_queue', table_name='support_ticket')
    op.drop_index('ix_ticket_account', table_name='support_ticket')
    op.drop_index('ix_ticket_service', table_name='support_ticket')
    op.drop_table('support_ticket')
