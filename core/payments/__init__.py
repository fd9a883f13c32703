"""Payments: settling invoices, the prepaid balance, gateway charges."""
