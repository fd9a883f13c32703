"""Keeping the SLA, on both engines: a breach is recorded once per ticket and target and credits a
paid level's invoice through a credit note that passes EN 16931; the job that finds due clocks
raises warnings and escalations only in the storefront's business hours, and two workers never
record a breach twice. The clock starts on Monday 5 January 2026 at 10:00 in Paris."""

from __future__ import annotations

import threading

from sqlalchemy import select

from core.billing.documents import render
from core.billing.einvoice_check import check
from core.models import AuditEvent, Invoice, SlaBreach, SupportTicket
from core.support.sla import run_sla

SERVER = "bm-ks-1-p1m"


def _setup(shop, *levels):
    acme = shop.signup(top_up="900.00")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    for level in levels:
        shop.order(acme, level)
    shop.deliver()
    return acme, server


def _open(shop, customer, service_id, **body):
    r = shop.client.post("/v1/support/tickets", headers=customer["headers"], json={
        "service_id": service_id, "subject": "Down", "message": "The server does not answer.", **body})
    assert r.status_code == 201, r.text
    return r.json()


def _ticket(shop, customer, ticket_id):
    r = shop.client.get(f"/v1/support/tickets/{ticket_id}", headers=customer["headers"])
    assert r.status_code == 200, r.text
    return r.json()


def _audit(shop, action):
    a = AuditEvent.__table__
    with shop.rt.engine.connect() as conn:
        return conn.execute(select(a.c.after).where(a.c.entity == "ticket", a.c.action == action)).scalars().all()


def test_a_breach_credits_the_paid_levels_invoice_once(shop, clock, tmp_path):
    acme, server = _setup(shop, "support-baremetal-l2")
    ticket = _open(shop, acme, server, priority="urgent")  # first response within 1 business hour: 11:00 in Paris
    assert run_sla(shop.rt).checked == 0  # nothing is due yet
    clock.advance(hours=2)
    done = run_sla(shop.rt)
    assert (done.checked, done.breaches) == (1, 1)
    read = _ticket(shop, acme, ticket["id"])
    (breach,) = read["breaches"]
    assert (breach["target"], breach["breached_at"]) == ("first_response", "2026-01-05T10:00:00Z")
    assert breach["credit"]["amount_minor"] == 150  # 5 % of 29.99, rounded half up once

    inv = Invoice.__table__
    with shop.rt.engine.connect() as conn:
        note = conn.execute(select(inv).where(inv.c.id == breach["credit_note_id"])).mappings().one()
        level_invoice = conn.execute(select(inv).where(inv.c.id == note["credited_invoice_id"])).mappings().one()
        assert (note["kind"], note["total_minor"]) == ("credit_note", 180)  # with French VAT
        assert level_invoice["kind"] == "order" and level_invoice["account_id"] == acme["id"]
        xml, _, _ = render(conn, shop.rt, None, note["id"], "ubl")
    assert check([(xml, "ubl-2.1-creditnote")], tmp_path) == [[]]
    assert shop.client.get("/v1/me", headers=acme["headers"]).json()["balance"]["amount_minor"] > 0

    # again, and after a late answer: still one breach and one credit
    assert run_sla(shop.rt).breaches == 0
    staff = shop.staff()
    r = shop.client.post(f"/v1/staff/support/tickets/{ticket['id']}/answers", headers=staff,
                         json={"message": "Back up; the switch port had failed."})
    assert r.status_code == 200, r.text
    assert shop.count(SlaBreach) == 1 and len(_audit(shop, "ticket.breached")) == 1
    first = next(c for c in r.json()["clocks"] if c["target"] == "first_response")
    assert first["state"] == "met" and first["breached"]


def test_a_breach_on_the_included_level_is_recorded_without_a_credit(shop, clock):
    acme, server = _setup(shop)
    ticket = _open(shop, acme, server)  # level 1: 24 business hours for the first response
    clock.advance(days=3, hours=12)
    assert run_sla(shop.rt).breaches == 1
    (breach,) = _ticket(shop, acme, ticket["id"])["breaches"]
    assert breach["credit_note_id"] is None and breach["credit"] is None
    assert shop.count(Invoice) == 1  # the server's order invoice, nothing more


def test_no_escalation_outside_business_hours(shop, clock):
    acme, server = _setup(shop, "support-baremetal-l2")  # business hours: 1 hour when urgent
    clock.set("2026-01-05T16:00:00+00:00")  # 17:00 in Paris: the target runs out at closing time
    ticket = _open(shop, acme, server, priority="urgent")
    clock.set("2026-01-05T17:30:00+00:00")  # 18:30, the team has left
    done = run_sla(shop.rt)
    assert (done.breaches, done.escalated, done.deferred) == (1, 0, 1)  # the breach is recorded, the alert waits
    tk = SupportTicket.__table__
    with shop.rt.engine.connect() as conn:
        row = conn.execute(select(tk.c.alert_level, tk.c.next_check_at).where(tk.c.id == ticket["id"])).one()
    assert row.alert_level == 0 and row.next_check_at.isoformat() == "2026-01-06T08:00:00+00:00"  # 09:00 in Paris
    assert _ticket(shop, acme, ticket["id"])["breaches"][0]["breached_at"] == "2026-01-05T17:00:00Z"
    clock.set("2026-01-06T02:00:00+00:00")
    assert run_sla(shop.rt).checked == 0  # nothing is looked at in the night
    assert _audit(shop, "ticket.escalated") == []
    clock.set("2026-01-06T08:00:00+00:00")
    assert run_sla(shop.rt).escalated == 1
    assert _audit(shop, "ticket.escalated") == ['{"alert_level": 2}']  # the warning and the breach, in the morning


def test_a_level_that_counts_every_hour_escalates_at_night(shop, clock):
    acme, server = _setup(shop, "support-baremetal-l3")  # 15 minutes when urgent, round the clock
    clock.set("2026-01-05T22:00:00+00:00")  # 23:00 in Paris
    ticket = _open(shop, acme, server, priority="urgent")
    clock.set("2026-01-05T22:40:00+00:00")  # past twice the target
    done = run_sla(shop.rt)
    assert (done.breaches, done.escalated, done.deferred) == (1, 1, 0)
    assert _ticket(shop, acme, ticket["id"])["alert_level"] == 4


def test_a_warning_comes_before_the_breach_in_business_hours(shop, clock):
    acme, server = _setup(shop, "support-baremetal-l2")
    ticket = _open(shop, acme, server, priority="urgent")  # 60 business minutes
    clock.advance(minutes=46)  # past three quarters of the target
    assert (run_sla(shop.rt).escalated, _ticket(shop, acme, ticket["id"])["alert_level"]) == (1, 1)
    assert shop.count(SlaBreach) == 0


def test_two_workers_never_record_a_breach_twice(shop, clock):
    acme, server = _setup(shop, "support-baremetal-l2")
    for _ in range(6):
        _open(shop, acme, server, priority="urgent")
    clock.advance(hours=2)
    results = []
    workers = [threading.Thread(target=lambda: results.append(run_sla(shop.rt, chunk=2))) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sum(r.breaches for r in results) == 6
    assert shop.count(SlaBreach) == 6
    inv = Invoice.__table__
    with shop.rt.engine.connect() as conn:
        notes = conn.execute(select(inv.c.id).where(inv.c.kind == "credit_note")).all()
    assert len(notes) == 6


def test_the_cli_runs_the_sla_job_and_lists_a_queue(shop, monkeypatch, capsys, database_url):
    """The CLI runs on the real clock: the ticket opened on 5 January is long past its target."""
    import datetime as dt
    import json

    from core.cli import main
    from core.support.sla import calendars

    acme, server = _setup(shop, "support-baremetal-l2")
    ticket = _open(shop, acme, server, priority="urgent")
    url, schema = database_url
    monkeypatch.setenv("UNIVERS_DATABASE_URL", f"{url}?options=-csearch_path%3D{schema}" if schema else url)
    monkeypatch.setenv("UNIVERS_STAFF_KEY", shop.staff()["Authorization"][7:])
    assert main(["support", "sla"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["breaches"] == 2  # first response, resolution
    open_now = calendars()["FR"].is_open(dt.datetime.now(dt.timezone.utc))  # a business-hours level alerts in them
    assert main(["support", "queue", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["id"], row["level_code"], row["alert_level"]) == (ticket["id"], "support-baremetal-l2", 4 if open_now else 0)
    monkeypatch.setenv("UNIVERS_STAFF_KEY", acme["headers"]["Authorization"][7:])
    assert main(["support", "queue"]) == 1  # a customer's key is refused
