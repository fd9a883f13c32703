"""Invoices and credit notes as PDF, in the customer's language, with the legal mentions.

fpdf2 draws the page with DejaVu Sans (vendored in ``core/data/fonts``: every storefront's
alphabet, ł and ě included). For the EU storefronts that take EN 16931 e-invoices the PDF becomes
a Factur-X (PDF/A-3 with the CII XML embedded, profile EN 16931) through the ``factur-x``
package, which checks the XML against its XSD before embedding it.
"""

from __future__ import annotations

from pathlib import Path

from babel import Locale
from fpdf import FPDF

from core import labels
from core.billing.views import InvoiceRead
from core.i18n import N_, format_day, translate
from core.money import format_minor

FONTS = Path(__file__).parents[1] / "data" / "fonts"
TEXT = {
    "number": N_("Number"),
    "issued": N_("Issue date"),
    "due": N_("Due date"),
    "seller": N_("Seller"),
    "buyer": N_("Buyer"),
    "vat": N_("VAT number"),
    "registration": N_("Registration number"),
    "description": N_("Description"),
    "period": N_("Period"),
    "quantity": N_("Qty"),
    "unit_price": N_("Unit price"),
    "amount": N_("Amount"),
    "rate": N_("Tax rate"),
    "base": N_("Taxable amount"),
    "tax": N_("Tax"),
    "net": N_("Total excluding tax"),
    "total": N_("Total"),
    "paid": N_("Amount paid"),
    "due_amount": N_("Amount due"),
    "cash": N_("Total payable in cash"),
    "corrects": N_("Corrects invoice {number}"),
    "reason": N_("Reason: {reason}"),
    "field": N_("{label}: {value}"),  # French puts a space before the colon
}


def render(view: InvoiceRead, locale: str) -> bytes:
    """The invoice as a PDF page (or pages), every word in ``locale``."""
    t = {key: translate(text, locale) for key, text in TEXT.items()}
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=18)
    pdf.add_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.set_title(f"{view.title} {view.number}")
    pdf.set_author(view.seller.name)
    pdf.set_lang(locale.replace("_", "-"))
    pdf.add_page()
    width = pdf.epw

    pdf.set_font("DejaVu", "B", 16)
    pdf.cell(width, 9, f"{view.title} {view.number or ''}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
    facts = [(t["issued"], format_day(view.issued_on, locale) if view.issued_on else "")]
    if view.kind != "credit_note":
        facts.append((t["due"], format_day(view.due_on, locale)))
    for label, value in facts:
        pdf.cell(width, 5, t["field"].format(label=label, value=value), new_x="LMARGIN", new_y="NEXT")
    if view.credits:
        pdf.cell(width, 5, t["corrects"].format(number=view.credits), new_x="LMARGIN", new_y="NEXT")
    if view.reason:
        pdf.multi_cell(width, 5, t["reason"].format(reason=view.reason), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

    half = width / 2
    top = pdf.get_y()
    for column, (heading, party) in enumerate(((t["seller"], view.seller), (t["buyer"], view.buyer))):
        pdf.set_xy(pdf.l_margin + column * half, top)
        pdf.set_font("DejaVu", "B", 10)
        pdf.cell(half, 6, heading, new_x="LEFT", new_y="NEXT")
        pdf.set_font("DejaVu", "", 9)
        country = Locale.parse(locale).territories.get(party.country, party.country)
        rows = [party.name, ", ".join(x for x in (party.city, party.region, country) if x)]
        if party.tax_id:
            rows.append(t["field"].format(label=t["vat"], value=party.tax_id))
        for row in rows:
            pdf.cell(half, 5, row, new_x="LEFT", new_y="NEXT")
    pdf.set_xy(pdf.l_margin, pdf.get_y() + 4)

    pdf.set_font("DejaVu", "", 8)
    with pdf.table(col_widths=(34, 22, 6, 13, 9, 16), text_align=("LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT"),
                   line_height=4.5, borders_layout="HORIZONTAL_LINES", first_row_as_headings=True) as table:
        table.row([t["description"], t["period"], t["quantity"], t["unit_price"], t["rate"], t["amount"]])
        for line in view.lines:
            table.row([line.description, line.period_text, str(line.quantity), line.unit_price.formatted,
                       line.tax_rate_text, line.net.formatted])
    pdf.ln(3)
    with pdf.table(col_widths=(50, 25, 25), text_align=("LEFT", "RIGHT", "RIGHT"), line_height=4.5,
                   borders_layout="HORIZONTAL_LINES", first_row_as_headings=True) as table:
        table.row([t["tax"], t["base"], t["amount"]])
        for tax in view.taxes:
            table.row([tax.label, tax.base.formatted, tax.tax.formatted])
    pdf.ln(2)

    paid = view.total.amount_minor if view.status == "paid" else 0
    totals = [(t["net"], view.net.formatted), (t["tax"], view.tax.formatted), (t["total"], view.total.formatted)]
    if view.kind != "credit_note":
        totals.append((t["paid"], format_minor(paid, view.currency, locale)))
        totals.append((t["due_amount"], format_minor(view.total.amount_minor - paid, view.currency, locale)))
    if view.cash_total is not None and view.cash_total.amount_minor != view.total.amount_minor:
        totals.append((t["cash"], view.cash_total.formatted))
    for label, value in totals:
        pdf.set_font("DejaVu", "B" if label == t["total"] else "", 9)
        pdf.cell(width * 0.75, 6, label, align="R")
        pdf.cell(width * 0.25, 6, value, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("DejaVu", "", 8)
    for mention in view.mentions:
        pdf.multi_cell(width, 4.5, mention, new_x="LMARGIN", new_y="NEXT")
    seller_ids = [f"{view.seller.name}"]
    if view.seller.tax_id:
        seller_ids.append(t["field"].format(label=t["vat"], value=view.seller.tax_id))
    pdf.set_y(-20)
    pdf.cell(width, 4, " · ".join(seller_ids), align="C")
    return bytes(pdf.output())


def factur_x(pdf: bytes, xml: bytes, view: InvoiceRead, locale: str) -> bytes:
    """Embed the CII XML: the PDF becomes a Factur-X (EN 16931 profile)."""
    from facturx import generate_from_binary

    return generate_from_binary(
        pdf, xml, flavor="factur-x", level="en16931", check_xsd=True, lang=locale.replace("_", "-"),
        pdf_metadata={"author": view.seller.name, "keywords": "Factur-X, " + labels.title(view.kind, locale),
                      "title": f"{view.title} {view.number}", "subject": f"{view.title} {view.number}"},
    )
