"""National documents of the Spanish and Portuguese storefronts, from the same invoices as every
other document: golden files for a consumer, a business, a credit note and a usage invoice, each
valid against its official schema (VERI*FACTU ``SuministroInformacion.xsd``; SAF-T (PT) 1.04), with
the QR code of each country on the PDF, still PDF/A-3b; the chains behind them verify.

Regenerate the golden files after an intended change with ``UNIVERS_UPDATE_GOLDEN=1`` (as
``tests/test_documents.py``), then read the diff like an auditor would.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path

import pytest
import segno
from pypdf import PdfReader

from core.billing import chain
from tests.pdfa import check_pdfa, qr_matrix
from tests.test_rating import PROJECT, send, usage_invoices

GOLDEN = Path(__file__).parent / "golden" / "national"
UPDATE = os.environ.get("UNIVERS_UPDATE_GOLDEN") == "1"
PLAN = "bm-ks-1-p1m"  # a monthly server with a setup fee: two lines
JANUARY = dt.date(2026, 1, 1)
BUYERS = {
    "ES": {"consumer": {"kind": "person", "name": "Lucía Pérez"},
           "business": {"kind": "company", "name": "Acme Ibérica S.L.", "vat_number": "ESB58378431"}},
    "PT": {"consumer": {"kind": "person", "name": "João Silva"},
           "business": {"kind": "company", "name": "Acme Lusitana, Lda.", "vat_number": "PT503504564"}},
}


def _golden(name: str, content: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}: run with UNIVERS_UPDATE_GOLDEN=1"
    assert content == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


def _usage_invoice(shop, storefront) -> tuple[dict, dict]:
    customer = shop.signup(storefront, name="Nube S.A." if storefront == "ES" else "Nuvem, S.A.")
    project = shop.order(customer, PROJECT)["services"][0]["id"]
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    send(shop.client, customer, [
        {"id": f"h{h}", "project": project, "metric": "instance_hours", "dimension": "b3-8", "quantity": "1",
         "at": (base + dt.timedelta(hours=h)).isoformat().replace("+00:00", "Z")} for h in range(48)])
    shop.clock.set("2026-02-01T03:00:00+00:00")
    shop.bill_usage(JANUARY)
    [listed] = usage_invoices(shop.client, customer)
    return customer, listed


def _documents(shop, storefront) -> dict[str, tuple[dict, dict]]:
    """case → (customer, invoice): a consumer's and a business's orders, a credit note of the
    business's setup fee, and a month of pay-as-you-go."""
    out = {}
    for case, body in BUYERS[storefront].items():
        customer = shop.signup(storefront, top_up="5000.00", email="billing@example.com", **body)
        out[case] = customer, shop.order(customer, PLAN)["invoice"]
    customer, invoice = out["business"]
    setup = next(line for line in invoice["lines"] if line["kind"] == "setup")
    r = shop.client.post(f"/v1/staff/invoices/{invoice['id']}/credit-notes",
                         json={"reason": "Setup fee waived", "lines": [{"line_id": setup["id"]}]},
                         headers={**shop.staff(), "Idempotency-Key": "gesture"})
    assert r.status_code == 201, r.text
    out["credit-note"] = customer, r.json()
    out["usage"] = _usage_invoice(shop, storefront)
    return out


def _national(shop, customer, invoice) -> bytes:
    r = shop.client.get(f"/v1/invoices/{invoice['id']}/national", headers=customer["headers"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/xml")
    return r.content


def _pdf_qr_caption(shop, customer, invoice) -> str:
    r = shop.client.get(f"/v1/invoices/{invoice['id']}/pdf", headers=customer["headers"])
    assert r.status_code == 200
    assert check_pdfa(r.content) == []
    reader = PdfReader(io.BytesIO(r.content))
    return "\n".join(page.extract_text() for page in reader.pages), qr_matrix(r.content)


def test_spanish_registration_records_are_valid_and_golden(shop):
    from plugins.national import es

    documents = _documents(shop, "ES")
    for case, (customer, invoice) in documents.items():
        xml = _national(shop, customer, invoice)
        assert es.validate(xml) == [], (case, es.validate(xml))
        _golden(f"es-{case}.xml", xml.decode())
    business = _national(shop, *documents["business"]).decode()
    assert "<sf:TipoFactura>F1</sf:TipoFactura>" in business and "<sf:NIF>B58378431</sf:NIF>" in business
    assert "<sf:TipoFactura>F2</sf:TipoFactura>" in _national(shop, *documents["consumer"]).decode()
    credit = _national(shop, *documents["credit-note"]).decode()
    assert "<sf:TipoFactura>R1</sf:TipoFactura>" in credit and "<sf:TipoRectificativa>I</sf:TipoRectificativa>" in credit
    assert f"<sf:NumSerieFactura>{documents['business'][1]['number']}</sf:NumSerieFactura>" in credit
    assert "<sf:ImporteTotal>-" in credit  # the difference: negative
    # and the chain behind them verifies
    with shop.rt.engine.connect() as conn:
        assert all(chain.verify(conn, shop.rt, sub, name).ok for sub, name in chain.chains(conn, "ES"))


def test_the_schema_refuses_a_broken_spanish_record(shop):
    from plugins.national import es

    customer = shop.signup("ES", top_up="500.00", kind="person", name="Lucía Pérez")
    xml = _national(shop, customer, shop.order(customer, PLAN)["invoice"])
    assert es.validate(xml) == []
    assert es.validate(xml.replace(b"<sf:TipoFactura>F2<", b"<sf:TipoFactura>F9<")) != []
    assert es.validate(xml.replace(b"<sf:TipoHuella>01</sf:TipoHuella>", b"")) != []


def test_the_spanish_pdf_carries_the_aeat_qr_code(shop):
    customer = shop.signup("ES", top_up="500.00", kind="person", name="Lucía Pérez")
    invoice = shop.order(customer, PLAN)["invoice"]
    text, drawn = _pdf_qr_caption(shop, customer, invoice)
    assert "VERI*FACTU" in text
    with shop.rt.engine.connect() as conn:
        from core.billing import invoicing

        row, _lines, taxes, _payments = invoicing.load_invoice(conn, None, invoice["id"])
        caption, url = chain.qr(conn, shop.rt, row, taxes)
    assert url == ("https://www2.agenciatributaria.gob.es/wlpl/TIKE-CONT/ValidarQR?nif=A12345674"
                   f"&numserie={invoice['number']}&fecha=05-01-2026&importe={invoice['total']['amount']}")
    assert drawn == [[v & 1 for v in row] for row in segno.make(url, error="m").matrix]  # the code on the page is that link


def test_portuguese_documents_are_saft_files_valid_and_golden(shop):
    from core.billing import saft

    documents = _documents(shop, "PT")
    for case, (customer, invoice) in documents.items():
        xml = _national(shop, customer, invoice)
        assert saft.validate(xml) == [], (case, saft.validate(xml)[:3])
        _golden(f"pt-{case}.xml", xml.decode())
    business = _national(shop, *documents["business"]).decode()
    number = documents["business"][1]["number"]
    assert "<InvoiceNo>FT PT2026/2</InvoiceNo>" in business and "<ATCUD>AAJFJ4VN7N-2</ATCUD>" in business
    assert "<CustomerTaxID>503504564</CustomerTaxID>" in business and "<HashControl>1</HashControl>" in business
    credit = _national(shop, *documents["credit-note"]).decode()
    assert "<InvoiceType>NC</InvoiceType>" in credit and "<Reference>FT PT2026/2</Reference>" in credit
    assert "<ATCUD>AAJFJGP5WS-1</ATCUD>" in credit and "<DebitAmount>" in credit and number
    consumer = _national(shop, *documents["consumer"]).decode()
    assert "<CustomerTaxID>999999990</CustomerTaxID>" in consumer


def test_the_period_export_holds_every_document_in_chain_order_and_is_valid(shop):
    from core.billing import saft

    documents = _documents(shop, "PT")
    with shop.rt.engine.connect() as conn:
        xml = saft.export(conn, shop.rt, "PT", dt.date(2026, 1, 1), dt.date(2026, 2, 28))
        assert all(chain.verify(conn, shop.rt, sub, name).ok for sub, name in chain.chains(conn, "PT"))
    assert saft.validate(xml) == [], saft.validate(xml)[:3]
    text = xml.decode()
    assert "<NumberOfEntries>5</NumberOfEntries>" in text  # with the (free) order of the usage customer's project
    numbers = [line.strip()[len("<InvoiceNo>"):-len("</InvoiceNo>")] for line in text.splitlines() if "<InvoiceNo>" in line]
    assert numbers == ["FT PT2026/1", "FT PT2026/2", "FT PT2026/3", "FT PT2026/4", "NC PTC2026/1"]
    assert saft.validate(xml.replace(b"<InvoiceType>NC</InvoiceType>", b"<InvoiceType>XX</InvoiceType>")) != []
    assert len(documents) == 4


def test_the_portuguese_pdf_carries_the_atcud_and_the_qr_code_of_portaria_195_2020(shop):
    from core.billing import invoicing

    customer = shop.signup("PT", top_up="500.00", kind="person", name="João Silva")
    invoice = shop.order(customer, PLAN)["invoice"]
    text, drawn = _pdf_qr_caption(shop, customer, invoice)
    assert "ATCUD: AAJFJ4VN7N-1" in text
    with shop.rt.engine.connect() as conn:
        row, _lines, taxes, _payments = invoicing.load_invoice(conn, None, invoice["id"])
        caption, payload = chain.qr(conn, shop.rt, row, taxes)
        [record] = chain.records(conn, invoice["id"])
    assert drawn == [[v & 1 for v in row] for row in segno.make(payload, error="m").matrix]
    fields = [f.split(":", 1) for f in payload.split("*")]
    assert [k for k, _ in fields] == ["A", "B", "C", "D", "E", "F", "G", "H", "I1", "I7", "I8", "N", "O", "Q", "R"]
    values = dict(fields)
    assert (values["A"], values["B"], values["C"], values["D"], values["E"]) == ("501964843", "999999990", "PT", "FT", "N")
    assert (values["F"], values["G"], values["H"], values["I1"]) == ("20260105", "FT PT2026/1", "AAJFJ4VN7N-1", "PT")
    assert values["O"] == invoice["total"]["amount"] and values["N"] == invoice["tax"]["amount"]
    assert values["Q"] == record["hash"][0] + record["hash"][10] + record["hash"][20] + record["hash"][30]
    assert values["R"] == "9999"


def test_the_cli_verifies_the_chains_and_writes_a_valid_saft_file(shop, tmp_path, monkeypatch, capsys, database_url):
    from sqlalchemy import text

    from core.billing import saft
    from core.cli import main
    from core.uow import unit_of_work

    for storefront in ("PT", "ES"):
        customer = shop.signup(storefront, top_up="500.00")
        shop.order(customer, PLAN)
        shop.order(customer, PLAN)
    url, schema = database_url
    monkeypatch.setenv("UNIVERS_DATABASE_URL", f"{url}?options=-csearch_path%3D{schema}" if schema else url)
    monkeypatch.setenv("UNIVERS_STAFF_KEY", shop.staff()["Authorization"][7:])
    assert main(["fiscal", "verify"]) == 0
    out = "".join(capsys.readouterr())
    assert "ES ES: 2 records, verified" in out and "PT PT2026: 2 records, verified" in out
    target = tmp_path / "saft.xml"
    assert main(["fiscal", "saft", "--storefront", "PT", "--from", "2026-01-01", "--to", "2026-01-31", "-o", str(target)]) == 0
    assert saft.validate(target.read_bytes()) == [] and target.read_text().count("<Invoice>") == 2
    assert main(["fiscal", "submit"]) == 0 and "no transport plugin" in "".join(capsys.readouterr())
    with unit_of_work(shop.rt) as conn:  # tampered behind the triggers' back
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE fiscal_record DISABLE TRIGGER fiscal_record_frozen"))
        else:
            conn.execute(text("DROP TRIGGER fiscal_record_frozen_update"))
        conn.execute(text("UPDATE fiscal_record SET total_minor = 1 WHERE chain = 'ES' AND position = 1"))
    assert main(["fiscal", "verify", "--storefront", "ES"]) == 1
    assert "position 1: hash does not match" in "".join(capsys.readouterr())


@pytest.mark.parametrize("storefront", ["ES", "PT"])
def test_a_reverse_charged_business_abroad_is_valid_too(shop, storefront):
    """A German business, VAT number confirmed: no Spanish or Portuguese VAT on the invoice."""
    from core.billing import saft
    from plugins.national import es

    buyer = shop.signup(storefront, top_up="5000.00", kind="company", name="Berlin Hosting GmbH", country="DE",
                        vat_number="DE136695976", email="billing@example.com")
    r = shop.client.post(f"/v1/staff/customers/{buyer['id']}/vat-confirmation",
                         json={"method": "VIES consultation WAPIAAAAW1234567", "confirmed_on": "2026-01-05"},
                         headers=shop.staff())
    assert r.status_code == 200, r.text
    invoice = shop.order(buyer, PLAN)["invoice"]
    assert invoice["tax"]["amount_minor"] == 0
    xml = _national(shop, buyer, invoice)
    if storefront == "ES":
        assert es.validate(xml) == [], es.validate(xml)
        text = xml.decode()
        assert "<sf:CalificacionOperacion>N2</sf:CalificacionOperacion>" in text
        assert "<sf:IDType>02</sf:IDType>" in text and "<sf:ID>DE136695976</sf:ID>" in text
    else:
        assert saft.validate(xml) == [], saft.validate(xml)[:3]
        text = xml.decode()
        assert "<TaxExemptionCode>M40</TaxExemptionCode>" in text and "<CustomerTaxID>DE136695976</CustomerTaxID>" in text
