"""The fiscal chain of the Portuguese and Spanish storefronts: every issued document is a record
hashed with the one before, the database refuses to change or delete a record, and a chain that
was tampered with fails verification at the record that was touched."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from core.billing import chain
from core.models import FiscalRecord, Invoice
from core.uow import unit_of_work

rec = FiscalRecord.__table__
inv = Invoice.__table__
PLAN = "web-hosting-starter-p1m"
UTC = dt.timezone.utc

# The worked examples of the AEAT's "Detalle de las especificaciones técnicas para generación de la
# huella o hash de los registros de facturación" (version 0.1.2, sede.agenciatributaria.gob.es,
# VERI*FACTU technical information): case 1, the first registration record of a system (empty
# previous hash); case 2, the next one; case 3, an annulment after case 2. Times are Spain's
# peninsula winter time (+01:00), 18:20:30 UTC being 19:20:30 in Madrid.
AEAT_CASE_1 = {"kind": "alta", "issuer_id": "89890001K", "number": "12345678/G33", "issued_on": dt.date(2024, 1, 1),
               "doc_type": "F1", "tax_minor": 1235, "total_minor": 12345, "prev_hash": "",
               "generated_at": dt.datetime(2024, 1, 1, 18, 20, 30, tzinfo=UTC)}
AEAT_HASH_1 = "3C464DAF61ACB827C65FDA19F352A4E3BDC2C640E9E9FC4CC058073F38F12F60"
AEAT_CASE_2 = {**AEAT_CASE_1, "number": "12345679/G34", "prev_hash": AEAT_HASH_1,
               "generated_at": dt.datetime(2024, 1, 1, 18, 20, 35, tzinfo=UTC)}
AEAT_HASH_2 = "F7B94CFD8924EDFF273501B01EE5153E4CE8F259766F88CF6ACB8935802A2B97"
AEAT_CASE_3 = {**AEAT_CASE_2, "kind": "anulacion", "prev_hash": AEAT_HASH_2,
               "generated_at": dt.datetime(2024, 1, 1, 18, 20, 40, tzinfo=UTC)}
AEAT_HASH_3 = "177547C0D57AC74748561D054A9CEC14B4C4EA23D1BEFD6F2E69E3A388F90C68"


def test_the_spanish_hash_is_the_aeats_on_its_published_examples(rt):
    spain = rt.storefronts["ES"]
    assert chain.Spain.canonical(spain, AEAT_CASE_1) == (
        "IDEmisorFactura=89890001K&NumSerieFactura=12345678/G33&FechaExpedicionFactura=01-01-2024&TipoFactura=F1"
        "&CuotaTotal=12.35&ImporteTotal=123.45&Huella=&FechaHoraHusoGenRegistro=2024-01-01T19:20:30+01:00")
    assert chain.Spain.canonical(spain, AEAT_CASE_3) == (
        "IDEmisorFacturaAnulada=89890001K&NumSerieFacturaAnulada=12345679/G34&FechaExpedicionFacturaAnulada=01-01-2024"
        f"&Huella={AEAT_HASH_2}&FechaHoraHusoGenRegistro=2024-01-01T19:20:40+01:00")
    for case, expected in ((AEAT_CASE_1, AEAT_HASH_1), (AEAT_CASE_2, AEAT_HASH_2), (AEAT_CASE_3, AEAT_HASH_3)):
        assert chain.Spain.sign(rt.settings, chain.Spain.canonical(spain, case)) == expected


def test_the_portuguese_signature_is_rsa_sha1_of_the_portaria_fields(rt):
    """Portaria 363/2010: InvoiceDate;SystemEntryDate;InvoiceNo;GrossTotal;previous hash, signed
    RSA-SHA1 and Base64-encoded; anyone with the public key can check it."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    portugal = rt.storefronts["PT"]
    record = {"number": "FT PT2026/1", "issued_on": dt.date(2026, 3, 2), "total_minor": 12300, "prev_hash": "",
              "generated_at": dt.datetime(2026, 3, 2, 9, 30, 5, tzinfo=UTC)}
    message = chain.Portugal.canonical(portugal, record)
    assert message == "2026-03-02;2026-03-02T09:30:05;FT PT2026/1;123.00;"  # Lisbon is on UTC in March
    signature = chain.Portugal.sign(rt.settings, message)
    assert len(signature) == 172  # 1024-bit key, Base64
    public = load_pem_public_key((Path(chain.TEST_KEY).parent / "pt-test-key.pub.pem").read_bytes())
    public.verify(base64.b64decode(signature), message.encode(), padding.PKCS1v15(), hashes.SHA1())
    assert not chain.Portugal.check(rt.settings, message.replace("123.00", "124.00"), signature)


@pytest.fixture
def spanish_documents(shop):
    """A consumer's invoice, a business's invoice and a full credit note of the latter, in Spain."""
    person = shop.signup("ES", kind="person", name="Lucía Pérez", top_up="100.00")
    business = shop.signup("ES", name="Acme Ibérica S.L.", vat_number="ESB58378431", top_up="100.00")
    first = shop.order(person, PLAN)["invoice"]
    second = shop.order(business, PLAN)["invoice"]
    r = shop.client.post(f"/v1/staff/invoices/{second['id']}/credit-notes", json={"reason": "Billed by mistake"},
                         headers={**shop.staff(), "Idempotency-Key": "cn-1"})
    assert r.status_code == 201, r.text
    return first, second, r.json()


def _records(rt):
    with rt.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(rec).order_by(rec.c.subsidiary, rec.c.chain, rec.c.position)).mappings()]


def _verify_all(rt):
    with rt.engine.connect() as conn:
        return {name: chain.verify(conn, rt, sub, name) for sub, name in chain.chains(conn)}


def test_spanish_documents_are_registered_in_their_series_chains(shop, spanish_documents):
    first, second, credit = spanish_documents
    records = _records(shop.rt)
    assert [(r["chain"], r["position"], r["invoice_id"], r["doc_type"], r["total_minor"]) for r in records] == [
        ("ES", 1, first["id"], "F2", first_total := records[0]["total_minor"]),  # a consumer: simplified
        ("ES", 2, second["id"], "F1", records[1]["total_minor"]),  # a business, identified by its NIF
        ("ESC", 1, credit["id"], "R1", -records[1]["total_minor"]),  # the credit: a rectifying record, negative
    ]
    assert first_total > 0 and records[0]["issuer_id"] == "A12345674" and records[0]["number"] == first["number"]
    assert records[1]["prev_hash"] == records[0]["hash"] and records[2]["prev_hash"] == ""
    checks = _verify_all(shop.rt)
    assert set(checks) == {"ES", "ESC"} and all(c.ok for c in checks.values()), checks


def test_an_annulment_is_one_more_record_and_the_chain_still_verifies(shop, spanish_documents):
    first, _second, _credit = spanish_documents
    with unit_of_work(shop.rt) as conn:
        annulment = chain.annul(conn, shop.rt, first["id"])
    with unit_of_work(shop.rt) as conn:
        again = chain.annul(conn, shop.rt, first["id"])  # idempotent
    assert again["position"] == annulment["position"] == 3 and annulment["kind"] == "anulacion"
    records = [r for r in _records(shop.rt) if r["chain"] == "ES"]
    assert [r["kind"] for r in records] == ["alta", "alta", "anulacion"]
    assert records[2]["prev_hash"] == records[1]["hash"]
    assert all(c.ok for c in _verify_all(shop.rt).values())


def test_a_french_invoice_has_no_fiscal_record(shop):
    shop.order(shop.signup("FR", top_up="100.00"), PLAN)
    assert _records(shop.rt) == []


@pytest.mark.parametrize("statement", [
    "UPDATE fiscal_record SET total_minor = 1 WHERE position = 1",
    "UPDATE fiscal_record SET hash = 'x' WHERE position = 1",
    "DELETE FROM fiscal_record WHERE position = 2",
])
def test_the_database_refuses_to_change_or_delete_a_record(shop, spanish_documents, statement):
    before = _records(shop.rt)
    with pytest.raises(DBAPIError, match="fiscal_record_immutable"):
        with unit_of_work(shop.rt) as conn:
            conn.execute(text(statement))
    assert _records(shop.rt) == before


def _without_triggers(conn):
    """What an attacker with the database's owner rights would do first."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("ALTER TABLE fiscal_record DISABLE TRIGGER fiscal_record_frozen"))
    else:
        conn.execute(text("DROP TRIGGER fiscal_record_frozen_update"))
        conn.execute(text("DROP TRIGGER fiscal_record_frozen_delete"))


@pytest.mark.parametrize("storefront", ["ES", "PT"])
@pytest.mark.parametrize("tamper, position, problem", [
    ("UPDATE fiscal_record SET total_minor = total_minor - 100 WHERE position = 2", 2, "hash does not match"),
    ("UPDATE fiscal_record SET hash = prev_hash WHERE position = 2", 2, "hash does not match"),
    ("DELETE FROM fiscal_record WHERE position = 2", 2, "missing record"),
])
def test_a_tampered_chain_fails_verification_where_it_was_touched(shop, storefront, tamper, position, problem):
    customer = shop.signup(storefront, top_up="200.00")
    for _ in range(3):
        shop.order(customer, PLAN)
    (name,) = {r["chain"] for r in _records(shop.rt)}
    assert _verify_all(shop.rt)[name].ok
    with unit_of_work(shop.rt) as conn:
        _without_triggers(conn)
        conn.execute(text(tamper))
    check = _verify_all(shop.rt)[name]
    assert not check.ok
    assert check.problems[0][0] == position and problem in check.problems[0][1], check.problems


def test_a_record_that_no_longer_matches_its_invoice_fails_verification(shop):
    customer = shop.signup("PT", top_up="100.00")
    shop.order(customer, PLAN)
    shop.order(customer, PLAN)
    with unit_of_work(shop.rt) as conn:  # re-signed with the key, but not what the invoice says
        _without_triggers(conn)
        record = dict(conn.execute(select(rec).where(rec.c.position == 2)).mappings().one())
        record["total_minor"] += 100
        fixed = chain.Portugal.sign(shop.rt.settings, chain.Portugal.canonical(shop.rt.storefronts["PT"], record))
        conn.execute(rec.update().where(rec.c.id == record["id"]).values(total_minor=record["total_minor"], hash=fixed))
    (check,) = _verify_all(shop.rt).values()
    assert check.problems == [(2, "record differs from the issued document")]


class RecordedAeat:
    """A fake VERI*FACTU transport: it keeps what it was sent and answers from a script."""

    def __init__(self, answers=()):
        self.sent: list = []
        self.answers = list(answers)

    from core import hookimpl

    @hookimpl
    def univers_submit_fiscal_record(self, ctx):
        if ctx.storefront != "ES":
            return None
        from core.context import FiscalReceipt
        from plugins.national import es

        xml = es.registro(ctx.invoice, ctx.fiscal, ctx.record)
        assert es.validate(xml) == []
        self.sent.append((ctx.record["chain"], ctx.record["position"], ctx.record["kind"], ctx.record["hash"]))
        status = self.answers.pop(0) if self.answers else "accepted"
        return FiscalReceipt(status, reference=f"CSV{len(self.sent):04d}" if status == "accepted" else None,
                             detail="1100: NIF no identificado" if status == "rejected" else None)


@pytest.fixture
def aeat(rt):
    fake = RecordedAeat()
    rt.pm.register(fake, name="recorded-aeat")
    yield fake
    rt.pm.unregister(name="recorded-aeat")


def test_records_are_submitted_in_chain_order_and_answered_once(shop, spanish_documents, aeat):
    from core.billing import fiscal
    from core.models import FiscalSubmission

    with unit_of_work(shop.rt) as conn:
        chain.annul(conn, shop.rt, spanish_documents[0]["id"])
    aeat.answers = ["accepted", "retry"]  # the second record does not get through: its chain waits
    first = fiscal.submit(shop.rt)
    assert [s[:3] for s in aeat.sent] == [("ES", 1, "alta"), ("ES", 2, "alta"), ("ESC", 1, "alta")]
    assert (first.accepted, first.rejected, first.waiting) == (2, 0, 2)  # ES 2 to retry, ES 3 waiting behind it
    aeat.answers = ["rejected"]
    second = fiscal.submit(shop.rt)
    assert [s[:3] for s in aeat.sent[3:]] == [("ES", 2, "alta"), ("ES", 3, "anulacion")]
    assert (second.accepted, second.rejected, second.waiting) == (1, 1, 0)
    assert fiscal.submit(shop.rt).answers == [] and len(aeat.sent) == 5  # nothing twice
    with shop.rt.engine.connect() as conn:
        kept = conn.execute(select(FiscalSubmission.__table__.c.status, FiscalSubmission.__table__.c.reference)
                            .order_by(FiscalSubmission.__table__.c.record_id)).all()
    assert sorted(s for s, _ in kept) == ["accepted", "accepted", "accepted", "rejected"]
    assert all(ref.startswith("CSV") for s, ref in kept if s == "accepted")


def test_without_a_transport_nothing_is_recorded_as_sent(shop, spanish_documents):
    from core.billing import fiscal

    summary = fiscal.submit(shop.rt)
    assert summary.no_transport and summary.answers == [] and summary.waiting == 3
