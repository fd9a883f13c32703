"""Invoices and credit notes as PDF/A-3b, in the customer's language, with the legal mentions.

fpdf2 draws the page with DejaVu Sans (vendored in ``core/data/fonts``: every storefront's
alphabet, ł and ě included) in its PDF/A-3b mode: every font embedded (subsets), the sRGB ICC
profile that fpdf2 ships (``sRGB2014.icc``, from the International Color Consortium, whose licence
lets it be copied, embedded and distributed without restriction: ``fpdf/data/color_profiles/``)
as the PDF/A output intent, XMP metadata (pdfaid part 3, conformance B), a document ID, PDF 1.7,
no transparency and no JavaScript. For the EU storefronts that take EN 16931 e-invoices the PDF
becomes a Factur-X through the ``factur-x`` package, which checks the CII XML against its XSD,
embeds it (``factur-x.xml``, AFRelationship ``Data``, listed in the catalog's ``/AF``) and writes
its own XMP (pdfaid 3 B and the Factur-X extension schema); :func:`factur_x` then writes the file
out again as PDF 1.7 (factur-x writes a 1.6 header). ``tests/pdfa.py`` checks the result.

The page is drawn in blocks, top to bottom, each a function of ``(pdf, view, text, locale)``:
:func:`_heading`, :func:`_parties`, :func:`_lines`, :func:`_taxes`, :func:`_totals`,
:func:`_mentions`; the seller's line is the footer of every page. Another block (say a QR code
that a national format requires) is one more function called from :func:`render`; to stay PDF/A
without transparency an image must be opaque (no alpha channel).

Table columns are sized from what they hold (:func:`column_widths`): each column is at least as
wide as the longest word of its translated heading and its longest amount, so that a heading
wraps only between words ("Menge", "Steuersatz" and "Bemessungsgrundlage" stay whole).
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from babel import Locale
from fpdf import FPDF

from core import labels
from core.billing.views import InvoiceRead
from core.i18n import N_, format_day, translate
from core.money import format_minor

FONTS = Path(__file__).parents[1] / "data" / "fonts"
FONT = "DejaVu"
PDF_HEADER = "%PDF-1.7"
TABLE_SIZE = 8  # points, the tables' font size
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


class _Document(FPDF):
    """An A4 PDF/A-3b document whose every page ends with the seller's line."""

    def __init__(self, footer: str):
        super().__init__(format="A4", enforce_compliance="PDF/A-3B")
        self.footer_line = footer

    def footer(self):  # drawn when a page is closed, inside the bottom margin
        self.set_y(-15)
        self.set_font(FONT, "", 8)
        self.cell(self.epw, 4, self.footer_line, align="C")


def render(view: InvoiceRead, locale: str, qr: QrCode | None = None) -> bytes:
    """The invoice as a PDF/A-3b page (or pages), every word in ``locale``; ``qr``: the QR code a
    national format or a fiscal chain wants printed (Poland's KSeF "KOD I"; Portugal, Spain:
    core/billing/chain.py)."""
    t = {key: translate(text, locale) for key, text in TEXT.items()}
    seller_ids = [view.seller.name]
    if view.seller.tax_id:
        seller_ids.append(t["field"].format(label=t["vat"], value=view.seller.tax_id))
    pdf = _Document(" · ".join(seller_ids))
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_font(FONT, "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font(FONT, "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.set_title(f"{view.title} {view.number}")
    pdf.set_author(view.seller.name)
    pdf.set_lang(locale.replace("_", "-"))
    pdf.add_page()
    for block in (_heading, _parties, _lines, _taxes, _totals, _mentions):
        block(pdf, view, t, locale)
    if qr:
        _qr(pdf, qr)
    return bytes(pdf.output())


@dataclass(frozen=True)
class QrCode:
    payload: str
    caption: str | None = None  # printed above it (Spain: VERI*FACTU; Portugal: the ATCUD)
    label: str | None = None  # printed under it (Poland: the KSeF number, OFFLINE before)
    side: float | None = None  # its width in mm (Spain asks 30 to 40, Portugal at least 30); None: 0.6 mm a module


def _qr(pdf: FPDF, qr: QrCode) -> None:
    """A QR code (segno) drawn as filled black squares, one per run of dark modules: vector and
    opaque, so the page stays PDF/A without an image."""
    import segno

    matrix = segno.make(qr.payload, error="m", micro=False).matrix
    module = qr.side / len(matrix) if qr.side else 0.6
    side = len(matrix) * module
    if pdf.get_y() + side + 16 > pdf.page_break_trigger:
        pdf.add_page()
    if qr.caption:
        pdf.ln(3)
        pdf.set_font(FONT, "B", 8)
        pdf.cell(pdf.epw, 4.5, qr.caption, new_x="LMARGIN", new_y="NEXT")
    x0, y0 = pdf.l_margin + 4 * module, pdf.get_y() + 4  # the quiet zone: four modules
    pdf.set_fill_color(0, 0, 0)
    for r, row in enumerate(matrix):
        c = 0
        while c < len(row):
            if row[c] & 1:
                start = c
                while c < len(row) and row[c] & 1:
                    c += 1
                pdf.rect(x0 + start * module, y0 + r * module, (c - start) * module, module, style="F")
            else:
                c += 1
    pdf.set_xy(pdf.l_margin, y0 + side + 1)
    if qr.label:
        pdf.set_font(FONT, "", 7)
        pdf.cell(pdf.epw, 4, qr.label, new_x="LMARGIN", new_y="NEXT")


def _heading(pdf: FPDF, view: InvoiceRead, t: dict, locale: str) -> None:
    width = pdf.epw
    pdf.set_font(FONT, "B", 16)
    pdf.cell(width, 9, f"{view.title} {view.number or ''}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", 9)
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


def _parties(pdf: FPDF, view: InvoiceRead, t: dict, locale: str) -> None:
    half = pdf.epw / 2
    top = pdf.get_y()
    bottom = top
    for column, (heading, party) in enumerate(((t["seller"], view.seller), (t["buyer"], view.buyer))):
        pdf.set_xy(pdf.l_margin + column * half, top)
        pdf.set_font(FONT, "B", 10)
        pdf.cell(half, 6, heading, new_x="LEFT", new_y="NEXT")
        pdf.set_font(FONT, "", 9)
        country = Locale.parse(locale).territories.get(party.country, party.country)
        rows = [party.name, ", ".join(x for x in (party.city, party.region, country) if x)]
        if party.tax_id:
            rows.append(t["field"].format(label=t["vat"], value=party.tax_id))
        for row in rows:
            pdf.cell(half, 5, row, new_x="LEFT", new_y="NEXT")
        bottom = max(bottom, pdf.get_y())
    pdf.set_xy(pdf.l_margin, bottom + 4)


def _lines(pdf: FPDF, view: InvoiceRead, t: dict, locale: str) -> None:
    headings = [t["description"], t["period"], t["quantity"], t["unit_price"], t["rate"], t["amount"]]
    rows = [[line.description, line.period_text, str(line.quantity), line.unit_price.formatted,
             line.tax_rate_text, line.net.formatted] for line in view.lines]
    _table(pdf, headings, rows, align=("LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT"), wraps=(True, True))
    pdf.ln(3)


def _taxes(pdf: FPDF, view: InvoiceRead, t: dict, locale: str) -> None:
    rows = [[tax.label, tax.base.formatted, tax.tax.formatted] for tax in view.taxes]
    _table(pdf, [t["tax"], t["base"], t["amount"]], rows, align=("LEFT", "RIGHT", "RIGHT"), wraps=(True,))
    pdf.ln(2)


def _totals(pdf: FPDF, view: InvoiceRead, t: dict, locale: str) -> None:
    width = pdf.epw
    paid = view.total.amount_minor if view.status == "paid" else 0
    totals = [(t["net"], view.net.formatted), (t["tax"], view.tax.formatted), (t["total"], view.total.formatted)]
    if view.kind != "credit_note":
        totals.append((t["paid"], format_minor(paid, view.currency, locale)))
        totals.append((t["due_amount"], format_minor(view.total.amount_minor - paid, view.currency, locale)))
    if view.cash_total is not None and view.cash_total.amount_minor != view.total.amount_minor:
        totals.append((t["cash"], view.cash_total.formatted))
    for label, value in totals:
        pdf.set_font(FONT, "B" if label == t["total"] else "", 9)
        pdf.cell(width * 0.75, 6, label, align="R")
        pdf.cell(width * 0.25, 6, value, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)


def _mentions(pdf: FPDF, view: InvoiceRead, t: dict, locale: str) -> None:
    pdf.set_font(FONT, "", 8)
    for mention in view.mentions:
        pdf.multi_cell(pdf.epw, 4.5, mention, new_x="LMARGIN", new_y="NEXT")


def _table(pdf: FPDF, headings: list[str], rows: list[list[str]], align: Sequence[str], wraps: Sequence[bool]) -> None:
    """A table across the page, its columns sized by :func:`column_widths`."""
    pdf.set_font(FONT, "", TABLE_SIZE)
    widths = column_widths(pdf, headings, rows, wraps, pdf.epw)
    pdf.set_font(FONT, "", TABLE_SIZE)
    with pdf.table(width=pdf.epw, col_widths=widths, text_align=tuple(align), line_height=4.5,
                   borders_layout="HORIZONTAL_LINES", first_row_as_headings=True) as table:
        table.row(headings)
        for row in rows:
            table.row(row)


def column_widths(pdf: FPDF, headings: Sequence[str], rows: Sequence[Sequence[str]], wraps: Sequence[bool],
                  total: float, share: float = 0.33, air: float = 3.0) -> list[float]:
    """Widths (in the page's unit, adding up to ``total``) for a table whose first column
    takes what the others leave.

    Every column is at least as wide as the longest word of its heading (in bold, as fpdf2 draws
    headings) and as its longest value, or as the longest word of its values where ``wraps``
    says they may wrap; fpdf2 then breaks lines only between words. A column gets the width of
    its whole heading and values on one line, with ``air`` between columns, while the first
    column keeps ``share`` of the table; past that, the other columns give up their spare width
    in proportion. Measured in the current font family at the current size.
    """
    family, size = pdf.font_family, pdf.font_size_pt
    pad = 2 * pdf.c_margin + 0.1  # the cell's margins, and a hair so that rounding never breaks a word

    def measure(text: str, style: str) -> float:
        pdf.set_font(family, style, size)
        return pdf.get_string_width(text)

    def longest_word(text: str, style: str) -> float:
        return max((measure(word, style) for word in text.split()), default=0.0)

    least, best = [], []
    for c, heading in enumerate(headings):
        values = [row[c] for row in rows]
        wrap = c < len(wraps) and wraps[c]
        value_least = max(((longest_word(v, "") if wrap else measure(v, "")) for v in values), default=0.0)
        least.append(max(longest_word(heading, "B"), value_least) + pad)
        best.append(max([measure(heading, "B")] + [measure(v, "") for v in values]) + pad + air)
    pdf.set_font(family, "", size)
    others = range(1, len(headings))
    widths = list(best)
    first = max(least[0], min(best[0], total * share))
    over = first + sum(best[c] for c in others) - total
    spare = sum(best[c] - least[c] for c in others)
    if over > 0 and spare > 0:
        give = min(over, spare) / spare
        for c in others:
            widths[c] = best[c] - (best[c] - least[c]) * give
    widths[0] = total - sum(widths[c] for c in others)
    if widths[0] < least[0]:  # even the least widths do not fit: shrink all alike (words may break)
        scale = total / sum(least)
        widths = [w * scale for w in least]
    return widths


def factur_x(pdf: bytes, xml: bytes, view: InvoiceRead, locale: str) -> bytes:
    """Embed the CII XML: the PDF/A-3b becomes a Factur-X (EN 16931 profile), PDF 1.7."""
    from facturx import generate_from_file
    from pypdf import PdfWriter

    with tempfile.TemporaryDirectory(prefix="univers-facturx-") as folder:
        # factur-x writes a file object from wherever its reader left it (a stale copy of the
        # input stays in front), so it is given a file name to write
        target = Path(folder) / "factur-x.pdf"
        generate_from_file(
            io.BytesIO(pdf), xml, flavor="factur-x", level="en16931", check_xsd=True, lang=locale.replace("_", "-"),
            pdf_metadata={"author": view.seller.name, "keywords": "Factur-X, " + labels.title(view.kind, locale),
                          "title": f"{view.title} {view.number}", "subject": f"{view.title} {view.number}"},
            output_pdf_file=str(target),
        )
        writer = PdfWriter(clone_from=str(target))
    writer.pdf_header = PDF_HEADER
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
