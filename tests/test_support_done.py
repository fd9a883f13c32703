"""The issue's "done when", end to end through the API, on both engines (the README's walkthrough):
a customer orders Baremetal level 2, opens a ticket on its server, the clock pauses while the
agent waits for the customer, a breach credits the level's invoice and the credit pays towards
the next one; Fast-Path is refused to a non-partner; an abuse case is answered and decided.
The clock starts on Monday 5 January 2026 at 10:00 in Paris."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from core.models import BalanceEntry, Service
from core.support.sla import run_sla

SERVER, LEVEL = "bm-ks-1-p1m", "support-baremetal-l2"


def _ok(r, status=200):
    assert r.status_code == status, r.text
    return r.json()


def _clock(ticket, target):
    return next(c for c in ticket["clocks"] if c["target"] == target)


def test_level_2_pause_breach_credit_fast_path_refused_and_an_abuse_case_decided(shop, clock):
    acme = shop.signup(top_up="900.00")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    level = shop.order(acme, LEVEL)
    level_service = level["services"][0]["id"]
    assert level["invoice"]["lines"][0]["net"]["amount_minor"] == 2999  # 29.99 € a month in France
    shop.deliver()
    agent, c = shop.staff(), shop.client

    # a ticket on the server, on level 2: urgent, 1 business hour for the first response, 8 for the resolution
    ticket = _ok(c.post("/v1/support/tickets", headers=acme["headers"], json={
        "service_id": server, "subject": "Packet loss", "message": "10 % loss since 09:40.", "priority": "urgent"}), 201)
    assert ticket["level"] == LEVEL
    clock.advance(minutes=30)
    answers = f"/v1/staff/support/tickets/{ticket['id']}/answers"
    _ok(c.post(answers, headers=agent, json={"message": "From which IP?", "status": "waiting_for_customer"}))
    clock.set("2026-01-05T13:00:00+00:00")  # 14:00 in Paris: three and a half hours later
    waiting = _ok(c.get(f"/v1/support/tickets/{ticket['id']}", headers=acme["headers"]))
    assert _clock(waiting, "first_response")["state"] == "met"
    resolution = _clock(waiting, "resolution")
    assert (resolution["state"], resolution["used_minutes"], resolution["due_at"]) == ("paused", 30, None)

    # the customer answers: the clock runs on from 30 minutes; the agent misses the next response (2 hours)
    _ok(c.post(f"/v1/support/tickets/{ticket['id']}/messages", headers=acme["headers"], json={"message": "1.2.3.4"}), 201)
    balance = _ok(c.get("/v1/me", headers=acme["headers"]))["balance"]["amount_minor"]
    clock.set("2026-01-05T15:05:00+00:00")  # 16:05 in Paris
    assert run_sla(shop.rt).breaches == 1
    late = _ok(c.get(f"/v1/support/tickets/{ticket['id']}", headers=acme["headers"]))
    assert _clock(late, "resolution")["used_minutes"] == 30 + 125  # the 3.5 hours of waiting are not counted
    (breach,) = late["breaches"]
    assert (breach["target"], breach["breached_at"]) == ("next_response", "2026-01-05T15:00:00Z")
    assert breach["credit"]["amount_minor"] == 150  # 5 % of 29.99, rounded once
    assert _ok(c.get("/v1/me", headers=acme["headers"]))["balance"]["amount_minor"] == balance + 180  # with 20 % VAT

    # the level renews on 5 February: its invoice is paid from the balance the credit went to
    shop.days(dt.date(2026, 2, 5))
    renewal = next(i for i in shop.invoices(acme) if i["kind"] == "renewal"
                   and any(ln["service_id"] == level_service for ln in i["lines"]))
    assert renewal["status"] == "paid"
    e = BalanceEntry.__table__
    with shop.rt.engine.connect() as conn:
        entries = conn.execute(select(e.c.reason, e.c.amount_minor, e.c.invoice_id).where(e.c.account_id == acme["id"])
                               .order_by(e.c.id)).all()
    assert ("credit_note", 180, breach["credit_note_id"]) in entries
    assert entries.index(("credit_note", 180, breach["credit_note_id"])) < next(
        i for i, row in enumerate(entries) if row.invoice_id == renewal["id"])

    # Fast-Path is for partners: refused, nothing ordered
    before = shop.count(Service)
    r = c.post("/v1/orders", headers={**acme["headers"], "Idempotency-Key": "fp"}, json={
        "items": [{"plan": "support-baremetal-fastpath"}], "payment": {"method": "balance"}, "accept": []})
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "partners_only"
    assert shop.count(Service) == before

    # an abuse case: opened by the suspension, answered by the customer, decided by the desk
    _ok(c.post(f"/v1/services/{server}/abuse-suspension", headers=agent, json={"reason": "Phishing page (#4417)."}))
    (case,) = _ok(c.get("/v1/support/tickets?status=waiting_for_customer", headers=acme["headers"]))["items"]
    assert (case["queue"], case["service_id"]) == ("abuse", server)
    _ok(c.post(f"/v1/support/tickets/{case['id']}/messages", headers=acme["headers"], json={"message": "Removed."}), 201)
    _ok(c.post(f"/v1/staff/support/abuse-cases/{case['id']}/decision", headers=agent,
               json={"decision": "lifted", "message": "Checked, the page is gone."}))
    decided = _ok(c.get(f"/v1/support/tickets/{case['id']}", headers=acme["headers"]))
    assert (decided["status"], decided["decision"]) == ("closed", "lifted")
    assert shop.service(acme, server)["state"] == "active"
