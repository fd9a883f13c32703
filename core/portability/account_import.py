"""The import of a ``univers-export`` document into this database, with fresh ids (the format:
:mod:`core.portability.format`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field

import msgspec
from sqlalchemy import and_, bindparam, insert, select, tuple_, update
from sqlalchemy.engine import Connection

from core import audit
from core.audit import Actor
from core.errors import Conflict, InvalidInput
from core.i18n import N_
from core.models import ContractAcceptance, StatusSubscription
from core.money import MoneyError, rate_to_ppm, to_minor
from core.portability import infra_logs, tickets
from core.portability.format import (
    FORMAT,
    VERSION,
    AccountExport,
    ServicePart,
    UsagePart,
    acct,
    alerts,
    chunks,
    closed_periods,
    counter,
    events,
    inv,
    inv_line,
    inv_tax,
    ledger,
    order_lines,
    orders,
    pay,
    plans,
    records,
    svc,
    with_refs,
)
from core.runtime import Runtime
from core.usage.ingest import to_micro


@dataclass
class Imported:
    """What :func:`import_account` did: the new account, and every contact it could not keep
    (another account, not in the export, now replaced by the imported account itself)."""

    account_id: int
    handle: str
    handle_changed: bool = False
    remapped_contacts: list[dict] = field(default_factory=list)  # {"service_id", "role", "handle"}
    counts: dict[str, int] = field(default_factory=dict)


def parse(data: dict | bytes | str) -> AccountExport:
    """Check a document against the format: the right format and version, every field typed."""
    if isinstance(data, (bytes, str)):
        try:
            data = json.loads(data)
        except ValueError:
            raise InvalidInput(N_("This file is not a Univers export."), code="unsupported_export") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
        raise InvalidInput(N_("This file is not a Univers export in a version this system reads (format {format}, version {version})."),
                           code="unsupported_export", format=FORMAT, version=VERSION)
    try:
        return msgspec.convert(data, AccountExport)
    except msgspec.ValidationError as exc:
        raise InvalidInput(N_("The export is not valid: {reason}."), code="invalid_export", reason=str(exc)) from None


def import_account(conn: Connection, rt: Runtime, data: dict | bytes | str, actor: Actor | None = None) -> Imported:
    """Load an export into this database as a new account, with fresh ids. Issued invoices and
    credit notes keep their numbers (series, fiscal year, sequence) and are inserted as issued
    documents; the invoice counters move past them, so this database's next numbers follow.
    Nothing is provisioned or charged: payments in flight are kept as they were exported."""
    doc = parse(data)
    actor = actor or Actor.system("import")
    a = doc.account
    sub = rt.storefronts.get(a.subsidiary)
    if sub is None:
        raise InvalidInput(N_("Unknown or closed storefront {storefront}."), code="unknown_storefront", storefront=a.subsidiary)
    cur = sub.currency

    def minor(amount: str | None, currency: str = cur) -> int | None:
        try:
            return None if amount is None else to_minor(amount, currency)
        except ValueError:
            raise InvalidInput(N_("The export is not valid: {reason}."), code="invalid_export",
                               reason=f"amount {amount!r} in {currency}") from None

    def exact(value: str | None) -> int | None:
        if value is None:
            return None
        micro = to_micro(value)
        if micro is None:
            raise _invalid(f"exact quantity or price {value!r}")
        return micro

    entries = doc.balance.entries
    if doc.balance.currency != cur or sum(minor(e.amount) for e in entries) != minor(doc.balance.amount):
        raise InvalidInput(N_("The export is not valid: {reason}."), code="invalid_export",
                           reason="the balance is not the sum of its entries")
    documents = doc.invoices + doc.credit_notes
    numbers = {(i.subsidiary, i.series, i.fiscal_year, i.seq) for i in documents}
    if len(numbers) != len(documents):
        raise InvalidInput(N_("The export is not valid: {reason}."), code="invalid_export", reason="an invoice number is repeated")
    for part in chunks(sorted(numbers)):
        taken = conn.execute(select(inv.c.series, inv.c.fiscal_year, inv.c.seq).where(
            tuple_(inv.c.subsidiary, inv.c.series, inv.c.fiscal_year, inv.c.seq).in_(part)).limit(1)).first()
        if taken is not None:
            from core.billing.invoicing import number

            raise Conflict(N_("The invoice number {number} is already used in this database."), code="invoice_number_taken",
                           number=number(*taken))
    micro = _check_pay_as_you_go(doc, rt)
    credit_notes = {i.id: i.currency for i in doc.credit_notes}
    reason = tickets.problem(doc.tickets, {s.id for s in doc.services}, set(credit_notes)) or \
        infra_logs.problem(doc.infra_logs, {s.id for s in doc.services})
    if reason is not None:
        raise _invalid(reason)
    now = rt.clock.now()

    # the account: its handle if free here
    handle = a.handle
    changed = conn.execute(select(acct.c.id).where(acct.c.handle == handle)).first() is not None
    if changed:
        handle = _free_handle(conn, a.handle)
    account_id = conn.execute(insert(acct).values(
        handle=handle, subsidiary=a.subsidiary, kind=a.kind, name=a.name, email=a.email, language=a.language,
        country=a.country, region=a.region, vat_number=a.vat_number, vat_verified=a.vat_verified,
        vat_confirmed_on=a.vat_confirmed_on, vat_confirmation=a.vat_confirmation, tax_zone=a.tax_zone, is_staff=False,
        staff_role=None, balance_minor=minor(doc.balance.amount), payment_method=a.payment_method,
        test_outcome=a.test_outcome, created_at=a.created_at, closed_at=a.closed_at, einvoice=a.einvoice,
    ).returning(acct.c.id)).scalar_one()
    result = Imported(account_id, handle, changed)
    ids: dict[str, dict[int, int]] = {"account": {a.id: account_id}}

    # orders (their invoice is set once the invoices exist)
    ids["order"] = _insert_many(conn, orders, [dict(
        account_id=account_id, idempotency_key=o.idempotency_key, request_hash=o.request_hash, status=o.status,
        subsidiary=o.subsidiary, currency=o.currency, total_minor=minor(o.total, o.currency), invoice_id=None,
        created_at=o.created_at, updated_at=o.updated_at) for o in doc.orders], [o.id for o in doc.orders])
    rows = [dict(order_id=ids["order"][o.id], line_no=ln.line_no, universe=ln.universe, product_code=ln.product,
                 plan_code=ln.plan, quantity=ln.quantity, options=ln.options, unit_price_minor=minor(ln.unit_price, o.currency),
                 setup_minor=minor(ln.setup, o.currency), period_months=ln.period_months, engagement_months=ln.engagement_months)
            for o in doc.orders for ln in o.lines]
    if rows:
        conn.execute(insert(order_lines), rows)

    # services: a contact that is another account becomes the imported account
    def contact(s: ServicePart, role: str, who: str) -> int:
        if who != a.handle:
            result.remapped_contacts.append({"service_id": s.id, "role": role, "handle": who})
        return account_id

    ids["service"] = _insert_many(conn, svc, [dict(
        account_id=contact(s, "holder", s.holder), admin_account_id=contact(s, "admin", s.contacts.admin),
        tech_account_id=contact(s, "tech", s.contacts.tech), billing_account_id=contact(s, "billing", s.contacts.billing),
        order_id=ids["order"].get(s.order_id), universe=s.universe, product_code=s.product, plan_code=s.plan, kind=s.kind,
        subsidiary=s.subsidiary, currency=s.currency, state=s.state, renewal_mode=s.renewal_mode,
        period_months=s.period_months, quantity=s.quantity, price_minor=minor(s.price, s.currency), start_on=s.start_on,
        expires_on=s.expires_on, billed_until=s.billed_until, engagement_end=s.engagement_end, options=s.options,
        resource=s.resource, suspended_on=s.suspended_on, terminated_on=s.terminated_on, deleted_on=s.deleted_on,
        abuse_reason=s.abuse_reason, abuse_since=s.abuse_since, created_at=s.created_at, updated_at=s.updated_at,
    ) for s in doc.services], [s.id for s in doc.services])

    # invoices, then credit notes (they point at the invoices and their lines): inserted without
    # their sequence number, so that their lines and breakdown can go in, then numbered
    ids["invoice"], ids["line"] = {}, {}
    for group in (doc.invoices, doc.credit_notes):
        ids["invoice"].update(_insert_many(conn, inv, [dict(
            account_id=account_id, order_id=ids["order"].get(i.order_id), run_id=None, subsidiary=i.subsidiary,
            currency=i.currency, kind=i.kind, status=i.status, series=i.series, fiscal_year=i.fiscal_year, seq=None,
            issued_on=i.issued_on, due_on=i.due_on, net_minor=minor(i.net, i.currency), tax_minor=minor(i.tax, i.currency),
            total_minor=minor(i.total, i.currency), buyer_name=i.buyer.name, buyer_country=i.buyer.country,
            buyer_region=i.buyer.region, buyer_vat_number=i.buyer.vat_number, buyer_einvoice=i.buyer.einvoice,
            credited_invoice_id=ids["invoice"].get(i.credits), reason=i.reason, idempotency_key=i.idempotency_key,
            paid_at=i.paid_at, created_at=i.created_at) for i in group], [i.id for i in group]))
        lines = [(i, ln) for i in group for ln in i.lines]
        ids["line"].update(_insert_many(conn, inv_line, [dict(
            invoice_id=ids["invoice"][i.id], service_id=ids["service"].get(ln.service_id), kind=ln.kind,
            universe=ln.universe, product_code=ln.product, plan_code=ln.plan, period_start=ln.period_start,
            period_end=ln.period_end, quantity=ln.quantity, unit_price_minor=minor(ln.unit_price, i.currency),
            net_minor=minor(ln.net, i.currency), tax_name=ln.tax_name, tax_category=ln.tax_category,
            tax_rate_ppm=rate_to_ppm(ln.tax_rate), tax2_name=ln.tax2_name,
            tax2_rate_ppm=None if ln.tax2_rate is None else rate_to_ppm(ln.tax2_rate),
            credited_line_id=ids["line"].get(ln.credited_line_id), quantity_micro=exact(ln.exact_quantity),
            unit_price_micro=exact(ln.exact_unit_price)) for i, ln in lines], [ln.id for _, ln in lines]))
        rows = [dict(invoice_id=ids["invoice"][i.id], name=t.name, category=t.category, rate_ppm=rate_to_ppm(t.rate),
                     base_minor=minor(t.base, i.currency), tax_minor=minor(t.tax, i.currency)) for i in group for t in i.taxes]
        if rows:
            conn.execute(insert(inv_tax), rows)
    if documents:
        conn.execute(update(inv).where(inv.c.id == bindparam("b_id")).values(seq=bindparam("b_seq")),
                     [{"b_id": ids["invoice"][i.id], "b_seq": i.seq} for i in documents])
        _move_counters(conn, numbers)
    for o in doc.orders:
        if o.invoice_id in ids["invoice"]:
            conn.execute(update(orders).where(orders.c.id == ids["order"][o.id]).values(invoice_id=ids["invoice"][o.invoice_id]))

    # payments (a retry's key is rebuilt on the new invoice id) and the balance ledger
    ids["payment"] = _insert_many(conn, pay, [dict(
        account_id=account_id, invoice_id=ids["invoice"].get(p.invoice_id), method=p.method, purpose=p.purpose,
        amount_minor=minor(p.amount, p.currency), currency=p.currency, status=p.status, gateway_ref=p.gateway_ref,
        failure_code=p.failure_code,
        idempotency_key=f"{p.attempt}:{ids['invoice'][p.invoice_id]}" if p.attempt and p.invoice_id in ids["invoice"] else None,
        attempts=p.attempts, next_attempt_at=p.next_attempt_at, locked_until=None, created_at=p.created_at,
        settled_at=p.settled_at) for p in doc.payments], [p.id for p in doc.payments])
    rows = [dict(account_id=account_id, amount_minor=minor(e.amount), reason=e.reason, invoice_id=ids["invoice"].get(e.invoice_id),
                 payment_id=ids["payment"].get(e.payment_id), created_at=e.created_at) for e in entries]
    if rows:
        conn.execute(insert(ledger), rows)

    # pay-as-you-go: each month's sums as one record per (project, month, metric, dimension), so that
    # the month so far (its consumption, forecast and alerts) carries on and closed months stay closed
    rows = [dict(service_id=ids["service"][u.service_id], record_id=_record_id(u), metric=u.metric, dimension=u.dimension,
                 quantity_micro=q, at=dt.datetime(u.period.year, u.period.month, 1, tzinfo=dt.UTC), period=u.period,
                 received_at=now) for u, q in zip(doc.usage, micro, strict=True)]
    if rows:
        conn.execute(insert(records), rows)
    shut = {(p.service_id, p.period): dict(service_id=ids["service"][p.service_id], period=p.period, closed_at=p.closed_at,
                                           invoice_id=ids["invoice"].get(p.invoice_id)) for p in doc.usage_periods}
    for u in doc.usage:  # a month said closed without its period (a document made elsewhere): closed now
        if u.closed and (u.service_id, u.period) not in shut:
            shut[(u.service_id, u.period)] = dict(service_id=ids["service"][u.service_id], period=u.period, closed_at=now,
                                                  invoice_id=None)
    if shut:
        conn.execute(insert(closed_periods), list(shut.values()))
    ids["commitment"] = _insert_many(conn, plans, [dict(
        service_id=ids["service"][c.service_id], currency=c.currency, monthly_minor=minor(c.monthly, c.currency),
        discount_ppm=rate_to_ppm(c.percent_off), months=c.months, starts_on=c.starts_on, ends_on=c.ends_on,
        created_at=c.created_at, created_by=c.created_by) for c in doc.commitments], [c.id for c in doc.commitments])
    rows = [dict(service_id=ids["service"][a.service_id], threshold_minor=minor(a.threshold, a.currency), currency=a.currency,
                 set_at=a.set_at, set_by=a.set_by, notified_period=a.notified_period) for a in doc.spending_alerts]
    if rows:
        conn.execute(insert(alerts), rows)
    rows = _acceptances(conn, account_id, doc, ids)
    if rows:
        conn.execute(insert(ContractAcceptance.__table__), rows)

    ids["ticket"] = tickets.import_tickets(conn, doc.tickets, account_id, ids, lambda b: 0 if b.credit is None else (
        minor(b.credit, credit_notes[b.credit_note_id]) if b.credit_note_id in credit_notes else 0))
    infra_logs.import_infra_logs(conn, doc.infra_logs, ids["service"], now)
    followed = {s.universe: s.since for s in doc.status_subscriptions}  # a universe no plugin sells here stays followed
    if followed:
        conn.execute(insert(StatusSubscription.__table__), [dict(account_id=account_id, universe=u, created_at=since)
                                                            for u, since in followed.items()])

    # the audit log, each event on its new object, then the import itself
    rows = [dict(at=e.at, actor=e.actor, role=e.role, entity=e.entity, entity_id=ids[e.entity][e.entity_id], action=e.action,
                 before=audit._dump(with_refs(e.before, ids)), after=audit._dump(with_refs(e.after, ids)))
            for e in doc.audit if e.entity_id in ids.get(e.entity, {})]
    if rows:
        conn.execute(insert(events), rows)
    result.counts = {"services": len(doc.services), "orders": len(doc.orders), "invoices": len(doc.invoices),
                     "credit_notes": len(doc.credit_notes), "payments": len(doc.payments), "balance_entries": len(entries),
                     "usage": len(doc.usage), "usage_periods": len(shut), "commitments": len(doc.commitments),
                     "spending_alerts": len(doc.spending_alerts), "contracts": len(doc.contracts), "tickets": len(doc.tickets),
                     "infra_logs": len(doc.infra_logs),
                     "status_subscriptions": len(followed), "audit_events": len(rows)}
    audit.record(conn, now, actor, "account", account_id, "account.imported", None,
                 {"handle": handle, "from_handle": a.handle, "exported_at": doc.exported_at.isoformat(), **result.counts,
                  "remapped_contacts": len(result.remapped_contacts)})
    return result


def _invalid(reason: str) -> InvalidInput:
    return InvalidInput(N_("The export is not valid: {reason}."), code="invalid_export", reason=reason)


def _check_pay_as_you_go(doc: AccountExport, rt: Runtime) -> list[int]:
    """Refuse a document whose pay-as-you-go parts would not load: a service that is not in the
    export, a month not named by its first day, a metric this system does not rate, a quantity
    that is not exact, a key given twice. Returns the usage quantities in micro-units."""
    services = {s.id for s in doc.services}
    for what, parts in (("usage", doc.usage), ("usage period", doc.usage_periods), ("savings plan", doc.commitments),
                        ("spending alert", doc.spending_alerts)):
        for part in parts:
            if part.service_id not in services:
                raise _invalid(f"{what} of service {part.service_id}, which is not in the export")
    micro = []
    for u in doc.usage:
        if u.period.day != 1:
            raise _invalid(f"usage period {u.period} is not a month's first day")
        if u.metric not in rt.metrics:
            raise _invalid(f"unknown metric {u.metric!r}")
        q = to_micro(u.quantity)
        if q is None or q < 0:
            raise _invalid(f"usage quantity {u.quantity!r}")
        micro.append(q)
    for what, keys in (("usage", [(u.service_id, u.period, u.metric, u.dimension) for u in doc.usage]),
                       ("usage period", [(p.service_id, p.period) for p in doc.usage_periods]),
                       ("savings plan", [(c.service_id, c.starts_on) for c in doc.commitments]),
                       ("spending alert", [a.service_id for a in doc.spending_alerts])):
        if len(set(keys)) != len(keys):
            raise _invalid(f"a {what} is repeated")
    if any(p.period.day != 1 for p in doc.usage_periods):
        raise _invalid("a usage period is not a month's first day")
    for c in doc.commitments:
        try:
            if not 0 <= rate_to_ppm(c.percent_off) < 1_000_000 or c.starts_on.day != 1:
                raise MoneyError(c.percent_off)
        except MoneyError:
            raise _invalid(f"savings plan {c.id}") from None
    return micro


def _record_id(u: UsagePart) -> str:
    """The record an imported monthly sum becomes: ``import:YYYY-MM:metric:dimension`` (a digest
    of metric and dimension past 64 characters, the key's limit)."""
    text = f"import:{u.period:%Y-%m}:{u.metric}:{u.dimension or ''}"
    if len(text) <= 64:
        return text
    return f"import:{u.period:%Y-%m}:{hashlib.sha256(f'{u.metric}:{u.dimension}'.encode()).hexdigest()[:40]}"


def _insert_many(conn: Connection, table, rows: list[dict], old_ids: list[int]) -> dict[int, int]:
    """Insert rows in one statement; returns old id → new id (ids come back in row order)."""
    if not rows:
        return {}
    new = conn.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).scalars().all()
    return dict(zip(old_ids, new, strict=True))


def _move_counters(conn: Connection, numbers: set[tuple]) -> None:
    """Each (storefront, series, year) counter goes at least as far as the imported numbers."""
    from core.billing.invoicing import _ensure_counter

    top: dict[tuple, int] = {}
    for subsidiary, series, year, seq in numbers:
        top[(subsidiary, series, year)] = max(seq, top.get((subsidiary, series, year), 0))
    for (subsidiary, series, year), seq in sorted(top.items()):
        _ensure_counter(conn, subsidiary, series, year)
        key = and_(counter.c.subsidiary == subsidiary, counter.c.series == series, counter.c.fiscal_year == year)
        conn.execute(select(counter.c.last_seq).where(key).with_for_update()).scalar_one()
        conn.execute(update(counter).where(key, counter.c.last_seq < seq).values(last_seq=seq))


def _free_handle(conn: Connection, handle: str) -> str:
    stem = re.sub(r"[^a-z]", "", handle.split("-")[0].lower())[:2] or "xx"
    for _ in range(50):
        candidate = f"{stem}{secrets.randbelow(90000) + 10000}-univers"
        if conn.execute(select(acct.c.id).where(acct.c.handle == candidate)).first() is None:
            return candidate
    raise Conflict(code="handle_unavailable")


def _acceptances(conn: Connection, account_id: int, doc: AccountExport, ids: dict) -> list[dict]:
    """The accepted terms, on this database's versions of the same text (its hash): a version
    this database does not have is refused, since an acceptance of unknown terms proves nothing."""
    from core.models import ContractVersion

    versions = ContractVersion.__table__
    hashes = sorted({c.content_hash for c in doc.contracts})
    here = {}
    for part in chunks(hashes):
        for h, storefront, version_id in conn.execute(select(versions.c.content_hash, versions.c.storefront, versions.c.id)
                                                      .where(versions.c.content_hash.in_(part))):
            here[h, storefront] = version_id
    rows = []
    for c in doc.contracts:
        version_id = here.get((c.content_hash, c.storefront))
        if version_id is None:
            raise InvalidInput(N_("The export is not valid: {reason}."), code="invalid_export",
                               reason=f"terms {c.document} of {c.effective_on} ({c.content_hash[:12]}) are not in this database")
        rows.append(dict(account_id=account_id, version_id=version_id, content_hash=c.content_hash, accepted_at=c.accepted_at,
                         channel=c.channel, actor=c.actor, order_id=ids["order"].get(c.order_id),
                         service_id=ids["service"].get(c.service_id)))
    return rows
