"""An issued invoice or credit note as a document: PDF (Factur-X where EN 16931 applies), CII
XML or UBL XML, always in the language of the customer it was issued to."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from core.billing import chain, einvoice, invoicing, pdf
from core.billing.views import invoice_read
from core.errors import InvalidInput
from core.i18n import N_
from core.models import Account
from core.runtime import Runtime

FORMATS = {"pdf": "application/pdf", "cii": "application/xml", "ubl": "application/xml", "national": "application/xml"}


def render(conn: Connection, rt: Runtime, account_id: int | None, invoice_id: int, fmt: str) -> tuple[bytes, str, str]:
    """(content, media type, file name); ``account_id`` None means staff."""
    row, lines, taxes, payments = invoicing.load_invoice(conn, account_id, invoice_id)
    if row["seq"] is None:
        raise InvalidInput(N_("A draft has no document yet."), code="no_document")
    acct = Account.__table__
    locale = conn.execute(select(acct.c.language).where(acct.c.id == row["account_id"])).scalar_one()
    view = invoice_read(rt, row, lines, taxes, payments, locale)
    name = view.number
    try:
        doc = einvoice.document(rt, row, lines, taxes, locale)
    except einvoice.NotAvailable:
        doc = None
    if fmt == "national":
        import msgspec

        from core.context import EInvoiceContext

        found = rt.pm.hook.univers_render_national_einvoice(
            ctx=EInvoiceContext(row["subsidiary"], msgspec.to_builtins(view), locale, chain.context(conn, rt, row)))
        if found is None:
            raise InvalidInput(N_("No plugin renders the national e-invoice format of the {storefront} storefront yet."),
                               code="no_national_format", storefront=row["subsidiary"])
        return found.content, found.media_type, found.filename
    if fmt == "pdf":
        page = pdf.render(view, locale, chain.qr(conn, rt, row, taxes))
        return (pdf.factur_x(page, einvoice.cii(rt, doc), view, locale) if doc else page), FORMATS[fmt], f"{name}.pdf"
    if doc is None:
        raise InvalidInput(N_("This storefront issues no EN 16931 e-invoice; ask for the PDF."), code="no_einvoice")
    xml = einvoice.cii(rt, doc) if fmt == "cii" else einvoice.ubl(rt, doc)
    return xml, FORMATS[fmt], f"{name}-{fmt}.xml"
