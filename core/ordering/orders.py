"""One-click order: a cart checked out in one call with an idempotency key.

In one transaction: validate every line (nothing is written if one is wrong), create the
order, its services (pending) and its invoice, issue the invoice, charge it. The same key
with the same request returns the same order and charges nothing more; the same key with a
different request is refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from core import audit
from core.audit import Actor
from core.billing import invoicing
from core.catalog import SUPPORT_KIND
from core.clock import add_months
from core.context import OrderLineContext
from core.customers.partners import partner_universes
from core.db import fetch_owned
from core.errors import Conflict, InvalidInput
from core.i18n import N_
from core.lifecycle.services import RENEWAL_MODES
from core.models import Account, Invoice, InvoiceLine, Order, OrderLine, Service
from core.ordering import contracts
from core.payments.settlement import check_method, mark_paid, pay_invoice
from core.runtime import Runtime

orders = Order.__table__
order_lines = OrderLine.__table__
svc = Service.__table__
inv = Invoice.__table__
line = InvoiceLine.__table__
MAX_QUANTITY = 100


def request_hash(request: dict) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


def find_by_key(conn: Connection, account_id: int, key: str):
    return conn.execute(
        select(orders).where(orders.c.account_id == account_id, orders.c.idempotency_key == key)
    ).mappings().one_or_none()


def _validate(rt: Runtime, account: Account, request: dict, locale: str, partner_of: frozenset[str] = frozenset()
              ) -> list[tuple]:
    storefront = rt.storefronts[account.subsidiary]
    items = request.get("items") or []
    problems: list[dict] = []
    if not items:
        raise InvalidInput(N_("An order needs at least one item."), code="empty_order")
    currency = request.get("currency")
    if currency and currency != storefront.currency:
        raise InvalidInput(N_("The {storefront} storefront sells in {expected}, not {currency}."), code="wrong_currency",
                           storefront=storefront.code, expected=storefront.currency, currency=currency)
    payment = request.get("payment") or {}
    check_method(payment.get("method", "balance"), payment.get("outcome"))
    today = rt.clock.today()
    price_date = request.get("price_date")
    if isinstance(price_date, str):
        price_date = dt.date.fromisoformat(price_date)
    if price_date is not None and price_date != today:
        past = price_date < today
        raise InvalidInput(
            N_("The prices of {date} are no longer on offer: order at today's prices.") if past
            else N_("The prices of {date} are not on offer yet: order at today's prices."),
            code="price_date_in_past" if past else "price_date_in_future", date=price_date)
    lines = []
    for index, item in enumerate(items):
        where = f"items[{index}]"
        plan = rt.catalog.plans.get(str(item.get("plan", "")))
        quantity = item.get("quantity", 1)
        if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= MAX_QUANTITY:
            problems.append({"field": f"{where}.quantity", "code": "invalid_quantity",
                             "message": N_("The quantity must be a whole number from 1 to 100.")})
            continue
        if plan is None:
            problems.append({"field": f"{where}.plan", "code": "unknown_plan", "message": N_("This plan does not exist.")})
            continue
        product = rt.catalog.product_of(plan)
        if not rt.catalog.is_enabled(storefront.code, plan.code):
            problems.append({"field": f"{where}.plan", "code": "not_sold_in_storefront",
                             "message": N_("This product is not sold in your country.")})
            continue
        price = rt.catalog.price(storefront.code, plan.code, today)
        if price is None:
            problems.append({"field": f"{where}.plan", "code": "not_on_sale_yet",
                             "message": N_("This product is not on sale in your country yet.")})
            continue
        mode = item.get("renewal_mode", "automatic")
        if mode not in RENEWAL_MODES:
            problems.append({"field": f"{where}.renewal_mode", "code": "invalid_renewal_mode",
                             "message": N_("The renewal mode must be automatic, manual or terminate.")})
            continue
        options = item.get("options") or {}
        if not isinstance(options, dict):
            problems.append({"field": f"{where}.options", "code": "invalid_options", "message": N_("Options must be an object.")})
            continue
        for name in product.required_options:
            if not str(options.get(name, "")).strip():
                problems.append({"field": f"{where}.options.{name}", "code": "missing_option", "params": {"name": name},
                                 "message": N_("The option {name} is required for this product.")})
        ctx = OrderLineContext(plan.universe, product.code, plan.code, product.kind, quantity, options, storefront.code, locale,
                               product.attributes)
        found = [] if any(p["field"].startswith(f"{where}.options.") for p in problems) else rt.pm.hook.univers_validate_order_line(ctx=ctx)
        for p in found or []:
            problems.append({"field": f"{where}.{p.field}" if p.field else where, "code": p.code, "message": p.message})
        if product.partners_only and product.universe not in partner_of:
            problems.append({"field": f"{where}.plan", "code": "partners_only", "params": {"universe": product.universe},
                             "message": N_("This is for members of the {universe} partner programme: join it first.")})
            continue
        if product.kind == SUPPORT_KIND:
            already = [ln for ln in lines if ln[1].kind == SUPPORT_KIND and ln[1].universe == product.universe]
            if already or quantity != 1:
                problems.append({"field": where, "code": "one_support_tier_per_universe",
                                 "message": N_("Only one support tier per universe can be ordered.")})
        lines.append((index, product, plan, price, quantity, options, mode))
    if problems:
        raise InvalidInput(N_("Some items of the order cannot be accepted."), code="invalid_order", errors=problems)
    return lines


def _terms(conn: Connection, rt: Runtime, account: Account, lines: list) -> list[dict]:
    """The contract versions an order of these lines must accept (core/ordering/contracts.py)."""
    return contracts.required(conn, rt, account.subsidiary, {plan.universe for _, _, plan, *_ in lines}, account.language)


def checkout(conn: Connection, rt: Runtime, account: Account, request: dict, key: str, actor: Actor, locale: str) -> tuple[int, bool]:
    """Returns (order id, created): a new order, or the one already made with this key."""
    if not key or len(key) > 128:
        raise InvalidInput(N_("An Idempotency-Key header (at most 128 characters) is required."), code="idempotency_key_required")
    digest = request_hash(request)
    existing = find_by_key(conn, account.id, key)
    if existing is not None:
        if existing["request_hash"] != digest:
            raise Conflict(N_("This Idempotency-Key was already used for a different request."), code="idempotency_key_reused")
        return existing["id"], False
    lines = _validate(rt, account, request, locale, partner_universes(conn, account.id))
    storefront = rt.storefronts[account.subsidiary]
    terms = _terms(conn, rt, account, lines)
    contracts.check_accepted(conn, terms, [str(h) for h in request.get("accept") or []])
    now = rt.clock.now()
    today = now.date()
    tax, stacked = rt.taxes.rates(account.tax_zone, today)
    order_id = conn.execute(insert(orders).values(
        account_id=account.id, idempotency_key=key, request_hash=digest, status="awaiting_payment",
        subsidiary=storefront.code, currency=storefront.currency, created_at=now, updated_at=now,
    ).returning(orders.c.id)).scalar_one()
    invoice_id = conn.execute(insert(inv).values(
        account_id=account.id, order_id=order_id, subsidiary=storefront.code, currency=storefront.currency,
        kind="order", status="draft", series=storefront.invoice_series, due_on=today, created_at=now,
        buyer_name=account.name, buyer_country=account.country, buyer_region=account.region,
        buyer_vat_number=account.vat_number,
    ).returning(inv.c.id)).scalar_one()
    invoice_lines = []
    for line_no, (index, product, plan, price, quantity, options, mode) in enumerate(lines, start=1):
        end = add_months(today, plan.months)
        conn.execute(insert(order_lines).values(
            order_id=order_id, line_no=line_no, universe=plan.universe, product_code=product.code, plan_code=plan.code,
            quantity=quantity, options=options, unit_price_minor=price.amount_minor, setup_minor=price.setup_minor,
            period_months=plan.months, engagement_months=plan.engagement_months,
        ))
        service_id = conn.execute(insert(svc).values(
            account_id=account.id, admin_account_id=account.id, tech_account_id=account.id, billing_account_id=account.id,
            order_id=order_id, universe=plan.universe, product_code=product.code, plan_code=plan.code, kind=product.kind,
            subsidiary=storefront.code, currency=storefront.currency, state="pending", renewal_mode=mode,
            period_months=plan.months, quantity=quantity, price_minor=price.amount_minor * quantity,
            start_on=today, expires_on=today, billed_until=end,
            engagement_end=add_months(today, plan.engagement_months) if plan.engagement_months else None,
            options=options, created_at=now, updated_at=now,
        ).returning(svc.c.id)).scalar_one()
        common = dict(invoice_id=invoice_id, service_id=service_id, universe=plan.universe, product_code=product.code,
                      plan_code=plan.code, period_start=today, period_end=end, quantity=quantity,
                      tax_name=tax.name, tax_category=tax.category, tax_rate_ppm=tax.rate_ppm,
                      tax2_name=stacked.name if stacked else None, tax2_rate_ppm=stacked.rate_ppm if stacked else None)
        invoice_lines.append({**common, "kind": "recurring", "unit_price_minor": price.amount_minor,
                              "net_minor": price.amount_minor * quantity})
        if price.setup_minor:
            invoice_lines.append({**common, "kind": "setup", "unit_price_minor": price.setup_minor,
                                  "net_minor": price.setup_minor * quantity})
        audit.record(conn, now, actor, "service", service_id, "service.created", None,
                     {"state": "pending", "plan": plan.code, "renewal_mode": mode, "order_id": order_id})
    conn.execute(insert(line), invoice_lines)
    invoicing.finalise(conn, inv.c.id == invoice_id)
    invoicing.issue(conn, inv.c.id == invoice_id, today, rt)
    conn.info.setdefault("univers_issued_invoices", []).append(invoice_id)
    total = conn.execute(select(inv.c.total_minor).where(inv.c.id == invoice_id)).scalar_one()
    conn.execute(orders.update().where(orders.c.id == order_id).values(invoice_id=invoice_id, total_minor=total))
    audit.record(conn, now, actor, "order", order_id, "order.created", None,
                 {"status": "awaiting_payment", "total_minor": total, "invoice_id": invoice_id})
    contracts.record(conn, rt, account.id, terms, actor, order_id=order_id)
    if request.get("waive_withdrawal") and account.kind == "person" and storefront.withdrawal_days:
        conn.execute(orders.update().where(orders.c.id == order_id).values(withdrawal_waived_at=now))
        audit.record(conn, now, actor, "order", order_id, "order.withdrawal_waived", None,
                     {"withdrawal_days": storefront.withdrawal_days})
    payment = request.get("payment") or {}
    if total == 0:
        mark_paid(conn, rt, inv.c.id == invoice_id, actor)
    else:
        pay_invoice(conn, rt, invoice_id, payment.get("method", "balance"), payment.get("outcome"), actor,
                    gateway_key=f"order:{account.id}:{key}")
    return order_id, True


def dry_run(conn: Connection, rt: Runtime, account: Account, request: dict, locale: str) -> dict:
    """What a checkout of this cart would need and cost, without writing anything: the contract
    versions it must accept, and its net amount (tax is computed on the invoice)."""
    lines = _validate(rt, account, request, locale, partner_universes(conn, account.id))
    storefront = rt.storefronts[account.subsidiary]
    terms = _terms(conn, rt, account, lines)
    net = sum((price.amount_minor + price.setup_minor) * quantity for _, _, _, price, quantity, _, _ in lines)
    return {"contracts": terms, "currency": storefront.currency, "net_minor": net}


def get_order(conn: Connection, account_id: int | None, order_id: int) -> dict:
    return fetch_owned(conn, orders, order_id, account_id, "order")
