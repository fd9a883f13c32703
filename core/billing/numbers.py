"""How an invoice number is written, for the modules that number (invoicing) and those that record
numbers (the fiscal chain)."""

from __future__ import annotations


def number(series: str, fiscal_year: int | None, seq: int | None) -> str | None:
    """``FR-2026-000042``; drafts have none."""
    return None if seq is None else f"{series}-{fiscal_year}-{seq:06d}"
