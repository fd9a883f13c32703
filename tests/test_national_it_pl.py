"""National e-invoices of the Italian and Polish storefronts (plugins/national): FatturaPA FPR12
and KSeF FA(3), built from the same issued invoices as the EN 16931 documents, each golden
document valid for its official schema (vendored, checked offline), on both engines.

Regenerate the golden files after an intended change with ``UNIVERS_UPDATE_GOLDEN=1`` (they live
in ``tests/golden/national/``), then read the diff like an accountant would.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import os
from pathlib import Path

import pytest
from lxml import etree
from pypdf import PdfReader

from core import hookimpl
from core.context import EInvoiceTransmission
from core.uow import unit_of_work
from plugins.national import it, pl, schemas
from tests.pdfa import check_pdfa, qr_matrix
from tests.test_rating import PROJECT, hourly, send, usage_invoices

GOLDEN = Path(__file__).parent / "golden" / "national"
UPDATE = os.environ.get("UNIVERS_UPDATE_GOLDEN") == "1"
PLAN = "bm-ks-1-p1m"  # a monthly server with a setup fee: two lines
FPA = {"p": it.NS}
MILANO = {"address": "Corso Buenos Aires 12", "postcode": "20124", "city": "Milano", "province": "MI"}
IT_CASES = {
    "it-consumer": {"kind": "person", "name": "Giulia Rossi",
                    "einvoice": {"codice_fiscale": "RSSGLI80A41F205Z", **MILANO}},
    "it-business": {"kind": "company", "name": "Rossi Hosting S.r.l.", "vat_number": "IT01234560157",
                    "einvoice": {"codice_destinatario": "M5UXCR1", **MILANO}},
    "it-fr-consumer-oss": {"kind": "person", "name": "Camille Martin", "country": "FR", "language": "fr_FR",
                           "einvoice": {"address": "12 rue de la Paix", "postcode": "75002", "city": "Paris"}},
    "it-de-reverse-charge": {"kind": "company", "name": "Berlin Hosting GmbH", "country": "DE",
                             "vat_number": "DE136695976", "language": "en",
                             "einvoice": {"address": "Friedrichstraße 10", "postcode": "10117", "city": "Berlin"}},
}


def _golden(name: str, content: bytes) -> None:
    path = GOLDEN / name
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    assert path.exists(), f"missing golden file {path}: run with UNIVERS_UPDATE_GOLDEN=1"
    assert content == path.read_bytes(), f"{name} differs from its golden file"


def _national(shop, customer, invoice_id: int) -> tuple[bytes, str]:
    r = shop.client.get(f"/v1/invoices/{invoice_id}/national", headers=customer["headers"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/xml")
    disposition = r.headers["content-disposition"]
    return r.content, disposition


def _confirm(shop, buyer):
    r = shop.client.post(f"/v1/staff/customers/{buyer['id']}/vat-confirmation",
                         json={"method": "VIES consultation WAPIAAAAW1234567", "confirmed_on": "2026-01-05"},
                         headers=shop.staff())
    assert r.status_code == 200, r.text


def _fpa(xml: bytes):
    return etree.fromstring(xml)


def _text(doc, path: str) -> list[str]:
    return [el.text for el in doc.xpath(path, namespaces=FPA)]


# --- Italy: FatturaPA FPR12 ------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(IT_CASES))
def test_italian_golden_invoice(shop, case):
    customer = IT_CASES[case]
    buyer = shop.signup("IT", top_up="5000.00", email="billing@example.com", **customer)
    if customer["kind"] == "company" and customer.get("country"):
        _confirm(shop, buyer)
    invoice = shop.order(buyer, PLAN)["invoice"]
    xml, disposition = _national(shop, buyer, invoice["id"])
    assert schemas.problems("IT", xml) == []
    _golden(f"{case}.fpr12.xml", xml)
    assert f'IT00743110157_{it.progressive(invoice)}.xml' in disposition
    doc = _fpa(xml)
    # the invoice's own amounts, with two decimals
    assert _text(doc, "//ImportoTotaleDocumento") == [invoice["total"]["amount"]]
    assert _text(doc, "//Numero") == [invoice["number"]] and _text(doc, "//TipoDocumento") == ["TD01"]
    assert _text(doc, "//CedentePrestatore//IdFiscaleIVA/IdCodice") == ["00743110157"]
    assert sum(map(float, _text(doc, "//DatiRiepilogo/ImponibileImporto"))) == float(invoice["net"]["amount"])
    code = _text(doc, "//CodiceDestinatario")
    if case == "it-consumer":
        assert code == ["0000000"] and _text(doc, "//CessionarioCommittente//CodiceFiscale") == ["RSSGLI80A41F205Z"]
        assert _text(doc, "//CessionarioCommittente//Nome") == ["Giulia"]
        assert _text(doc, "//DatiRiepilogo/AliquotaIVA") == ["22.00"] and not _text(doc, "//Natura")
    elif case == "it-business":
        assert code == ["M5UXCR1"] and _text(doc, "//CessionarioCommittente//IdCodice") == ["01234560157"]
    elif case == "it-fr-consumer-oss":  # a consumer in France: French VAT through the OSS
        assert code == ["XXXXXXX"] and _text(doc, "//CessionarioCommittente//IdCodice") == ["99999999999"]
        assert set(_text(doc, "//Natura")) == {"N7"} and _text(doc, "//DatiRiepilogo/AliquotaIVA") == ["0.00"]
        assert _text(doc, "//ImportoTotaleDocumento") == [invoice["total"]["amount"]] != [invoice["net"]["amount"]]
    else:  # a business in another member state: outside the scope of Italian VAT, reverse charged
        assert code == ["XXXXXXX"] and _text(doc, "//CessionarioCommittente//IdPaese") == ["DE"]
        assert set(_text(doc, "//Natura")) == {"N2.1"} and _text(doc, "//DatiRiepilogo/Imposta") == ["0.00"]
        assert "7-ter" in _text(doc, "//RiferimentoNormativo")[0]


def test_italian_credit_note_is_td04_and_names_the_invoice(shop):
    buyer = shop.signup("IT", top_up="5000.00", **IT_CASES["it-consumer"])
    order = shop.order(buyer, PLAN)
    setup = next(line for line in order["invoice"]["lines"] if line["kind"] == "setup")
    r = shop.client.post(f"/v1/staff/invoices/{order['invoice']['id']}/credit-notes",
                         json={"reason": "Costo di attivazione offerto", "lines": [{"line_id": setup["id"]}]},
                         headers={**shop.staff(), "Idempotency-Key": "gesture"})
    assert r.status_code == 201, r.text
    note = r.json()
    xml, _ = _national(shop, buyer, note["id"])
    assert schemas.problems("IT", xml) == []
    _golden("it-credit-note.fpr12.xml", xml)
    doc = _fpa(xml)
    assert _text(doc, "//TipoDocumento") == ["TD04"]
    assert _text(doc, "//DatiFattureCollegate/IdDocumento") == [order["invoice"]["number"]]
    assert _text(doc, "//ImportoTotaleDocumento") == [note["total"]["amount"]]


def test_italian_usage_invoice_keeps_the_exact_unit_prices_and_goes_by_pec(shop, client, clock):
    buyer = shop.signup("IT", top_up="5000.00", kind="company", name="Nuvola S.p.A.", vat_number="IT09876540155",
                        einvoice={"pec": "fatture@pec.nuvola.it", **MILANO})
    project = shop.order(buyer, PROJECT)["services"][0]["id"]
    clock.set("2026-02-01T00:00:00+00:00")
    send(client, buyer, hourly(project, "b3-8", range(100))  # 100 × 0.0511
         + hourly(project, "vol", range(744), metric="block_storage_gb_hours", dimension=None, quantity="100"))
    clock.set("2026-02-01T03:00:00+00:00")
    shop.bill_usage(dt.date(2026, 1, 1))
    [usage] = usage_invoices(client, buyer)
    invoice = client.get(f"/v1/invoices/{usage['id']}", headers=buyer["headers"]).json()
    xml, _ = _national(shop, buyer, invoice["id"])
    assert schemas.problems("IT", xml) == []
    _golden("it-usage.fpr12.xml", xml)
    doc = _fpa(xml)
    assert _text(doc, "//CodiceDestinatario") == ["0000000"] and _text(doc, "//PECDestinatario") == ["fatture@pec.nuvola.it"]
    metered = [ln for ln in invoice["lines"] if ln["unit_price_exact"]]
    assert metered and [p for p in _text(doc, "//PrezzoUnitario") if len(p.split(".")[1]) > 2]
    assert _text(doc, "//ImportoTotaleDocumento") == [invoice["total"]["amount"]]


def test_a_tampered_fatturapa_fails_its_schema():
    good = (GOLDEN / "it-business.fpr12.xml").read_bytes()
    assert schemas.problems("IT", good) == []
    for before, after in [(b"<CodiceDestinatario>M5UXCR1<", b"<CodiceDestinatario>M5UX<"),  # 4 characters
                          (b"<TipoDocumento>TD01<", b"<TipoDocumento>TD99<"),
                          (b"<ImportoTotaleDocumento>", b"<ImportoTotaleDocumento>1,")]:
        assert before in good
        assert schemas.problems("IT", good.replace(before, after)), after


def test_the_buyer_data_fatturapa_needs_is_storefront_data_checked_at_sign_up(shop):
    r = shop.client.post("/v1/customers", json={"subsidiary": "IT", "name": "Giulia Rossi", "email": "g@example.com",
                                                "einvoice": {"codice_destinatario": "ABC", "sdi": "x"}})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"einvoice.codice_destinatario", "einvoice.sdi"}
    r = shop.client.post("/v1/customers", json={"subsidiary": "FR", "name": "Camille Martin", "email": "c@example.com",
                                                "einvoice": {"codice_fiscale": "RSSGLI80A41F205Z"}})
    assert r.status_code == 422  # the French storefront asks for none of it
    # a consumer without a codice fiscale gets no FatturaPA, but a 422 that says what is missing
    buyer = shop.signup("IT", top_up="500.00", kind="person", name="Mario Bianchi", einvoice=MILANO)
    invoice = shop.order(buyer, PLAN)["invoice"]
    r = shop.client.get(f"/v1/invoices/{invoice['id']}/national", headers=buyer["headers"])
    assert r.status_code == 422 and r.json()["code"] == "missing_einvoice_field"


def test_a_buyer_corrects_its_einvoice_data_and_the_next_invoice_carries_it(shop, other_db):
    """Data missing at sign-up is added later (PUT /v1/me/einvoice, audited): the invoice issued
    before keeps what it was issued with, the next one carries the correction; both, and the
    account's data, go with the export."""
    from core.portability import account_import, export

    buyer = shop.signup("IT", top_up="500.00", kind="person", name="Mario Bianchi", einvoice=MILANO)
    before = shop.order(buyer, PLAN)["invoice"]
    assert shop.client.get("/v1/me", headers=buyer["headers"]).json()["einvoice"] == MILANO
    r = shop.client.put("/v1/me/einvoice", json={"codice_fiscale": "BNCMRA80A01F205X", **MILANO}, headers=buyer["headers"])
    assert r.status_code == 200, r.text
    assert r.json()["einvoice"] == {"codice_fiscale": "BNCMRA80A01F205X", **MILANO}
    bad = shop.client.put("/v1/me/einvoice", json={"codice_fiscale": "no", "sdi": "x"}, headers=buyer["headers"])
    assert bad.status_code == 422 and {e["field"] for e in bad.json()["errors"]} == {"einvoice.codice_fiscale", "einvoice.sdi"}
    r = shop.client.get(f"/v1/invoices/{before['id']}/national", headers=buyer["headers"])
    assert r.status_code == 422 and r.json()["code"] == "missing_einvoice_field"  # as it was issued
    after = shop.order(buyer, PLAN)["invoice"]
    content, _ = _national(shop, buyer, after["id"])
    assert b"<CodiceFiscale>BNCMRA80A01F205X</CodiceFiscale>" in content
    events = shop.client.get("/v1/me/export", headers=buyer["headers"]).json()
    assert events["account"]["einvoice"]["codice_fiscale"] == "BNCMRA80A01F205X"
    issued = {i["id"]: i["buyer"]["einvoice"] for i in events["invoices"]}
    assert issued[before["id"]] == MILANO and issued[after["id"]]["codice_fiscale"] == "BNCMRA80A01F205X"
    assert any(e["action"] == "account.einvoice_changed" for e in events["audit"])
    with unit_of_work(other_db) as conn:
        result = account_import.import_account(conn, other_db, events)
        again = export.export_account(conn, other_db, result.account_id, documents=False)
    assert again["account"]["einvoice"] == events["account"]["einvoice"]
    assert [i["buyer"] for i in again["invoices"]] == [i["buyer"] for i in events["invoices"]]
    french = shop.signup("FR")
    r = shop.client.put("/v1/me/einvoice", json={"address": "1 rue X"}, headers=french["headers"])
    assert r.status_code == 422 and r.json()["code"] == "no_einvoice_fields"


# --- Poland: KSeF FA(3) ----------------------------------------------------------------------------

KSEF = {"k": pl.NS}
WROCLAW = {"address": "ul. Świdnicka 40", "postcode": "50-024", "city": "Wrocław"}
PL_CASES = {
    "pl-consumer": {"kind": "person", "name": "Anna Kowalska", "language": "pl_PL"},
    "pl-business": {"kind": "company", "name": "Kowalski Hosting Sp. z o.o.", "vat_number": "PL5260250274",
                    "einvoice": WROCLAW},
    "pl-de-reverse-charge": {"kind": "company", "name": "Berlin Hosting GmbH", "country": "DE",
                             "vat_number": "DE136695976", "language": "en"},
}


def _k(doc, path: str) -> list[str]:
    return [el.text for el in doc.xpath(path, namespaces=KSEF)]


@pytest.mark.parametrize("case", sorted(PL_CASES))
def test_polish_golden_invoice(shop, case):
    customer = PL_CASES[case]
    buyer = shop.signup("PL", top_up="5000.00", email="billing@example.com", **customer)
    if customer.get("country"):
        _confirm(shop, buyer)
    invoice = shop.order(buyer, PLAN)["invoice"]
    xml, disposition = _national(shop, buyer, invoice["id"])
    assert schemas.problems("PL", xml) == []
    _golden(f"{case}.fa3.xml", xml)
    assert f"{invoice['number']}-ksef.xml" in disposition
    doc = etree.fromstring(xml)
    assert _k(doc, "//k:Fa/k:P_1") == [invoice["issued_on"]] and _k(doc, "//k:Fa/k:P_2") == [invoice["number"]]
    assert _k(doc, "//k:Fa/k:P_15") == [invoice["total"]["amount"]] and _k(doc, "//k:RodzajFaktury") == ["VAT"]
    assert _k(doc, "//k:Podmiot1//k:NIP") == ["5260001246"]
    assert len(_k(doc, "//k:FaWiersz/k:NrWierszaFa")) == len(invoice["lines"])
    if case == "pl-consumer":
        assert _k(doc, "//k:Podmiot2//k:BrakID") == ["1"]
        assert _k(doc, "//k:P_13_1") == [invoice["net"]["amount"]] and _k(doc, "//k:P_14_1") == [invoice["tax"]["amount"]]
        assert set(_k(doc, "//k:P_12")) == {"23"}
    elif case == "pl-business":
        assert _k(doc, "//k:Podmiot2//k:NIP") == ["5260250274"] and _k(doc, "//k:Podmiot2//k:AdresL1") == ["ul. Świdnicka 40"]
    else:  # services to an EU business: "np II", reverse charge
        assert _k(doc, "//k:Podmiot2//k:KodUE") == ["DE"] and _k(doc, "//k:P_13_9") == [invoice["net"]["amount"]]
        assert set(_k(doc, "//k:P_12")) == {"np II"} and _k(doc, "//k:P_18") == ["1"]


def test_polish_usage_invoice_keeps_the_exact_quantities_and_prices(shop, client, clock):
    buyer = shop.signup("PL", top_up="5000.00", kind="company", name="Chmura S.A.", vat_number="PL1234563218")
    project = shop.order(buyer, PROJECT)["services"][0]["id"]
    clock.set("2026-02-01T00:00:00+00:00")
    send(client, buyer, hourly(project, "b3-8", range(100))
         + hourly(project, "vol", range(744), metric="block_storage_gb_hours", dimension=None, quantity="100"))
    clock.set("2026-02-01T03:00:00+00:00")
    shop.bill_usage(dt.date(2026, 1, 1))
    [usage] = usage_invoices(client, buyer)
    invoice = client.get(f"/v1/invoices/{usage['id']}", headers=buyer["headers"]).json()
    xml, _ = _national(shop, buyer, invoice["id"])
    assert schemas.problems("PL", xml) == []
    _golden("pl-usage.fa3.xml", xml)
    doc = etree.fromstring(xml)
    prices = {ln["unit_price_exact"] for ln in invoice["lines"] if ln["unit_price_exact"]}
    assert prices and prices <= set(_k(doc, "//k:P_9A"))
    assert _k(doc, "//k:P_15") == [invoice["total"]["amount"]]
    assert (_k(doc, "//k:P_6_Od"), _k(doc, "//k:P_6_Do")) == (["2026-01-01"], ["2026-01-31"])


class FakeKsef:
    """The transport of the tests: records what it was sent and accepts it with a KSeF number."""

    def __init__(self):
        self.sent: list[bytes] = []

    @hookimpl
    def univers_transmit_national_einvoice(self, ctx, document):
        if ctx.storefront != "PL":
            return None
        self.sent.append(document.content)
        number = f"5260001246-20260105-{len(self.sent):06X}-{len(self.sent):06X}-{len(self.sent) * 7 % 256:02X}"
        return EInvoiceTransmission(number, f"<UPO><NumerKSeFDokumentu>{number}</NumerKSeFDokumentu></UPO>")


def test_ksef_number_and_receipt_are_kept_and_the_correction_names_them(shop, rt):
    from core.billing.documents import transmit
    from core.uow import unit_of_work

    fake = FakeKsef()
    rt.pm.register(fake, name="fake-ksef")
    buyer = shop.signup("PL", top_up="5000.00", **PL_CASES["pl-business"])
    order = shop.order(buyer, PLAN)
    invoice = order["invoice"]
    pdf_before = shop.client.get(f"/v1/invoices/{invoice['id']}/pdf", headers=buyer["headers"])
    staff = shop.staff()
    url = f"/v1/staff/invoices/{invoice['id']}/national/transmission"
    assert shop.client.post(url, headers=buyer["headers"]).status_code in (403, 404)  # staff only
    r = shop.client.post(url, headers=staff)
    assert r.status_code == 200, r.text
    receipt = r.json()
    assert shop.client.post(url, headers=staff).json() == receipt  # kept: sent once, never again
    with unit_of_work(rt) as conn:
        assert transmit(conn, rt, invoice["id"])["reference"] == receipt["reference"]
    assert len(fake.sent) == 1 and receipt["reference"].startswith("5260001246-20260105-")
    assert receipt["sha256"] == hashlib.sha256(fake.sent[0]).hexdigest() and "<UPO>" in receipt["receipt"]
    xml, _ = _national(shop, buyer, invoice["id"])
    assert xml == fake.sent[0]  # the document served is the one KSeF accepted

    # the PDF carries the verification link as a QR code: OFFLINE before, the KSeF number after
    url = pl.verification_url(xml, "5260001246", invoice["issued_on"])
    digest = base64.urlsafe_b64encode(hashlib.sha256(xml).digest()).rstrip(b"=").decode()
    assert url == f"https://qr.ksef.mf.gov.pl/invoice/5260001246/05-01-2026/{digest}"
    pdf_after = shop.client.get(f"/v1/invoices/{invoice['id']}/pdf", headers=buyer["headers"])
    for response, label in ((pdf_before, "OFFLINE"), (pdf_after, receipt["reference"])):
        assert response.status_code == 200 and check_pdfa(response.content) == []
        text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)
        assert label in text
    import segno

    assert qr_matrix(pdf_after.content) == [[v & 1 for v in row] for row in segno.make(url, error="m").matrix]

    setup = next(line for line in invoice["lines"] if line["kind"] == "setup")
    r = shop.client.post(f"/v1/staff/invoices/{invoice['id']}/credit-notes",
                         json={"reason": "Rabat za instalację", "lines": [{"line_id": setup["id"]}]},
                         headers={**shop.staff(), "Idempotency-Key": "gesture"})
    assert r.status_code == 201, r.text
    note = r.json()
    xml, _ = _national(shop, buyer, note["id"])
    assert schemas.problems("PL", xml) == []
    _golden("pl-credit-note.fa3.xml", xml)
    doc = etree.fromstring(xml)
    assert _k(doc, "//k:RodzajFaktury") == ["KOR"]
    assert _k(doc, "//k:DaneFaKorygowanej/k:NrFaKorygowanej") == [invoice["number"]]
    assert _k(doc, "//k:DaneFaKorygowanej/k:NrKSeFFaKorygowanej") == [receipt["reference"]]
    assert _k(doc, "//k:P_15") == [f"-{note['total']['amount']}"]


def test_a_tampered_ksef_invoice_fails_its_schema():
    good = (GOLDEN / "pl-business.fa3.xml").read_bytes()
    assert schemas.problems("PL", good) == []
    for before, after in [(b"<RodzajFaktury>VAT<", b"<RodzajFaktury>FAKE<"),
                          (b"<NIP>5260001246<", b"<NIP>0260001246<"),  # not a NIP
                          (b"<P_15>", b"<P_15>1.234")]:
        assert before in good
        assert schemas.problems("PL", good.replace(before, after)), after


def test_no_transport_no_receipt(shop, rt):
    from core.billing.documents import transmit
    from core.errors import InvalidInput
    from core.uow import unit_of_work

    buyer = shop.signup("PL", top_up="500.00", **PL_CASES["pl-consumer"])
    invoice = shop.order(buyer, PLAN)["invoice"]
    with pytest.raises(InvalidInput) as caught, unit_of_work(rt) as conn:
        transmit(conn, rt, invoice["id"])
    assert caught.value.code == "no_national_transport"


def test_a_foreign_invoice_to_an_italian_business_carries_what_td17_needs(shop):
    """The Italian buyer of a foreign supplier self-invoices the service as TD17: the supplier's
    invoice must give its VAT id, its number and date, the period, the net amounts and the
    reverse charge (no VAT charged), which the EN 16931 documents of the EU storefronts carry."""
    buyer = shop.signup("FR", top_up="5000.00", kind="company", name="Rossi Hosting S.r.l.", country="IT",
                        vat_number="IT01234560157")
    _confirm(shop, buyer)
    invoice = shop.order(buyer, PLAN)["invoice"]
    ubl = etree.fromstring(shop.client.get(f"/v1/invoices/{invoice['id']}/ubl", headers=buyer["headers"]).content)
    ns = {"cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
          "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}

    def text(path):
        return [el.text for el in ubl.xpath(path, namespaces=ns)]

    assert text("cac:AccountingSupplierParty//cac:PartyTaxScheme/cbc:CompanyID") == ["FR40303265045"]
    assert text("cac:AccountingCustomerParty//cac:PartyTaxScheme/cbc:CompanyID") == ["IT01234560157"]
    assert text("cbc:ID") == [invoice["number"]] and text("cbc:IssueDate") == [invoice["issued_on"]]
    assert text("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:ID") == ["AE"]
    assert text("cac:TaxTotal/cbc:TaxAmount") == ["0.00"]
    assert text("cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount") == [invoice["net"]["amount"]]
    assert sorted(text("cac:InvoiceLine/cbc:LineExtensionAmount")) == sorted(ln["net"]["amount"] for ln in invoice["lines"])
    assert text("cac:InvoiceLine/cac:InvoicePeriod/cbc:StartDate")


def test_sdi_transport_is_a_hook_and_an_accepted_fatturapa_is_sent_once(shop, rt):
    from core.billing.documents import transmit
    from core.uow import unit_of_work

    class FakeSdi:
        sent: list[tuple[str, bytes]] = []

        @hookimpl
        def univers_transmit_national_einvoice(self, ctx, document):
            if ctx.storefront != "IT":
                return None
            self.sent.append((document.filename, document.content))
            return EInvoiceTransmission(f"SDI-{len(self.sent)}", "<RicevutaConsegna><Esito>OK</Esito></RicevutaConsegna>")

    fake = FakeSdi()
    rt.pm.register(fake, name="fake-sdi")
    buyer = shop.signup("IT", top_up="500.00", **IT_CASES["it-business"])
    invoice = shop.order(buyer, PLAN)["invoice"]
    for _ in range(2):
        with unit_of_work(rt) as conn:
            receipt = transmit(conn, rt, invoice["id"])
    [(name, content)] = fake.sent
    assert receipt["reference"] == "SDI-1" and name == f"IT00743110157_{it.progressive(invoice)}.xml"
    assert schemas.problems("IT", content) == [] and receipt["sha256"] == hashlib.sha256(content).hexdigest()


def test_schema_imports_are_answered_offline_or_refused():
    """The Polish schema imports crd.gov.pl URLs: the vendored copies answer them; an import
    that is not vendored is refused rather than fetched."""
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(schemas._Local())
    xsd = b"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:t">
      <xs:import namespace="urn:x" schemaLocation="http://example.com/not-vendored.xsd"/></xs:schema>"""
    with pytest.raises(etree.XMLSchemaParseError):
        etree.XMLSchema(etree.fromstring(xsd, parser))
    assert schemas.schema("PL") is schemas.schema("PL")  # built once
