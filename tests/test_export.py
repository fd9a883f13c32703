"""Reversibility: a customer takes everything about its account with it (GET /v1/me/export), the
file loads into another Univers database and exports again the same, and an account closes
once nothing runs and nothing is owed: personal data goes, invoices stay."""

from __future__ import annotations

import base64
import datetime as dt
import json

import msgspec
import pytest
from sqlalchemy import func, select, update

from core.audit import Actor
from core.customers import accounts as customers
from core.models import (
    Account,
    AuditEvent,
    Commitment,
    Invoice,
    InvoiceLine,
    InvoiceTax,
    Service,
    SpendingAlert,
    UsagePeriod,
    UsageRecord,
)
from core.portability import account_import, export
from core.portability import format as export_format
from core.uow import unit_of_work
from core.usage import alerts, metering
from tests.conftest import Shop
from tests.pdfa import check_pdfa
from tests.test_rating import PROJECT, hourly, send

svc = Service.__table__
inv = Invoice.__table__
STARTER, PRO = "web-hosting-starter-p1m", "web-hosting-pro-p1m"
SECTIONS = ("account", "services", "orders", "invoices", "credit_notes", "payments", "balance", "usage", "audit")
PAYG = ("usage_periods", "commitments", "spending_alerts", "contracts", "tickets", "infra_logs",
        "status_subscriptions")  # added to version 1 with defaults
JANUARY, FEBRUARY = dt.date(2026, 1, 1), dt.date(2026, 2, 1)


def _me_export(shop, customer) -> dict:
    r = shop.client.get("/v1/me/export", headers=customer["headers"])
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"].startswith("attachment;")
    return r.json()


def _history(shop, staff=None, paygo=None):
    """Acme, FR, with a month of history: two orders, a renewal paid from the balance, a
    partial credit note, a top-up; and Bob, whose services name Acme as tech or billing contact.
    With ``paygo`` (a dict, filled in), also two Public Cloud projects: see :func:`_paygo_january`."""
    acme = shop.signup("FR", name="Acme SAS", top_up="500.00", vat_number="FR40303265045")
    first = shop.order(acme, STARTER)
    second = shop.order(acme, PRO)
    shop.deliver()
    if paygo is not None:
        paygo.update(_paygo_january(shop, acme))
    shop.days(dt.date(2026, 2, 1))  # the renewals (lead time 7 days) are invoiced and paid from the balance
    if paygo is not None:
        _paygo_february(shop, acme, paygo)
    staff = staff or shop.staff()
    r = shop.client.post(f"/v1/staff/invoices/{second['invoice']['id']}/credit-notes",
                         json={"reason": "Goodwill", "lines": [{"line_id": second["invoice"]["lines"][0]["id"], "amount": "1.00"}]},
                         headers={**staff, "Idempotency-Key": "cn-1"})
    assert r.status_code == 201, r.text
    return acme, first, second


def _paygo_january(shop, acme) -> dict:
    """On 5 January: project ``p`` used 10 hours of b3-8 and 3 × 12.345678 GB-hours of block
    storage, and takes a savings plan (50.00 € a month from February, 15 % off) and a spending
    alert at 5.00 €; project ``free`` used 200 GB of egress (within the free allowance)."""
    p = shop.order(acme, PROJECT)["services"][0]["id"]
    free = shop.order(acme, PROJECT)["services"][0]["id"]
    send(shop.client, acme, hourly(p, "vm", range(10))
         + hourly(p, "vol", range(3), metric="block_storage_gb_hours", dimension=None, quantity="12.345678")
         + hourly(free, "out", range(2), metric="egress_gb", dimension=None, quantity="100"))
    r = shop.client.post(f"/v1/services/{p}/commitments", json={"monthly": "50.00"}, headers=acme["headers"])
    assert r.status_code == 201, r.text
    r = shop.client.put(f"/v1/services/{p}/spending-alert", json={"threshold": "5.00"}, headers=acme["headers"])
    assert r.status_code == 200, r.text
    return {"p": p, "free": free}


def _paygo_february(shop, acme, paygo) -> None:
    """On 1 February: January is invoiced (``p``) or closed free (``free``); ``p`` runs 10 more hours
    of b3-8 in February, and its alert is reached (the plan's 50.00 € are due whatever the usage)."""
    from core.models import SpendingAlert, UsagePeriod

    with shop.rt.engine.connect() as conn:  # shop.days ran the monthly run on 1 February, as the scheduler does
        t = UsagePeriod.__table__
        closed = conn.execute(select(t.c.service_id, t.c.invoice_id).where(t.c.period == JANUARY)).all()
    assert len(closed) == 2 and [i is not None for _, i in sorted(closed)] == [True, False], closed
    assert metering.run_usage_billing(shop.rt, JANUARY).projects == 0  # twice is once
    shop.clock.set("2026-02-01T12:00:00+00:00")
    base = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    send(shop.client, acme, [{"id": f"feb-{h}", "project": paygo["p"], "metric": "instance_hours", "dimension": "b3-8",
                              "quantity": "1", "at": (base + dt.timedelta(hours=h)).isoformat()} for h in range(10)])
    alerts.check_alerts(shop.rt)
    with shop.rt.engine.connect() as conn:
        a = SpendingAlert.__table__
        assert conn.execute(select(a.c.notified_period).where(a.c.service_id == paygo["p"])).scalar_one() == dt.date(2026, 2, 1)
    [paygo["invoice"]] = [i["id"] for i in shop.invoices(acme) if i["kind"] == "usage"]


def _bob_names_acme(shop, acme) -> tuple[dict, list[int]]:
    bob = shop.signup("FR", name="Bob Secret SARL", top_up="500.00")
    tech = shop.order(bob, STARTER)["services"][0]["id"]
    billing = shop.order(bob, STARTER)["services"][0]["id"]
    with shop.rt.engine.begin() as conn:
        conn.execute(update(svc).where(svc.c.id == tech).values(tech_account_id=acme["id"]))
        conn.execute(update(svc).where(svc.c.id == billing).values(billing_account_id=acme["id"]))
    return bob, [tech, billing]


def test_the_export_holds_the_account_its_services_invoices_payments_and_audit_log(shop):
    acme, first, second = _history(shop)
    bob, (tech, billing) = _bob_names_acme(shop, acme)
    doc = _me_export(shop, acme)
    account_import.parse(doc)  # the document is of its declared type, field by field
    assert (doc["format"], doc["version"], doc["usage"]) == ("univers-export", 1, [])
    accepted = {(c["document"], c["order_id"], c["channel"]) for c in doc["contracts"]}  # the terms of both orders
    assert accepted == {("general", first["id"], "api"), ("web", first["id"], "api"), ("general", second["id"], "api"),
                        ("web", second["id"], "api")} or accepted == {("general", first["id"], "api"),
                                                                     ("general", second["id"], "api")}
    assert doc["account"]["handle"] == acme["handle"] and doc["account"]["vat_number"] == "FR40303265045"
    assert doc["api_keys"] and "key_hash" not in doc["api_keys"][0] and doc["api_keys"][0]["prefix"].startswith("uk_")
    roles = {s["id"]: s["roles"] for s in doc["services"]}
    assert roles == {first["services"][0]["id"]: ["admin", "tech", "billing"], second["services"][0]["id"]: ["admin", "tech", "billing"],
                     tech: ["tech"], billing: ["billing"]}
    bobs = {s["id"]: s for s in doc["services"]}[tech]
    assert bobs["holder"] == bob["handle"] and bobs["contacts"] == {"admin": bob["handle"], "tech": acme["handle"], "billing": bob["handle"]}
    assert bobs["order_id"] is None  # Bob's order is not Acme's
    numbers = [i["number"] for i in doc["invoices"]]
    assert numbers[:2] == [first["invoice"]["number"], second["invoice"]["number"]]
    assert [i["kind"] for i in doc["invoices"]] == ["order", "order", "renewal"]  # both services renewed on one invoice
    assert len(doc["invoices"][2]["lines"]) == 2 and doc["invoices"][2]["taxes"][0]["rate"] == "20"
    assert all(check_pdfa(base64.b64decode(i["pdf"])) == [] for i in doc["invoices"] + doc["credit_notes"])  # PDF/A-3b
    assert doc["invoices"][0]["total"] == first["invoice"]["total"]["amount"] and doc["invoices"][0]["currency"] == "EUR"
    [credit] = doc["credit_notes"]
    assert credit["credits"] == second["invoice"]["id"] and credit["net"] == "1.00" and credit["number"].startswith("FRC-2026-")
    assert {(p["purpose"], p["status"]) for p in doc["payments"]} == {("topup", "succeeded"), ("invoice", "succeeded")}
    balance = doc["balance"]
    assert balance["currency"] == "EUR" and sum(float(e["amount"]) for e in balance["entries"]) == pytest.approx(float(balance["amount"]))
    actions = {(e["entity"], e["action"]) for e in doc["audit"]}
    assert {("account", "account.created"), ("service", "service.created"), ("service", "service.delivered"),
            ("service", "service.renewal_invoiced"), ("order", "order.created"), ("invoice", "credit_note.issued"),
            ("payment", "payment.succeeded")} <= actions
    assert [e["id"] for e in doc["audit"]] == sorted(e["id"] for e in doc["audit"])


def test_no_other_accounts_data_appears_in_an_export(shop):
    acme, _, _ = _history(shop)
    bob, (tech, billing) = _bob_names_acme(shop, acme)
    text = json.dumps(_me_export(shop, acme))
    assert "Bob Secret" not in text and "ops@acme.example" in text
    bob_doc = _me_export(shop, bob)
    bob_invoices = {i["id"] for i in bob_doc["invoices"]}
    doc = _me_export(shop, acme)
    assert not bob_invoices & {i["id"] for i in doc["invoices"]}
    assert not {o["id"] for o in bob_doc["orders"]} & {o["id"] for o in doc["orders"]}
    afters = [e["after"] for e in doc["audit"] if isinstance(e["after"], dict)]
    assert not {a.get("invoice_id") for a in afters} & bob_invoices  # Bob's service's events name no Bob invoice
    assert not {a.get("order_id") for a in afters} & {o["id"] for o in bob_doc["orders"]}
    assert "Acme SAS" not in json.dumps(bob_doc)  # Bob sees Acme by handle only, as a contact
    assert {tech, billing} <= {s["id"] for s in bob_doc["services"]}


def test_the_export_holds_the_usage_sums_savings_plan_alert_and_exact_line_quantities(shop):
    paygo: dict = {}
    acme, _, _ = _history(shop, paygo=paygo)
    doc = _me_export(shop, acme)
    account_import.parse(doc)
    p, free = paygo["p"], paygo["free"]
    usage = [(u["service_id"], u["period"], u["metric"], u["dimension"], u["quantity"], u["records"], u["closed"])
             for u in doc["usage"]]
    assert usage == [
        (p, "2026-01-01", "block_storage_gb_hours", None, "37.037034", 3, True),  # the exact sum, as a decimal string
        (p, "2026-01-01", "instance_hours", "b3-8", "10", 10, True),
        (p, "2026-02-01", "instance_hours", "b3-8", "10", 10, False),  # the month so far: open
        (free, "2026-01-01", "egress_gb", None, "200", 2, True),
    ]
    periods = {(x["service_id"], x["period"]): x["invoice_id"] for x in doc["usage_periods"]}
    assert periods == {(p, "2026-01-01"): paygo["invoice"], (free, "2026-01-01"): None}  # a free month has no invoice
    [plan] = doc["commitments"]
    assert {k: plan[k] for k in ("service_id", "currency", "monthly", "percent_off", "months", "starts_on", "ends_on")} == {
        "service_id": p, "currency": "EUR", "monthly": "50.00", "percent_off": "15", "months": 12,
        "starts_on": "2026-02-01", "ends_on": "2027-02-01"}
    assert plan["created_by"] == f"account:{acme['handle']}"
    assert doc["spending_alerts"] == [{"service_id": p, "threshold": "5.00", "currency": "EUR", "set_at": "2026-01-05T09:00:00Z",
                                       "set_by": f"account:{acme['handle']}", "notified_period": "2026-02-01"}]
    [usage_invoice] = [i for i in doc["invoices"] if i["kind"] == "usage"]
    lines = {(ln["product"], ln["plan"]): ln for ln in usage_invoice["lines"]}
    b3_8 = lines[("instance_hours", "b3-8")]
    assert (b3_8["quantity"], b3_8["unit_price"], b3_8["net"]) == (1, "0.51", "0.51")  # 10 × 0.0511 = 0.511
    assert (b3_8["exact_quantity"], b3_8["exact_unit_price"]) == ("10", "0.0511")
    assert lines[("block_storage_gb_hours", "")]["exact_quantity"] == "37.037034"
    assert all(ln["exact_quantity"] is None for i in doc["invoices"] if i["kind"] != "usage" for ln in i["lines"])
    plan_events = [e for e in doc["audit"] if e["action"] == "service.commitment"]
    assert plan_events and plan_events[0]["after"]["commitment_id"] == plan["id"]


def test_the_export_round_trips_through_another_database(shop, other_db):
    zed = shop.signup("FR", name="Zed SARL", top_up="100.00")  # so that ids in database A are not those of B
    shop.order(zed, STARTER)
    project = shop.order(zed, PROJECT)["services"][0]["id"]
    r = shop.client.post(f"/v1/services/{project}/commitments", json={"monthly": "50.00"}, headers=zed["headers"])
    assert r.status_code == 201, r.text
    paygo: dict = {}
    acme, _, _ = _history(shop, paygo=paygo)
    shop.days(dt.date(2026, 2, 10))
    first = _me_export(shop, acme)
    assert first["usage"] and first["usage_periods"] and first["commitments"] and first["spending_alerts"]
    with unit_of_work(other_db) as conn:
        result = account_import.import_account(conn, other_db, first)
    assert result.remapped_contacts == [] and result.handle == acme["handle"] and not result.handle_changed
    with unit_of_work(other_db) as conn:
        again = export.export_account(conn, other_db, result.account_id)
    a, b = export.canonical(first), export.canonical(again)
    imported = b["audit"].pop()
    assert imported["action"] == "account.imported" and imported["actor"] == "system:import"
    assert (imported["after"]["usage"], imported["after"]["usage_periods"], imported["after"]["commitments"]) == (4, 2, 1)
    for section in SECTIONS + PAYG:
        assert b[section] == a[section], section
    assert [u["records"] for u in again["usage"]] == [1, 1, 1, 1]  # each month's sum is one record here
    [plan_event] = [e for e in again["audit"] if e["action"] == "service.commitment"]
    assert plan_event["after"]["commitment_id"] == again["commitments"][0]["id"] != first["commitments"][0]["id"]
    # in database B, the month so far carries on (priced with the plan) and January stays closed
    new_p = {s["id"] for s in again["services"] if s["plan"] == PROJECT} & {c["service_id"] for c in again["commitments"]}
    [new_p] = new_p
    with unit_of_work(other_db) as conn:
        month = metering.consumption(conn, other_db, Actor.system("test"), new_p)
        from core.usage.ingest import UsageRecordIn, ingest

        late = ingest(conn, other_db, Actor.system("test"), [UsageRecordIn(
            "late", new_p, "instance_hours", msgspec.Raw(b'"1"'), dt.datetime(2026, 1, 31, tzinfo=dt.UTC), "b3-8")])
        period = conn.execute(select(UsagePeriod.__table__.c.invoice_id)
                              .where(UsagePeriod.__table__.c.service_id == new_p)).scalar_one()
    assert (month["total_minor"], month["plan"]["monthly_minor"], month["due_minor"]) == (51, 5000, 5000)
    assert late.rejected == [(0, "closed_period")]
    [usage_invoice] = [i["id"] for i in again["invoices"] if i["kind"] == "usage"]
    assert period == usage_invoice
    assert again["account"]["id"] == result.account_id
    assert [i["number"] for i in again["invoices"]] == [i["number"] for i in first["invoices"]]
    assert all(base64.b64decode(i["pdf"]).startswith(b"%PDF") for i in again["invoices"])


def test_a_document_made_before_pay_as_you_go_still_imports(shop, other_db):
    paygo: dict = {}
    acme, _, _ = _history(shop, paygo=paygo)
    doc = _me_export(shop, acme)
    for key in PAYG:
        del doc[key]
    doc["usage"] = []
    for i in doc["invoices"] + doc["credit_notes"]:
        for ln in i["lines"]:
            del ln["exact_quantity"], ln["exact_unit_price"]
    with unit_of_work(other_db) as conn:
        result = account_import.import_account(conn, other_db, json.dumps(doc))
        again = export.export_account(conn, other_db, result.account_id)
        counts = [conn.execute(select(func.count()).select_from(t.__table__)).scalar_one()
                  for t in (UsageRecord, UsagePeriod, Commitment, SpendingAlert)]
    assert counts == [0, 0, 0, 0]
    assert (again["usage"], again["usage_periods"], again["commitments"], again["spending_alerts"]) == ([], [], [], [])
    assert all(ln["exact_quantity"] is None for i in again["invoices"] for ln in i["lines"])
    assert export.canonical(doc)["commitments"] == []  # canonical reads it too


def test_import_refuses_pay_as_you_go_parts_that_would_not_load(shop, rt, other_db):
    paygo: dict = {}
    acme, _, _ = _history(shop, paygo=paygo)
    doc = _me_export(shop, acme)
    u = doc["usage"][0]
    for bad in ({**doc, "usage": [{**u, "service_id": 999_999}]}, {**doc, "usage": [{**u, "quantity": "0.0000001"}]},
                {**doc, "usage": [{**u, "metric": "teleportation"}]}, {**doc, "usage": [u, u]},
                {**doc, "usage": [{**u, "period": "2026-01-02"}]}, {**doc, "commitments": doc["commitments"] * 2},
                {**doc, "spending_alerts": [{**doc["spending_alerts"][0], "service_id": 999_999}]}):
        with pytest.raises(Exception) as caught:
            with unit_of_work(other_db) as conn:
                account_import.import_account(conn, other_db, bad)
        assert getattr(caught.value, "code", None) == "invalid_export", bad
    with other_db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Account.__table__)).scalar_one() == 0


def test_an_import_keeps_invoice_numbers_and_new_ones_follow_them(shop, other_db):
    acme, _, _ = _history(shop)
    doc = _me_export(shop, acme)
    with unit_of_work(other_db) as conn:
        account_import.import_account(conn, other_db, doc)
    with unit_of_work(other_db) as conn:
        new, _ = customers.create_customer(conn, other_db, {"subsidiary": "FR", "name": "Newco", "email": "n@newco.example"})
        conn.execute(update(Account.__table__).where(Account.__table__.c.id == new["id"]).values(balance_minor=100_000))
        from core.ordering.orders import checkout, dry_run

        account = Account(**conn.execute(select(Account.__table__).where(Account.__table__.c.id == new["id"])).mappings().one())
        cart = {"items": [{"plan": STARTER}]}
        cart["accept"] = [c["content_hash"] for c in dry_run(conn, other_db, account, cart, "fr")["contracts"]]
        checkout(conn, other_db, account, cart, "k1", Actor.of(account), "fr")
        numbers = conn.execute(select(inv.c.series, inv.c.seq).where(inv.c.account_id == new["id"])).all()
    last = max(i["seq"] for i in doc["invoices"] if i["series"] == "FR")
    assert numbers == [("FR", last + 1)]


def test_issued_invoices_are_imported_immutable(shop, other_db):
    from sqlalchemy.exc import DBAPIError

    acme, _, _ = _history(shop)
    with unit_of_work(other_db) as conn:
        result = account_import.import_account(conn, other_db, _me_export(shop, acme))
    with pytest.raises(DBAPIError, match="invoice_immutable"):
        with unit_of_work(other_db) as conn:
            conn.execute(update(inv).where(inv.c.account_id == result.account_id).values(total_minor=1))


def test_import_gives_another_accounts_contact_roles_to_the_imported_account(shop, other_db):
    acme, _, _ = _history(shop)
    bob, (tech, billing) = _bob_names_acme(shop, acme)
    with unit_of_work(other_db) as conn:
        result = account_import.import_account(conn, other_db, _me_export(shop, acme))
    remapped = {(c["service_id"], c["role"], c["handle"]) for c in result.remapped_contacts}
    assert remapped == {(tech, "holder", bob["handle"]), (tech, "admin", bob["handle"]), (tech, "billing", bob["handle"]),
                        (billing, "holder", bob["handle"]), (billing, "admin", bob["handle"]), (billing, "tech", bob["handle"])}
    with other_db.engine.connect() as conn:
        rows = conn.execute(select(svc)).mappings().all()
    assert len(rows) == 4 and all(r[c] == result.account_id for r in rows
                                  for c in ("account_id", "admin_account_id", "tech_account_id", "billing_account_id"))


def test_import_refuses_what_is_not_an_export_and_numbers_already_used(shop, rt):
    acme, _, _ = _history(shop)
    doc = _me_export(shop, acme)
    count = shop.count(Account)
    for bad, code in (({**doc, "version": 2}, "unsupported_export"), ({"hello": 1}, "unsupported_export"),
                      ({**doc, "services": [{"id": "x"}]}, "invalid_export"), (doc, "invoice_number_taken")):
        with pytest.raises(Exception) as caught:
            with unit_of_work(rt) as conn:
                account_import.import_account(conn, rt, bad)
        assert getattr(caught.value, "code", None) == code
    assert shop.count(Account) == count


def test_closing_is_refused_while_a_service_runs(shop):
    acme = shop.signup("FR", top_up="100.00")
    shop.order(acme, STARTER)
    shop.deliver()
    r = shop.client.delete("/v1/me", headers=acme["headers"])
    assert r.status_code == 409 and r.json()["code"] == "account_has_services"
    assert shop.client.get("/v1/me", headers=acme["headers"]).status_code == 200


def test_closing_is_refused_while_a_service_it_is_only_tech_contact_of_runs(shop):
    acme = shop.signup("FR")
    bob, _ = _bob_names_acme(shop, acme)
    r = shop.client.delete("/v1/me", headers=acme["headers"])
    assert r.status_code == 409 and r.json()["code"] == "account_has_services"


def test_closing_is_refused_with_an_unpaid_invoice_or_a_payment_in_progress(shop):
    acme = shop.signup("FR")
    order = shop.order(acme, STARTER, payment={"method": "test", "outcome": "decline"})
    sid = order["services"][0]["id"]
    assert shop.client.post(f"/v1/services/{sid}/terminate", headers=acme["headers"]).status_code == 200
    r = shop.client.delete("/v1/me", headers=acme["headers"])
    assert r.status_code == 409 and r.json()["code"] == "account_has_unpaid"
    assert "1" in r.json()["detail"]
    paid = shop.client.post(f"/v1/invoices/{order['invoice']['id']}/payments", json={"method": "test", "outcome": "success"},
                            headers=acme["headers"])
    assert paid.status_code == 201
    r = shop.client.post("/v1/me/balance/top-ups", json={"amount": "10.00", "outcome": "pending"}, headers=acme["headers"])
    assert r.status_code == 201 and r.json()["status"] == "pending"
    r = shop.client.delete("/v1/me", headers={**acme["headers"], "Accept-Language": "fr"})
    assert r.status_code == 409 and r.json()["code"] == "account_has_pending_payments"
    assert r.json()["detail"] == "Paiements encore en cours : 1. Fermez le compte une fois qu'ils sont réglés."


def test_an_account_closes_once_everything_stopped_and_paid(shop, rt):
    acme, first, second = _history(shop)
    for order in (first, second):
        sid = order["services"][0]["id"]
        assert shop.client.post(f"/v1/services/{sid}/stop", headers=acme["headers"]).status_code == 200
    refused = shop.client.delete("/v1/me", headers=acme["headers"])
    assert refused.status_code == 409 and refused.json()["code"] == "account_has_services"
    shop.days(dt.date(2026, 3, 10))  # past the paid period: both have ended
    with rt.engine.connect() as conn:
        invoices_before = _invoices(conn, acme["id"])
    assert invoices_before[0] and {i["buyer_name"] for i in invoices_before[0]} == {"Acme SAS"}
    r = shop.client.delete("/v1/me", headers=acme["headers"])
    assert r.status_code == 200, r.text
    closed = r.json()
    assert closed["name"] == "Closed account" and closed["vat_number"] is None and "acme" not in closed["email"]
    assert closed["country"] == "FR" and closed["subsidiary"] == "FR" and closed["handle"] == acme["handle"]
    assert shop.client.get("/v1/me", headers=acme["headers"]).status_code == 401  # its key no longer works
    with rt.engine.connect() as conn:
        assert _invoices(conn, acme["id"]) == invoices_before  # same totals, same buyer, same lines
        row = conn.execute(select(Account.__table__).where(Account.__table__.c.id == acme["id"])).mappings().one()
        events = conn.execute(select(AuditEvent.__table__).where(AuditEvent.__table__.c.entity == "account",
                                                                 AuditEvent.__table__.c.entity_id == acme["id"])).mappings().all()
        keys = conn.execute(select(customers.keys).where(customers.keys.c.account_id == acme["id"])).mappings().all()
    assert row["closed_at"] is not None and row["vat_confirmation"] is None and row["region"] is None
    assert all(k["revoked_at"] is not None for k in keys)
    assert events[-1]["action"] == "account.closed"
    text = json.dumps([dict(e) for e in events], default=str)
    assert "FR40303265045" not in text and "Acme" not in text and "ops@acme" not in text


def _invoices(conn, account_id) -> tuple:
    ids = select(inv.c.id).where(inv.c.account_id == account_id)
    lines, taxes = InvoiceLine.__table__, InvoiceTax.__table__
    return (
        [dict(r) for r in conn.execute(select(inv).where(inv.c.account_id == account_id).order_by(inv.c.id)).mappings()],
        conn.execute(select(lines).where(lines.c.invoice_id.in_(ids)).order_by(lines.c.id)).all(),
        conn.execute(select(taxes).where(taxes.c.invoice_id.in_(ids)).order_by(taxes.c.invoice_id, taxes.c.category)).all(),
    )


def _staff(shop, role: str) -> dict:
    with unit_of_work(shop.rt) as conn:
        _, key = customers.create_customer(conn, shop.rt, {"subsidiary": "FR", "name": f"Staff {role}", "email": "s@univers.example"},
                                           is_staff=True, staff_role=role)
    return {"Authorization": f"Bearer {key}"}


def test_staff_export_and_close_a_customer_by_role(shop):
    acme = shop.signup("FR")
    support, admin = _staff(shop, "support_agent"), _staff(shop, "administrator")
    r = shop.client.get(f"/v1/staff/customers/{acme['id']}/export", headers=support)
    assert r.status_code == 200 and r.json()["account"]["handle"] == acme["handle"]
    assert shop.client.get(f"/v1/staff/customers/{acme['id']}/export", headers=acme["headers"]).status_code == 403
    assert shop.client.get("/v1/staff/customers/999999/export", headers=support).status_code == 404
    r = shop.client.post(f"/v1/staff/customers/{acme['id']}/close", headers=support)
    assert r.status_code == 403 and r.json()["code"] == "role_forbids"
    r = shop.client.post(f"/v1/staff/customers/{acme['id']}/close", headers=admin)
    assert r.status_code == 200 and r.json()["name"] == "Closed account"
    again = shop.client.post(f"/v1/staff/customers/{acme['id']}/close", headers=admin)
    assert again.status_code == 409 and again.json()["code"] == "account_closed"
    assert shop.client.get("/v1/me", headers=acme["headers"]).status_code == 401


def test_export_and_closure_need_the_account_scopes(shop, rt):
    acme = shop.signup("FR")
    with unit_of_work(rt) as conn:
        narrow = customers.issue_key(conn, rt, acme["id"], scopes="services:read billing:read")
        reader = customers.issue_key(conn, rt, acme["id"], scopes="account:read")
    r = shop.client.get("/v1/me/export", headers={"Authorization": f"Bearer {narrow}"})
    assert r.status_code == 403 and r.json()["code"] == "scope_missing"
    assert shop.client.get("/v1/me/export", headers={"Authorization": f"Bearer {reader}"}).status_code == 200
    r = shop.client.delete("/v1/me", headers={"Authorization": f"Bearer {reader}"})
    assert r.status_code == 403 and r.json()["code"] == "scope_missing"
    assert shop.client.get("/v1/me", headers=acme["headers"]).status_code == 200


def test_the_cli_exports_a_customer_and_imports_it_elsewhere(shop, rt, other_db, tmp_path, database_url, engine_name):
    from core.cli import main

    acme, _, _ = _history(shop)

    def url(runtime, schema):
        text = runtime.engine.url.render_as_string(hide_password=False)
        return text if schema is None else f"{text}?options=-csearch_path%3D{schema}"

    with other_db.engine.connect() as conn:
        b_schema = None if engine_name == "sqlite" else conn.exec_driver_sql("select current_schema()").scalar()
    target = tmp_path / "acme.json"
    export_cmd = ["export", "--customer", acme["handle"], "--out", str(target), "--no-pdf", "--database", url(rt, database_url[1])]
    assert main(export_cmd) == 1 and not target.exists()  # a back-office command: a staff key is needed
    support = _staff(shop, "support_agent")["Authorization"].split()[1]
    assert main([*export_cmd, "--key", support]) == 0
    doc = json.loads(target.read_text())
    assert doc["account"]["handle"] == acme["handle"] and doc["invoices"][0]["pdf"] is None
    with unit_of_work(other_db) as conn:
        admin_b = customers.create_customer(conn, other_db, {"subsidiary": "FR", "name": "B admin", "email": "a@b.example"},
                                            is_staff=True, staff_role="administrator")
    import_cmd = ["import", str(target), "--database", url(other_db, b_schema)]
    support_b = _staff(Shop(None, other_db, None), "support_agent")["Authorization"].split()[1]
    assert main([*import_cmd, "--key", support_b]) == 1  # importing creates an account: administrators only
    assert main([*import_cmd, "--key", admin_b[1]]) == 0
    with other_db.engine.connect() as conn:
        handles = conn.execute(select(Account.__table__.c.handle).where(Account.__table__.c.is_staff.is_(False))).scalars().all()
        imported_by = conn.execute(select(AuditEvent.__table__.c.actor).where(AuditEvent.__table__.c.action == "account.imported")).scalar_one()
    assert handles == [acme["handle"]] and imported_by == f"staff:{admin_b[0]['handle']}"


def test_the_format_has_a_json_schema_naming_every_section():
    schema = export_format.json_schema()
    document = schema["$defs"]["AccountExport"]
    required = set(SECTIONS) | {"format", "version", "exported_at", "api_keys"}
    assert required == set(document["required"]) and required | set(PAYG) == set(document["properties"])
    assert {"service_id", "period", "metric", "dimension", "quantity", "records", "closed"} == set(
        schema["$defs"]["UsagePart"]["required"])
    assert "exact_quantity" not in schema["$defs"]["InvoiceLinePart"]["required"]  # new fields have defaults
    assert "key_hash" not in json.dumps(schema)
