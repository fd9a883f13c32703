"""The export of an account as one ``univers-export`` document (the format: :mod:`core.portability.format`)."""

from __future__ import annotations

import base64
import json

import msgspec
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from core.audit import Actor
from core.errors import NotFound
from core.portability.format import (
    CHUNK,
    ENTITIES,
    FORMAT,
    VERSION,
    AccountExport,
    AccountPart,
    ApiKeyPart,
    AuditPart,
    BalanceEntryPart,
    BalancePart,
    Buyer,
    CommitmentPart,
    Contacts,
    ContractPart,
    InvoiceLinePart,
    InvoicePart,
    InvoiceTaxPart,
    OrderLinePart,
    OrderPart,
    PaymentPart,
    ServicePart,
    SpendingAlertPart,
    StatusSubscriptionPart,
    UsagePart,
    UsagePeriodPart,
    acct,
    alerts,
    amount_text,
    chunks,
    closed_periods,
    events,
    inv,
    inv_line,
    inv_tax,
    keys,
    ledger,
    load_json,
    order_lines,
    orders,
    pay,
    plans,
    rate_text,
    records,
    with_refs,
)
from core.portability.infra_logs import export_infra_logs
from core.portability.tickets import export_tickets
from core.runtime import Runtime
from core.usage.ingest import format_micro


def export_account(conn: Connection, rt: Runtime, account_id: int, *, documents: bool = True) -> dict:
    """Everything about an account, as the ``univers-export`` document (plain JSON types).
    ``documents=False`` leaves the PDFs out (``pdf`` is null). Rows are read in chunks, each
    with one query per table, whatever the number of services or invoices."""
    row = conn.execute(select(acct).where(acct.c.id == account_id)).mappings().one_or_none()
    if row is None or row["is_staff"]:
        raise NotFound(what="customer")
    currency = rt.storefronts[row["subsidiary"]].currency
    account = AccountPart(
        row["id"], row["handle"], row["subsidiary"], row["kind"], row["name"], row["email"], row["language"], row["country"],
        row["region"], row["vat_number"], row["vat_verified"], row["vat_confirmed_on"], row["vat_confirmation"],
        row["tax_zone"], currency, row["payment_method"], row["test_outcome"], row["created_at"], row["closed_at"],
        row["einvoice"])
    api_keys = [ApiKeyPart(k["prefix"], k["name"], k["scopes"], k["created_at"], k["expires_at"], k["revoked_at"])
                for k in conn.execute(select(keys).where(keys.c.account_id == account_id).order_by(keys.c.id)).mappings()]
    services = _services(conn, account_id)
    order_list = _orders(conn, account_id)
    invoices = _invoices(conn, rt, account_id, documents)
    payments = [PaymentPart(
        p["id"], p["invoice_id"], p["method"], p["purpose"], amount_text(p["amount_minor"], p["currency"]), p["currency"],
        p["status"], p["gateway_ref"], p["failure_code"],
        p["idempotency_key"].rsplit(":", 1)[0] if p["idempotency_key"] and ":" in p["idempotency_key"] else None,
        p["attempts"], p["next_attempt_at"], p["created_at"], p["settled_at"],
    ) for p in conn.execute(select(pay).where(pay.c.account_id == account_id).order_by(pay.c.id)).mappings()]
    entries = [BalanceEntryPart(e["id"], amount_text(e["amount_minor"], currency), e["reason"], e["invoice_id"], e["payment_id"],
                                e["created_at"])
               for e in conn.execute(select(ledger).where(ledger.c.account_id == account_id).order_by(ledger.c.id)).mappings()]
    usage, usage_periods, commitments, spending_alerts = _pay_as_you_go(conn, services)
    tickets = export_tickets(conn, account_id, row["handle"], {s.id: set(s.roles) for s in services},
                             {i.id: i.currency for i in invoices if i.kind == "credit_note"}, amount_text)
    known = {"account": {account_id}, "service": {s.id for s in services}, "order": {o.id for o in order_list},
             "invoice": {i.id for i in invoices}, "payment": {p.id for p in payments},
             "commitment": {c.id for c in commitments}, "ticket": {t.id for t in tickets}}
    # a reference to something outside the export is dropped: no other account's ids leak out
    for s in services:
        s.order_id = s.order_id if s.order_id in known["order"] else None
    for i in invoices:
        i.order_id = i.order_id if i.order_id in known["order"] else None
        for ln in i.lines:
            ln.service_id = ln.service_id if ln.service_id in known["service"] else None
    for o in order_list:
        o.invoice_id = o.invoice_id if o.invoice_id in known["invoice"] else None
    for p in usage_periods:  # a month invoiced to another account (its billing contact) keeps no invoice
        p.invoice_id = p.invoice_id if p.invoice_id in known["invoice"] else None
    from core.ordering.contracts import accepted_by

    accepted = [ContractPart(c["document"], c["storefront"], c["language"], c["effective_on"], c["title"], c["content_hash"],
                             c["accepted_at"], c["channel"], c["actor"],
                             c["order_id"] if c["order_id"] in known["order"] else None,
                             c["service_id"] if c["service_id"] in known["service"] else None)
                for c in accepted_by(conn, account_id)]
    document = AccountExport(
        FORMAT, VERSION, rt.clock.now(), account, api_keys, services, order_list,
        [i for i in invoices if i.kind != "credit_note"], [i for i in invoices if i.kind == "credit_note"], payments,
        BalancePart(currency, amount_text(row["balance_minor"], currency), entries), usage, _audit(conn, known),
        usage_periods, commitments, spending_alerts, accepted, tickets,
        export_infra_logs(conn, {s.id: set(s.roles) for s in services}), _status_subscriptions(conn, account_id))
    return msgspec.to_builtins(document)


def _status_subscriptions(conn: Connection, account_id: int) -> list[StatusSubscriptionPart]:
    from core.models import StatusSubscription

    sub = StatusSubscription.__table__
    return [StatusSubscriptionPart(u, at) for u, at in conn.execute(
        select(sub.c.universe, sub.c.created_at).where(sub.c.account_id == account_id).order_by(sub.c.universe))]


def _services(conn: Connection, account_id: int) -> list[ServicePart]:
    """The services the account is a contact of, by id, a chunk at a time through the contact
    indexes (the same union of keyset pages as the service list), with the contacts' handles."""
    from core.lifecycle.services import list_services

    out: list[ServicePart] = []
    after = 0
    actor = Actor("export", account_id)
    while True:
        rows = list_services(conn, actor, after, 200)
        if not rows:
            return out
        ids = {r[c] for r in rows for c in ("account_id", "admin_account_id", "tech_account_id", "billing_account_id")}
        handles = dict(conn.execute(select(acct.c.id, acct.c.handle).where(acct.c.id.in_(ids))).all())
        for r in rows:
            out.append(ServicePart(
                r["id"], handles[r["account_id"]],
                Contacts(handles[r["admin_account_id"]], handles[r["tech_account_id"]], handles[r["billing_account_id"]]),
                [role for role in ("admin", "tech", "billing") if r[f"{role}_account_id"] == account_id],
                r["order_id"], r["universe"], r["product_code"], r["plan_code"], r["kind"], r["subsidiary"], r["currency"],
                r["state"], r["renewal_mode"], r["period_months"], r["quantity"], amount_text(r["price_minor"], r["currency"]),
                r["start_on"], r["expires_on"], r["billed_until"], r["engagement_end"], r["options"] or {}, r["resource"],
                r["suspended_on"], r["terminated_on"], r["deleted_on"], r["abuse_reason"], r["abuse_since"],
                r["created_at"], r["updated_at"]))
        after = rows[-1]["id"]


def _orders(conn: Connection, account_id: int) -> list[OrderPart]:
    rows = conn.execute(select(orders).where(orders.c.account_id == account_id).order_by(orders.c.id)).mappings().all()
    lines: dict[int, list[OrderLinePart]] = {}
    currency = {r["id"]: r["currency"] for r in rows}
    for part in chunks(list(currency)):
        for ln in conn.execute(select(order_lines).where(order_lines.c.order_id.in_(part))
                               .order_by(order_lines.c.order_id, order_lines.c.line_no)).mappings():
            cur = currency[ln["order_id"]]
            lines.setdefault(ln["order_id"], []).append(OrderLinePart(
                ln["line_no"], ln["universe"], ln["product_code"], ln["plan_code"], ln["quantity"], ln["options"] or {},
                amount_text(ln["unit_price_minor"], cur), amount_text(ln["setup_minor"], cur), ln["period_months"],
                ln["engagement_months"]))
    return [OrderPart(r["id"], r["status"], r["subsidiary"], r["currency"], amount_text(r["total_minor"], r["currency"]),
                      r["invoice_id"], r["idempotency_key"], r["request_hash"], r["created_at"], r["updated_at"],
                      lines.get(r["id"], [])) for r in rows]


def _invoices(conn: Connection, rt: Runtime, account_id: int, documents: bool) -> list[InvoicePart]:
    """Issued invoices and credit notes addressed to the account, by id, a chunk at a time."""
    from core.billing import documents as docs
    from core.billing.invoicing import number

    out: list[InvoicePart] = []
    after = 0
    while True:
        rows = conn.execute(select(inv).where(inv.c.account_id == account_id, inv.c.id > after, inv.c.seq.is_not(None))
                            .order_by(inv.c.id).limit(CHUNK)).mappings().all()
        if not rows:
            return out
        ids = [r["id"] for r in rows]
        cur = {r["id"]: r["currency"] for r in rows}
        lines: dict[int, list[InvoiceLinePart]] = {}
        for ln in conn.execute(select(inv_line).where(inv_line.c.invoice_id.in_(ids)).order_by(inv_line.c.id)).mappings():
            c = cur[ln["invoice_id"]]
            lines.setdefault(ln["invoice_id"], []).append(InvoiceLinePart(
                ln["id"], ln["service_id"], ln["kind"], ln["universe"], ln["product_code"], ln["plan_code"],
                ln["period_start"], ln["period_end"], ln["quantity"], amount_text(ln["unit_price_minor"], c),
                amount_text(ln["net_minor"], c), ln["tax_name"], ln["tax_category"], rate_text(ln["tax_rate_ppm"]), ln["tax2_name"],
                rate_text(ln["tax2_rate_ppm"]), ln["credited_line_id"],
                None if ln["quantity_micro"] is None else format_micro(ln["quantity_micro"]),
                None if ln["unit_price_micro"] is None else format_micro(ln["unit_price_micro"])))
        taxes: dict[int, list[InvoiceTaxPart]] = {}
        for t in conn.execute(select(inv_tax).where(inv_tax.c.invoice_id.in_(ids))
                              .order_by(inv_tax.c.invoice_id, inv_tax.c.category, inv_tax.c.rate_ppm, inv_tax.c.name)).mappings():
            c = cur[t["invoice_id"]]
            taxes.setdefault(t["invoice_id"], []).append(InvoiceTaxPart(
                t["name"], t["category"], rate_text(t["rate_ppm"]), amount_text(t["base_minor"], c), amount_text(t["tax_minor"], c)))
        for r in rows:
            c = r["currency"]
            pdf = None
            if documents:
                pdf = base64.b64encode(docs.render(conn, rt, account_id, r["id"], "pdf")[0]).decode("ascii")
            out.append(InvoicePart(
                r["id"], number(r["series"], r["fiscal_year"], r["seq"]), r["kind"], r["status"], r["subsidiary"], c,
                r["series"], r["fiscal_year"], r["seq"], r["issued_on"], r["due_on"], r["order_id"],
                amount_text(r["net_minor"], c), amount_text(r["tax_minor"], c), amount_text(r["total_minor"], c),
                Buyer(r["buyer_name"], r["buyer_country"], r["buyer_region"], r["buyer_vat_number"], r["buyer_einvoice"]),
                r["credited_invoice_id"], r["reason"], r["idempotency_key"], r["paid_at"], r["created_at"],
                lines.get(r["id"], []), taxes.get(r["id"], []), pdf))
        after = ids[-1]


def _pay_as_you_go(conn: Connection, services: list[ServicePart]) -> tuple[
        list[UsagePart], list[UsagePeriodPart], list[CommitmentPart], list[SpendingAlertPart]]:
    """The exported projects' usage, as sums per (project, month, metric, dimension), their closed
    months, and — of the projects the account is the billing contact of — their savings plans
    and spending alert. A chunk of projects at a time: one ``GROUP BY`` over the records, one
    query per other table."""
    projects = [s.id for s in services if s.kind == "project"]
    billing = {s.id for s in services if s.kind == "project" and "billing" in s.roles}
    usage: list[UsagePart] = []
    closed: list[UsagePeriodPart] = []
    commitments: list[CommitmentPart] = []
    spending: list[SpendingAlertPart] = []
    for part in chunks(projects):
        shut = conn.execute(select(closed_periods).where(closed_periods.c.service_id.in_(part))
                            .order_by(closed_periods.c.service_id, closed_periods.c.period)).mappings().all()
        closed.extend(UsagePeriodPart(p["service_id"], p["period"], p["closed_at"], p["invoice_id"]) for p in shut)
        is_closed = {(p["service_id"], p["period"]) for p in shut}
        sums = conn.execute(
            select(records.c.service_id, records.c.period, records.c.metric, records.c.dimension,
                   func.sum(records.c.quantity_micro), func.count())
            .where(records.c.service_id.in_(part))
            .group_by(records.c.service_id, records.c.period, records.c.metric, records.c.dimension)).all()
        # sorted here: the engines order a NULL dimension differently
        sums.sort(key=lambda r: (r[0], r[1], r[2], r[3] is not None, r[3] or ""))
        usage.extend(UsagePart(sid, period, metric, dimension, format_micro(int(quantity)), count, (sid, period) in is_closed)
                     for sid, period, metric, dimension, quantity, count in sums)
        mine = [sid for sid in part if sid in billing]
        if not mine:
            continue
        commitments.extend(CommitmentPart(
            c["id"], c["service_id"], c["currency"], amount_text(c["monthly_minor"], c["currency"]), rate_text(c["discount_ppm"]),
            c["months"], c["starts_on"], c["ends_on"], c["created_at"], c["created_by"])
            for c in conn.execute(select(plans).where(plans.c.service_id.in_(mine)).order_by(plans.c.id)).mappings())
        spending.extend(SpendingAlertPart(
            a["service_id"], amount_text(a["threshold_minor"], a["currency"]), a["currency"], a["set_at"], a["set_by"],
            a["notified_period"])
            for a in conn.execute(select(alerts).where(alerts.c.service_id.in_(mine)).order_by(alerts.c.service_id)).mappings())
    return usage, closed, commitments, spending


def _audit(conn: Connection, known: dict[str, set[int]]) -> list[AuditPart]:
    """The events of every exported object, through the (entity, entity_id) index, by id."""
    rows = []
    for entity in ENTITIES:
        for part in chunks(sorted(known[entity])):
            rows.extend(conn.execute(select(events).where(events.c.entity == entity, events.c.entity_id.in_(part))).mappings())
    rows.sort(key=lambda r: r["id"])
    return [AuditPart(r["id"], r["at"], r["actor"], r["role"], r["entity"], r["entity_id"], r["action"],
                      with_refs(load_json(r["before"]), known), with_refs(load_json(r["after"]), known)) for r in rows]


def canonical(document: dict) -> dict:
    """The document as the round trip keeps it: without ``exported_at``, with every id replaced by
    its rank in the document (and the references with it), each PDF by whether it is there
    (a PDF records when it was rendered), and the usage sums without their count of records (an
    import keeps each sum as one record). Two exports of the same history compare equal. A
    document made before the pay-as-you-go sections gets them empty, as :func:`parse` reads it."""
    doc = json.loads(json.dumps(document))
    doc.pop("exported_at", None)
    for section in ("usage_periods", "commitments", "spending_alerts", "contracts", "tickets", "infra_logs",
                    "status_subscriptions"):
        doc.setdefault(section, [])
    rank = {
        "account": {doc["account"]["id"]: 1},
        "service": {s["id"]: n for n, s in enumerate(doc["services"], 1)},
        "order": {o["id"]: n for n, o in enumerate(doc["orders"], 1)},
        "invoice": {i["id"]: n for n, i in enumerate(doc["invoices"] + doc["credit_notes"], 1)},
        "line": {ln["id"]: n for n, ln in enumerate((ln for i in doc["invoices"] + doc["credit_notes"] for ln in i["lines"]), 1)},
        "payment": {p["id"]: n for n, p in enumerate(doc["payments"], 1)},
        "commitment": {c["id"]: n for n, c in enumerate(doc["commitments"], 1)},
        "entry": {e["id"]: n for n, e in enumerate(doc["balance"]["entries"], 1)},
        "event": {e["id"]: n for n, e in enumerate(doc["audit"], 1)},
        "ticket": {t["id"]: n for n, t in enumerate(doc["tickets"], 1)},
    }

    def r(kind: str, value):
        return None if value is None else rank[kind].get(value)

    doc["account"]["id"] = 1
    for s in doc["services"]:
        s["id"], s["order_id"] = r("service", s["id"]), r("order", s["order_id"])
    for o in doc["orders"]:
        o["id"], o["invoice_id"] = r("order", o["id"]), r("invoice", o["invoice_id"])
    for i in doc["invoices"] + doc["credit_notes"]:
        i["id"], i["order_id"], i["credits"] = r("invoice", i["id"]), r("order", i["order_id"]), r("invoice", i["credits"])
        i["pdf"] = i["pdf"] is not None
        for ln in i["lines"]:
            ln["id"], ln["service_id"] = r("line", ln["id"]), r("service", ln["service_id"])
            ln["credited_line_id"] = r("line", ln["credited_line_id"])
    for p in doc["payments"]:
        p["id"], p["invoice_id"] = r("payment", p["id"]), r("invoice", p["invoice_id"])
    for e in doc["balance"]["entries"]:
        e["id"], e["invoice_id"], e["payment_id"] = r("entry", e["id"]), r("invoice", e["invoice_id"]), r("payment", e["payment_id"])
    for e in doc["audit"]:
        e["id"], e["entity_id"] = r("event", e["id"]), r(e["entity"], e["entity_id"])
        e["before"], e["after"] = with_refs(e["before"], rank), with_refs(e["after"], rank)
    for u in doc["usage"]:
        u["service_id"] = r("service", u["service_id"])
        u.pop("records", None)
    doc["usage"].sort(key=lambda u: (u["service_id"] or 0, u["period"], u["metric"], u["dimension"] is not None, u["dimension"] or ""))
    for p in doc["usage_periods"]:
        p["service_id"], p["invoice_id"] = r("service", p["service_id"]), r("invoice", p["invoice_id"])
    for c in doc["commitments"]:
        c["id"], c["service_id"] = r("commitment", c["id"]), r("service", c["service_id"])
    for a in doc["spending_alerts"]:
        a["service_id"] = r("service", a["service_id"])
    for c in doc["contracts"]:
        c["order_id"], c["service_id"] = r("order", c["order_id"]), r("service", c["service_id"])
    for t in doc["tickets"]:
        t["id"], t["service_id"] = r("ticket", t["id"]), r("service", t["service_id"])
        t["level_service_id"] = r("service", t["level_service_id"])
        for b in t["breaches"]:
            b["credit_note_id"] = r("invoice", b["credit_note_id"])
    for e in doc["infra_logs"]:
        e["service_id"] = r("service", e["service_id"])
    return doc
