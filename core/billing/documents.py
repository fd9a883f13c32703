"""An issued invoice or credit note as a document: PDF (Factur-X where EN 16931 applies), CII
XML or UBL XML, always in the language of the customer it was issued to."""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from core.billing import chain, einvoice, invoicing, pdf
from core.billing.views import invoice_read
from core.errors import InvalidInput
from core.i18n import N_
from core.models import Account, Invoice, NationalReceipt
from core.runtime import Runtime

FORMATS = {"pdf": "application/pdf", "cii": "application/xml", "ubl": "application/xml", "national": "application/xml"}


def _credited(conn: Connection, row: dict) -> dict:
    """The invoice a credit note credits, as a national format refers to it."""
    if not row.get("credited_invoice_id"):
        return {}
    inv, ksef = Invoice.__table__, NationalReceipt.__table__
    found = conn.execute(select(inv.c.series, inv.c.fiscal_year, inv.c.seq, inv.c.issued_on, ksef.c.reference)
                         .outerjoin(ksef, ksef.c.invoice_id == inv.c.id)
                         .where(inv.c.id == row["credited_invoice_id"])).mappings().one()
    return {"number": invoicing.number(found["series"], found["fiscal_year"], found["seq"]),
            "issued_on": found["issued_on"].isoformat(), "ksef_number": found["reference"]}


def _national(conn: Connection, rt: Runtime, row: dict, view, locale: str):
    """(context, document or None): the storefront's national e-invoice as a plugin renders it."""
    import msgspec

    from core.context import EInvoiceContext

    acct = Account.__table__
    kind, current = conn.execute(select(acct.c.kind, acct.c.einvoice).where(acct.c.id == row["account_id"])).one()
    einvoice_fields = row.get("buyer_einvoice") if row.get("seq") is not None else current  # issued: as it was issued
    ctx = EInvoiceContext(row["subsidiary"], msgspec.to_builtins(view), locale, fiscal=chain.context(conn, rt, row),
                          buyer={"kind": kind, **(einvoice_fields or {})},
                          seller=dict(rt.storefronts[row["subsidiary"]].legal_entity), credited=_credited(conn, row))
    return ctx, rt.pm.hook.univers_render_national_einvoice(ctx=ctx)


def _receipt(conn: Connection, invoice_id: int) -> dict | None:
    rec = NationalReceipt.__table__
    found = conn.execute(select(rec).where(rec.c.invoice_id == invoice_id)).mappings().first()
    return dict(found) if found else None


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
        _ctx, found = _national(conn, rt, row, view, locale)
        if found is None:
            raise InvalidInput(N_("No plugin renders the national e-invoice format of the {storefront} storefront yet."),
                               code="no_national_format", storefront=row["subsidiary"])
        return found.content, found.media_type, found.filename
    if fmt == "pdf":
        page = pdf.render(view, locale, _fiscal_qr(conn, rt, row, taxes) or _verification(conn, rt, row, view, locale))
        return (pdf.factur_x(page, einvoice.cii(rt, doc), view, locale) if doc else page), FORMATS[fmt], f"{name}.pdf"
    if doc is None:
        raise InvalidInput(N_("This storefront issues no EN 16931 e-invoice; ask for the PDF."), code="no_einvoice")
    xml = einvoice.cii(rt, doc) if fmt == "cii" else einvoice.ubl(rt, doc)
    return xml, FORMATS[fmt], f"{name}-{fmt}.xml"


def _fiscal_qr(conn: Connection, rt: Runtime, row: dict, taxes: list[dict]) -> pdf.QrCode | None:
    """The QR code of a fiscal chain's record (Portugal, Spain), 30 mm wide, its caption above."""
    found = chain.qr(conn, rt, row, taxes)
    return pdf.QrCode(found[1], caption=found[0], side=30) if found else None


def _verification(conn: Connection, rt: Runtime, row: dict, view, locale: str) -> pdf.QrCode | None:
    """The QR code a national format wants on the PDF (Poland's KSeF "KOD I"), with its label:
    the platform's number once it accepted the invoice, ``OFFLINE`` before."""
    if row["subsidiary"] not in einvoice.NATIONAL_FORMATS:
        return None
    try:
        _ctx, found = _national(conn, rt, row, view, locale)
    except InvalidInput:  # the buyer's e-invoice data is incomplete: the PDF is still due
        return None
    if found is None or not found.verification_url:
        return None
    receipt = _receipt(conn, row["id"])
    return pdf.QrCode(found.verification_url, label=receipt["reference"] if receipt else "OFFLINE")


def transmit(conn: Connection, rt: Runtime, invoice_id: int) -> dict:
    """Send an issued invoice's national e-invoice to its platform (SdI, KSeF) through the
    storefront's transport plugin, once: the platform's answer is kept (``national_receipt``) and
    returned again on every later call without sending anything."""
    import hashlib

    kept = _receipt(conn, invoice_id)
    if kept:
        return kept
    row, lines, taxes, payments = invoicing.load_invoice(conn, None, invoice_id)
    if row["seq"] is None:
        raise InvalidInput(N_("A draft has no document yet."), code="no_document")
    acct = Account.__table__
    locale = conn.execute(select(acct.c.language).where(acct.c.id == row["account_id"])).scalar_one()
    ctx, document = _national(conn, rt, row, invoice_read(rt, row, lines, taxes, payments, locale), locale)
    if document is None:
        raise InvalidInput(N_("No plugin renders the national e-invoice format of the {storefront} storefront yet."),
                           code="no_national_format", storefront=row["subsidiary"])
    answer = rt.pm.hook.univers_transmit_national_einvoice(ctx=ctx, document=document)
    if answer is None:
        raise InvalidInput(N_("No plugin transmits the national e-invoices of the {storefront} storefront."),
                           code="no_national_transport", storefront=row["subsidiary"])
    values = {"invoice_id": invoice_id, "reference": answer.reference, "receipt": answer.receipt,
              "sha256": hashlib.sha256(document.content).hexdigest(), "accepted_at": rt.clock.now()}
    conn.execute(insert(NationalReceipt.__table__).values(**values))
    return _receipt(conn, invoice_id)
