"""Property: for any cart, in any currency, the lines, the tax breakdown and the totals of the
invoice that the database computes agree (EN 16931: tax once per (tax, category, rate) over the
summed lines, rounded half up; totals add up exactly), and the cash total is the total rounded
to what coins can pay.

Hypothesis draws 500 batches of 20 carts, 10,000 carts per engine; each batch is finalised by
the same set-based statement as a renewal chunk.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from core.billing import invoicing
from core.customers.accounts import create_customer
from core.models import Invoice, InvoiceLine, InvoiceTax
from core.money import cash_increment, cash_minor
from core.uow import unit_of_work

inv, line, tax = Invoice.__table__, InvoiceLine.__table__, InvoiceTax.__table__
CURRENCIES = ["EUR", "PLN", "GBP", "CZK", "CAD", "USD", "SGD"]
TAXES = [("VAT", "S", 200_000, None), ("VAT", "S", 255_000, None), ("VAT", "S", 210_000, None), ("VAT", "AE", 0, None),
         ("VAT", "O", 0, None), ("GST", "S", 50_000, ("QST", 99_750)), ("HST", "S", 130_000, None), ("VAT", "S", 55_000, None)]
line_strategy = st.tuples(
    st.integers(min_value=0, max_value=5_000_000),  # unit price in minor units (up to 50,000.00)
    st.integers(min_value=1, max_value=100),  # quantity
    st.sampled_from(TAXES),
)
cart = st.tuples(st.sampled_from(CURRENCIES), st.lists(line_strategy, min_size=1, max_size=12))


def half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@settings(max_examples=500, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(carts=st.lists(cart, min_size=20, max_size=20))
def _check_batch(rt, account_id, carts):
    day = dt.date(2026, 1, 5)
    with rt.engine.connect() as conn:
        ids = []
        for currency, lines in carts:
            invoice_id = conn.execute(insert(inv).values(
                account_id=account_id, subsidiary="FR", currency=currency, kind="order", status="draft", series="PROP",
                due_on=day, created_at=rt.clock.now(), buyer_name="P", buyer_country="FR",
            ).returning(inv.c.id)).scalar_one()
            ids.append(invoice_id)
            conn.execute(insert(line), [{
                "invoice_id": invoice_id, "kind": "recurring", "universe": "web", "product_code": "p", "plan_code": "p",
                "period_start": day, "period_end": day, "quantity": qty, "unit_price_minor": unit, "net_minor": unit * qty,
                "tax_name": name, "tax_category": category, "tax_rate_ppm": rate,
                "tax2_name": stacked[0] if stacked else None, "tax2_rate_ppm": stacked[1] if stacked else None,
            } for unit, qty, (name, category, rate, stacked) in lines])
        invoicing.finalise(conn, inv.c.id.in_(ids))
        invoices = {r["id"]: r for r in conn.execute(select(inv).where(inv.c.id.in_(ids))).mappings()}
        breakdown: dict[int, list] = {}
        for r in conn.execute(select(tax).where(tax.c.invoice_id.in_(ids))).mappings():
            breakdown.setdefault(r["invoice_id"], []).append(r)
        conn.rollback()  # nothing to keep: the drafts were only computed
    for invoice_id, (currency, lines) in zip(ids, carts, strict=True):
        invoice, rows = invoices[invoice_id], breakdown[invoice_id]
        expected: dict[tuple, int] = {}
        for unit, qty, (name, category, rate, stacked) in lines:
            expected[name, category, rate] = expected.get((name, category, rate), 0) + unit * qty
            if stacked:
                expected[stacked[0], category, stacked[1]] = expected.get((stacked[0], category, stacked[1]), 0) + unit * qty
        assert {(r["name"], r["category"], r["rate_ppm"]): r["base_minor"] for r in rows} == expected
        for r in rows:  # tax once per (tax, category, rate), over the summed lines, half up
            assert r["tax_minor"] == half_up(Decimal(r["base_minor"]) * r["rate_ppm"] / 1_000_000)
        net = sum(unit * qty for unit, qty, _tax in lines)
        assert invoice["net_minor"] == net
        assert invoice["tax_minor"] == sum(r["tax_minor"] for r in rows)
        assert invoice["total_minor"] == invoice["net_minor"] + invoice["tax_minor"]
        step = cash_increment(currency)
        cash = cash_minor(invoice["total_minor"], currency)
        assert cash % step == 0 and abs(cash - invoice["total_minor"]) * 2 <= step


def test_lines_breakdown_and_totals_agree_for_10000_random_carts(rt):
    with unit_of_work(rt) as conn:
        account, _key = create_customer(conn, rt, {"subsidiary": "FR", "name": "Property", "email": "p@p.example"})
    _check_batch(rt, account["id"])


def test_cash_rounding_follows_cldr():
    assert (cash_increment("CZK"), cash_increment("CAD"), cash_increment("EUR")) == (100, 5, 1)
    assert cash_minor(123_449, "CZK") == 123_400 and cash_minor(123_450, "CZK") == 123_500
    assert cash_minor(1_002, "CAD") == 1_000 and cash_minor(1_003, "CAD") == 1_005
    assert cash_minor(1_003, "EUR") == 1_003
