"""Invoices and credit notes, their numbering, documents (PDF, e-invoices) and accounting exports."""
