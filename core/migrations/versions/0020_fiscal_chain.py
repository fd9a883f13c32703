"""the fiscal chain: one record per document issued by a storefront whose country chains them
(Portugal, Spain), each hashed with the previous one; the database refuses to change or delete one

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 12:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
MESSAGE = "fiscal_record_immutable: a fiscal record cannot be changed or deleted; issue a credit note"


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        'fiscal_record',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('subsidiary', text(length=4), nullable=False),
        sa.Column('chain', text(length=24), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('scheme', text(length=4), nullable=False),
        sa.Column('kind', text(length=12), nullable=False),
        sa.Column('invoice_id', ID, nullable=False),
        sa.Column('issuer_id', text(length=32), nullable=False),
        sa.Column('doc_type', text(length=4), nullable=False),
        sa.Column('number', text(length=64), nullable=False),
        sa.Column('issued_on', sa.Date(), nullable=False),
        sa.Column('tax_minor', sa.BigInteger(), nullable=False),
        sa.Column('total_minor', sa.BigInteger(), nullable=False),
        sa.Column('generated_at', core.models.UTCDateTime(), nullable=False),
        sa.Column('prev_hash', text(length=512), nullable=False),
        sa.Column('hash', text(length=512), nullable=False),
        sa.ForeignKeyConstraint(['invoice_id'], ['invoice.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('subsidiary', 'chain', 'position', name='uq_fiscal_record_position'),
        sa.UniqueConstraint('invoice_id', 'kind', name='uq_fiscal_record_invoice'),
    )
    op.create_index(op.f('ix_fiscal_record_invoice_id'), 'fiscal_record', ['invoice_id'], unique=False)
    op.create_table(
        'fiscal_submission',
        sa.Column('record_id', ID, nullable=False),
        sa.Column('status', text(length=12), nullable=False),
        sa.Column('reference', text(length=64), nullable=True),
        sa.Column('detail', text(length=500), nullable=True),
        sa.Column('submitted_at', core.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['record_id'], ['fiscal_record.id']),
        sa.PrimaryKeyConstraint('record_id'),
    )
    # Append-only, as issued invoices are (0005): no UPDATE, no DELETE, whoever asks.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
        CREATE FUNCTION univers_fiscal_record_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
        END $$""")
        op.execute("CREATE TRIGGER fiscal_record_frozen BEFORE UPDATE OR DELETE ON fiscal_record FOR EACH ROW "
                   "EXECUTE FUNCTION univers_fiscal_record_frozen()")
        return
    for event in ("UPDATE", "DELETE"):
        op.execute(f"CREATE TRIGGER fiscal_record_frozen_{event.lower()} BEFORE {event} ON fiscal_record "
                   f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER fiscal_record_frozen ON fiscal_record")
        op.execute("DROP FUNCTION univers_fiscal_record_frozen()")
    else:
        for event in ("update", "delete"):
            op.execute(f"DROP TRIGGER fiscal_record_frozen_{event}")
    op.drop_table('fiscal_submission')
    op.drop_index(op.f('ix_fiscal_record_invoice_id'), table_name='fiscal_record')
    op.drop_table('fiscal_record')
