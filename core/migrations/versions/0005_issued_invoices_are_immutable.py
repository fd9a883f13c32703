"""issued invoices are immutable

The database itself refuses any change to an issued invoice (its number, dates, buyer and
amounts), to its lines and to its tax breakdown, and refuses to delete it. Only its payment
status may move (issued → paid, or credited). Corrections go through credit notes.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

MESSAGE = "invoice_immutable: an issued invoice cannot be changed or deleted; issue a credit note"
FROZEN = ["account_id", "order_id", "subsidiary", "currency", "kind", "series", "fiscal_year", "seq", "issued_on", "due_on",
          "net_minor", "tax_minor", "total_minor", "buyer_name", "buyer_country", "buyer_region", "buyer_vat_number"]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in FROZEN)
        op.execute(f"""
        CREATE FUNCTION univers_invoice_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' OR {changed} THEN
                RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END $$""")
        op.execute("CREATE TRIGGER invoice_frozen BEFORE UPDATE OR DELETE ON invoice FOR EACH ROW "
                   "WHEN (OLD.seq IS NOT NULL) EXECUTE FUNCTION univers_invoice_frozen()")
        # Lines and breakdown rows: one set-based check per statement (transition tables), so that
        # renewal runs inserting 100,000 lines into drafts pay one query, not one per row.
        op.execute(f"""
        CREATE FUNCTION univers_invoice_part_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM changed_rows r JOIN invoice i ON i.id = r.invoice_id WHERE i.seq IS NOT NULL) THEN
                RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NULL;
        END $$""")
        for table in ("invoice_line", "invoice_tax"):
            for event, ref in (("INSERT", "NEW"), ("UPDATE", "OLD"), ("DELETE", "OLD")):
                op.execute(f"CREATE TRIGGER {table}_frozen_{event.lower()} AFTER {event} ON {table} "
                           f"REFERENCING {ref} TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION univers_invoice_part_frozen()")
        return
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in FROZEN)
    op.execute(f"CREATE TRIGGER invoice_frozen BEFORE UPDATE ON invoice WHEN OLD.seq IS NOT NULL AND ({changed}) "
               f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")
    op.execute(f"CREATE TRIGGER invoice_undeletable BEFORE DELETE ON invoice WHEN OLD.seq IS NOT NULL "
               f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")
    for table in ("invoice_line", "invoice_tax"):
        for event, ref in (("INSERT", "NEW"), ("UPDATE", "OLD"), ("DELETE", "OLD")):
            op.execute(f"CREATE TRIGGER {table}_frozen_{event.lower()} BEFORE {event} ON {table} "
                       f"WHEN (SELECT seq FROM invoice WHERE id = {ref}.invoice_id) IS NOT NULL "
                       f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")


def downgrade() -> None:
    names = ["invoice_frozen"] + [f"{t}_frozen_{e}" for t in ("invoice_line", "invoice_tax") for e in ("insert", "update", "delete")]
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER invoice_frozen ON invoice")
        for name in names[1:]:
            op.execute(f"DROP TRIGGER {name} ON {name.rsplit('_frozen_', 1)[0]}")
        op.execute("DROP FUNCTION univers_invoice_frozen()")
        op.execute("DROP FUNCTION univers_invoice_part_frozen()")
        return
    for name in names + ["invoice_undeletable"]:
        op.execute(f"DROP TRIGGER {name}")
