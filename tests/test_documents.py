"""Golden invoices: the JSON, the PDF text and the e-invoice XML of seven kinds of customer and a
credit note, identical on both engines, and valid for the EN 16931 validators; every PDF is
PDF/A-3b (``tests/pdfa.py``), the Factur-X ones with their XML attachment as Factur-X wants it.

Regenerate the golden files after an intended change with ``UNIVERS_UPDATE_GOLDEN=1``, then read
the diff like an accountant would.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from facturx import get_xml_from_pdf
from pypdf import PdfReader

from core.billing.einvoice_check import check
from tests.pdfa import check_factur_x, check_pdfa

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UNIVERS_UPDATE_GOLDEN") == "1"
PLAN = "bm-ks-1-p1m"  # a monthly server with a setup fee: two lines
CASES = {
    "fr-b2c": ("FR", {"kind": "person", "name": "Camille Martin"}, False),
    "fr-de-reverse-charge": ("FR", {"kind": "company", "name": "Berlin Hosting GmbH", "country": "DE",
                                    "vat_number": "DE136695976"}, True),
    "de-fr-oss": ("DE", {"kind": "person", "name": "Jeanne Petit", "country": "FR", "language": "fr_FR"}, False),
    "qc-consumer": ("QC", {"kind": "person", "name": "Émile Tremblay"}, False),
    "us": ("US", {"kind": "company", "name": "Acme Inc.", "region": "NY"}, False),
    "sg": ("SG", {"kind": "company", "name": "Merlion Pte. Ltd."}, False),
    "cz": ("CZ", {"kind": "person", "name": "Jiří Novák"}, False),
}
EINVOICE = {"fr-b2c", "fr-de-reverse-charge", "de-fr-oss", "cz", "fr-b2c-credit-note"}


def _golden(name: str, content: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(content, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}: run with UNIVERS_UPDATE_GOLDEN=1"
    assert content == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


def _documents(shop, customer, invoice_id, case):
    headers = customer["headers"]
    invoice = shop.client.get(f"/v1/invoices/{invoice_id}", headers=headers).json()
    _golden(f"{case}.json", json.dumps(invoice, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    r = shop.client.get(f"/v1/invoices/{invoice_id}/pdf", headers=headers)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert (check_factur_x if case in EINVOICE else check_pdfa)(r.content) == []
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(r.content)).pages)
    _golden(f"{case}.pdf.txt", text + "\n")
    for fmt in ("cii", "ubl"):
        x = shop.client.get(f"/v1/invoices/{invoice_id}/{fmt}", headers=headers)
        if case not in EINVOICE:
            assert x.status_code == 422 and x.json()["code"] == "no_einvoice"
            continue
        assert x.status_code == 200
        _golden(f"{case}.{fmt}.xml", x.text)
        if fmt == "cii":  # the Factur-X PDF carries exactly this XML
            _name, embedded = get_xml_from_pdf(r.content, check_xsd=False)
            assert embedded == x.content
    return invoice, text


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_invoice(shop, case):
    storefront, customer, confirm = CASES[case]
    buyer = shop.signup(storefront, top_up="5000.00", email="billing@example.com", **customer)
    if confirm:
        r = shop.client.post(f"/v1/staff/customers/{buyer['id']}/vat-confirmation",
                             json={"method": "VIES consultation WAPIAAAAW1234567", "confirmed_on": "2026-01-05"},
                             headers=shop.staff())
        assert r.status_code == 200
    order = shop.order(buyer, PLAN)
    invoice, text = _documents(shop, buyer, order["invoice"]["id"], case)
    assert invoice["status"] == "paid" and invoice["number"] in text and invoice["total"]["formatted"] in text
    for mention in invoice["mentions"]:
        assert mention.split()[0] in text


def test_golden_credit_note(shop):
    buyer = shop.signup("FR", top_up="5000.00", kind="person", name="Camille Martin", email="billing@example.com")
    order = shop.order(buyer, PLAN)
    setup = next(line for line in order["invoice"]["lines"] if line["description"].startswith("Frais"))
    r = shop.client.post(f"/v1/staff/invoices/{order['invoice']['id']}/credit-notes",
                         json={"reason": "Frais d'installation offerts", "lines": [{"line_id": setup["id"]}]},
                         headers={**shop.staff(), "Idempotency-Key": "gesture"})
    assert r.status_code == 201
    note, text = _documents(shop, buyer, r.json()["id"], "fr-b2c-credit-note")
    assert note["credits"] in text and "offerts" in text


def test_golden_e_invoices_pass_the_en16931_validators(tmp_path):
    """XSD (factur-x) and the EN 16931 schematron (CII: Factur-X EN16931; UBL: CEN), with saxonche."""
    documents = []
    for case in sorted(EINVOICE):
        credit = case.endswith("credit-note")
        documents.append(((GOLDEN / f"{case}.cii.xml").read_bytes(), "factur-x"))
        documents.append(((GOLDEN / f"{case}.ubl.xml").read_bytes(), "ubl-2.1-creditnote" if credit else "ubl-2.1-invoice"))
    results = check(documents, tmp_path)
    assert all(problems == [] for problems in results), results
    # and the validators do fail on a wrong total
    broken = (GOLDEN / "fr-b2c.cii.xml").read_bytes().replace(b"<ram:GrandTotalAmount>", b"<ram:GrandTotalAmount>1")
    assert "BR-CO-15" in [p["id"] for p in check([(broken, "factur-x")], tmp_path)[0]]


def test_national_formats_are_a_plug_in_point(shop, settings, clock, database_url):
    from core import hookimpl
    from core.context import EInvoiceDocument
    from core.testing import make_runtime

    # the French storefront has no national format (Italy's and Poland's: tests/test_national_it_pl.py)
    buyer = shop.signup("FR", top_up="500.00", kind="person", name="Camille Martin")
    invoice = shop.order(buyer, PLAN)["invoice"]
    r = shop.client.get(f"/v1/invoices/{invoice['id']}/national", headers=buyer["headers"])
    assert r.status_code == 422 and r.json()["code"] == "no_national_format"

    class Chorus:
        @hookimpl
        def univers_render_national_einvoice(self, ctx):
            if ctx.storefront != "FR":
                return None
            xml = f"<Facture numero='{ctx.invoice['number']}' total='{ctx.invoice['total']['amount']}'/>"
            return EInvoiceDocument(xml.encode(), "application/xml", f"{ctx.invoice['number']}.xml")

    from litestar.testing import TestClient

    from core.api.app import create_app

    runtime = make_runtime(settings, clock, database_url, extra_plugins=[("chorus", Chorus())])
    try:
        with TestClient(app=create_app(runtime)) as client:
            r = client.get(f"/v1/invoices/{invoice['id']}/national", headers=buyer["headers"])
            assert r.status_code == 200 and f"numero='{invoice['number']}'" in r.text
    finally:
        runtime.close()


def test_table_headings_break_only_between_words_in_every_language(shop):
    """The invoice's two tables size their columns from the translated headings: drawn in each
    language of the catalogs, every word of every heading comes out whole (German wrote
    "Meng e" and "Steuersa tz", Czech "Množ .") and the PDF stays PDF/A-3b."""
    from core.billing import pdf
    from core.billing.invoicing import load_invoice
    from core.billing.views import invoice_read
    from core.i18n import locales_dir, translate
    from core.i18n_tools import linguas

    buyer = shop.signup("DE", top_up="500.00", kind="company", name="Berlin Hosting GmbH", language="de_DE")
    invoice_id = shop.order(buyer, PLAN)["invoice"]["id"]
    with shop.rt.engine.connect() as conn:
        row, lines, taxes, payments = load_invoice(conn, None, invoice_id)
    locales = ["en", *linguas(locales_dir())]
    assert {"de", "cs", "fi", "lt", "fr_CA"} <= set(locales)
    for locale in locales:
        document = pdf.render(invoice_read(shop.rt, row, lines, taxes, payments, locale), locale)
        bold: list[str] = []  # the words drawn in bold: the title, the parties' and the tables' headings, the total

        def collect(text, _cm, _tm, font, _size):
            if font is not None and "Bold" in str(font.get("/BaseFont", "")):
                bold.extend(text.split())

        PdfReader(io.BytesIO(document)).pages[0].extract_text(visitor_text=collect)
        for key in ("description", "period", "quantity", "unit_price", "rate", "amount", "tax", "base"):
            heading = translate(pdf.TEXT[key], locale)
            assert all(word in bold for word in heading.split()), (locale, heading, bold)
        assert check_pdfa(document) == [], locale


def test_the_pdfa_check_finds_what_breaks_pdfa(shop):
    """The structural check fails a Factur-X that lost what PDF/A-3b and Factur-X require."""
    import pikepdf

    buyer = shop.signup("FR", top_up="500.00", kind="person", name="Camille Martin")
    invoice = shop.order(buyer, PLAN)["invoice"]
    good = shop.client.get(f"/v1/invoices/{invoice['id']}/pdf", headers=buyer["headers"]).content
    assert check_factur_x(good) == []

    def broken(change, **save) -> list[str]:
        with pikepdf.open(io.BytesIO(good)) as doc:
            change(doc)
            out = io.BytesIO()
            doc.save(out, **save)
        return check_factur_x(out.getvalue())

    def first_font(doc):
        return next(f for f in doc.pages[0].Resources.Font.values()).DescendantFonts[0].FontDescriptor

    def xmp(doc, key, value):
        with doc.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as meta:
            meta[key] = value

    def transparent(doc):
        doc.pages[0].Resources.ExtGState = pikepdf.Dictionary(GS9=pikepdf.Dictionary(Type=pikepdf.Name.ExtGState, ca=0.5))

    def attachment(doc):
        del doc.Root.Names.EmbeddedFiles.Names[1].AFRelationship

    assert broken(lambda doc: None) == []  # pikepdf writes it out again unharmed
    cases = [
        (lambda doc: delattr(doc.Root, "OutputIntents"), {}, "6.2.3 no GTS_PDFA1 output intent"),
        (lambda doc: None, {"encryption": pikepdf.Encryption(owner="o", user="")}, "6.1.3-2"),
        (lambda doc: setattr(doc.Root, "OpenAction", pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS="app.alert(1)")),
         {}, "6.5.1 JavaScript"),
        (lambda doc: delattr(first_font(doc), "FontFile2"), {}, "is not embedded"),
        (lambda doc: xmp(doc, "pdfaid:part", "2"), {}, "6.6.4-2"),
        (lambda doc: xmp(doc, "{urn:example:undeclared#}Thing", "x"), {}, "6.6.2.3-7"),
        (attachment, {}, "6.8-3"),
        (lambda doc: delattr(doc.Root, "AF"), {}, "not listed in the catalog's /AF"),
        (transparent, {}, "transparency"),
        (lambda doc: None, {"min_version": "1.4", "force_version": "1.4"}, "not PDF 1.7"),
    ]
    for change, save, problem in cases:
        problems = broken(change, **save)
        assert any(problem in p for p in problems), (problem, problems)
    assert any("6.1.3-3" in p for p in check_pdfa(good + b"junk"))
    assert any("more than one body" in p for p in check_pdfa(good + good))
