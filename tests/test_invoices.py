"""Invoices once issued never change; numbers are gapless under concurrency; corrections are
credit notes with their own numbers."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from core.billing import invoicing
from core.models import BalanceEntry, Invoice, InvoiceLine, InvoiceTax
from core.uow import unit_of_work

inv = Invoice.__table__
PLAN = "web-hosting-starter-p1m"


@pytest.fixture
def issued(shop):
    acme = shop.signup("FR", top_up="100.00")
    order = shop.order(acme, PLAN)
    return acme, order["invoice"]


def _snapshot(rt, invoice_id):
    with rt.engine.connect() as conn:
        return (
            dict(conn.execute(select(inv).where(inv.c.id == invoice_id)).mappings().one()),
            conn.execute(select(InvoiceLine.__table__).where(InvoiceLine.__table__.c.invoice_id == invoice_id)).all(),
            conn.execute(select(InvoiceTax.__table__).where(InvoiceTax.__table__.c.invoice_id == invoice_id)).all(),
        )


@pytest.mark.parametrize("statement", [
    "UPDATE invoice SET total_minor = 1 WHERE id = :id",
    "UPDATE invoice SET seq = seq + 100 WHERE id = :id",  # renumbering
    "UPDATE invoice SET buyer_name = 'Someone else' WHERE id = :id",
    """UPDATE invoice SET buyer_einvoice = '{"pec": "x@pec.example"}' WHERE id = :id""",  # as issued
    "DELETE FROM invoice WHERE id = :id",
    "UPDATE invoice_line SET net_minor = 1 WHERE invoice_id = :id",
    "DELETE FROM invoice_line WHERE invoice_id = :id",
    "UPDATE invoice_tax SET tax_minor = 0 WHERE invoice_id = :id",
    "DELETE FROM invoice_tax WHERE invoice_id = :id",
    "INSERT INTO invoice_line (invoice_id, kind, universe, product_code, plan_code, period_start, period_end, quantity, "
    "unit_price_minor, net_minor, tax_name, tax_category, tax_rate_ppm) "
    "VALUES (:id, 'setup', 'web', 'x', 'x', '2026-01-05', '2026-01-05', 1, 100, 100, 'VAT', 'S', 200000)",
])
def test_an_issued_invoice_cannot_be_changed_and_nothing_moves(shop, issued, statement):
    _acme, invoice = issued
    before = _snapshot(shop.rt, invoice["id"])
    with pytest.raises(DBAPIError, match="invoice_immutable"):
        with unit_of_work(shop.rt) as conn:
            conn.execute(text(statement), {"id": invoice["id"]})
    assert _snapshot(shop.rt, invoice["id"]) == before


def test_paying_an_issued_invoice_is_still_allowed(shop):
    acme = shop.signup("FR")
    order = shop.order(acme, PLAN, payment={"method": "test", "outcome": "pending"})
    with unit_of_work(shop.rt) as conn:  # the payment status is the one thing that moves
        conn.execute(update(inv).where(inv.c.id == order["invoice"]["id"]).values(status="paid"))


@pytest.mark.parametrize("storefront", ["FR", "ES", "PT"])
def test_concurrent_workers_use_every_number_once(rt, clock, engine_name, storefront):
    """8 workers issue invoices at once: every number from 1 to N is used exactly once, and where the
    storefront keeps a fiscal chain (Spain, Portugal) it has one record per number, gapless, each
    linked to the one before, and it verifies."""
    from core.billing import chain
    from core.customers.accounts import create_customer
    from core.models import FiscalRecord

    with unit_of_work(rt) as conn:
        account, _key = create_customer(conn, rt, {"subsidiary": storefront, "name": "Acme", "email": "a@acme.example"})
    workers, per_worker = 8, 15
    errors: list[Exception] = []

    def worker():
        try:
            for _ in range(per_worker):
                with unit_of_work(rt) as conn:
                    invoice_id = conn.execute(insert(inv).values(
                        account_id=account["id"], subsidiary=storefront, currency="EUR", kind="order", status="draft",
                        series=storefront, due_on=clock.today(), created_at=clock.now(), buyer_name="Acme",
                        buyer_country=storefront, total_minor=1210, tax_minor=210, net_minor=1000,
                    ).returning(inv.c.id)).scalar_one()
                    invoicing.issue(conn, inv.c.id == invoice_id, clock.today(), rt)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    n = workers * per_worker
    rec = FiscalRecord.__table__
    with rt.engine.connect() as conn:
        seqs = conn.execute(select(inv.c.seq).where(inv.c.series == storefront).order_by(inv.c.seq)).scalars().all()
        records = conn.execute(select(rec.c.position, rec.c.prev_hash, rec.c.hash, inv.c.seq)
                               .join(inv, inv.c.id == rec.c.invoice_id).order_by(rec.c.position)).all()
        chains = chain.chains(conn)
        checks = [chain.verify(conn, rt, sub, name) for sub, name in chains]
    assert seqs == list(range(1, n + 1))
    if storefront == "FR":  # no fiscal chain in France
        assert records == [] and chains == []
        return
    assert [r.position for r in records] == list(range(1, n + 1))
    assert [r.seq for r in records] == seqs  # the chain follows the numbers
    assert [r.prev_hash for r in records] == [""] + [r.hash for r in records[:-1]]
    assert len(checks) == 1 and checks[0].ok and checks[0].records == n, checks


def _credit(shop, invoice_id, key="cn-1", expect=201, **body):
    r = shop.client.post(f"/v1/staff/invoices/{invoice_id}/credit-notes", json={"reason": "Billed by mistake", **body},
                         headers={**shop.staff(), "Idempotency-Key": key, "Accept-Language": "fr"})
    assert r.status_code == expect, r.text
    return r.json()


def _balance(shop, customer):
    return shop.client.get("/v1/me", headers=customer["headers"]).json()["balance"]["amount_minor"]


def test_a_full_credit_note_refunds_a_paid_invoice_to_the_balance(shop, issued):
    acme, invoice = issued
    balance = _balance(shop, acme)
    note = _credit(shop, invoice["id"])
    assert note["kind"] == "credit_note" and note["title"] == "Avoir" and note["number"] == "FRC-2026-000001"
    assert note["credits"] == invoice["number"] and note["reason"] == "Billed by mistake"
    assert note["total"]["amount_minor"] == invoice["total"]["amount_minor"]
    assert [(t["category"], t["rate"], t["tax"]["amount_minor"]) for t in note["taxes"]] == [
        (t["category"], t["rate"], t["tax"]["amount_minor"]) for t in invoice["taxes"]]
    assert _balance(shop, acme) == balance + invoice["total"]["amount_minor"]
    assert shop.count(BalanceEntry) == 3  # top-up, payment, credit
    assert _credit(shop, invoice["id"], expect=200)["id"] == note["id"]  # same key: same credit note, nothing more
    assert _balance(shop, acme) == balance + invoice["total"]["amount_minor"]
    r = shop.client.post(f"/v1/staff/invoices/{invoice['id']}/credit-notes", json={"reason": "again"},
                         headers={**shop.staff(), "Idempotency-Key": "cn-2"})
    assert r.status_code == 409 and r.json()["code"] == "already_credited"


def test_a_partial_credit_never_exceeds_what_is_left_of_a_line(shop, issued):
    _acme, invoice = issued
    line = invoice["lines"][0]
    first = _credit(shop, invoice["id"], lines=[{"line_id": line["id"], "amount": "1.00"}])
    assert first["net"]["amount_minor"] == 100 and first["number"] == "FRC-2026-000001"
    r = shop.client.post(f"/v1/staff/invoices/{invoice['id']}/credit-notes",
                         json={"reason": "too much", "lines": [{"line_id": line["id"], "amount": "100.00"}]},
                         headers={**shop.staff(), "Idempotency-Key": "cn-2"})
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "credit_exceeds_line"
    rest = _credit(shop, invoice["id"], key="cn-3")
    assert rest["net"]["amount_minor"] == line["net"]["amount_minor"] - 100 and rest["number"] == "FRC-2026-000002"


def test_a_full_credit_closes_an_unpaid_invoice(shop):
    acme = shop.signup("FR")
    order = shop.order(acme, PLAN, payment={"method": "test", "outcome": "decline"})
    _credit(shop, order["invoice"]["id"])
    invoice = shop.client.get(f"/v1/invoices/{order['invoice']['id']}", headers=acme["headers"]).json()
    assert invoice["status"] == "credited" and _balance(shop, acme) == 0


def test_only_staff_issue_credit_notes(shop, issued):
    acme, invoice = issued
    r = shop.client.post(f"/v1/staff/invoices/{invoice['id']}/credit-notes", json={"reason": "please"},
                         headers={**acme["headers"], "Idempotency-Key": "k"})
    assert r.status_code == 403
    with shop.rt.engine.connect() as conn:
        assert conn.execute(select(func.count()).where(inv.c.kind == "credit_note")).scalar_one() == 0
