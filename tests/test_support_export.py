"""Support tickets in the account export, on both engines: the tickets the account may read, their
thread without the agents' internal notes, their breaches with the credit notes; imported into
another database they keep their clocks, and a breach already credited is never credited again."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.errors import InvalidInput
from core.models import Account, SlaBreach, SupportTicket
from core.portability import account_import, export
from core.support import sla
from core.uow import unit_of_work
from tests.test_export import _bob_names_acme

SERVER = "bm-ks-1-p1m"


def _post(shop, path, headers, body, expect):
    r = shop.client.post(path, headers=headers, json=body)
    assert r.status_code == expect, r.text
    return r.json()


def _history(shop, clock):
    """Acme: a server on level 2, an urgent ticket answered late (a breach, credited), with an internal
    note and a reply of the customer; Bob's service names Acme as billing contact: his ticket about
    an invoice is Acme's to read, his technical one is not."""
    acme = shop.signup(top_up="900.00")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    shop.order(acme, "support-baremetal-l2")
    shop.deliver()
    staff = shop.staff()
    ticket = _post(shop, "/v1/support/tickets", acme["headers"], {
        "service_id": server, "subject": "Down", "message": "It is down.", "priority": "urgent"}, 201)
    clock.advance(hours=2)
    assert sla.run_sla(shop.rt).breaches == 1
    answers = f"/v1/staff/support/tickets/{ticket['id']}/answers"
    _post(shop, answers, staff, {"message": "Customer is on an old kernel.", "internal": True}, 200)
    _post(shop, answers, staff, {"message": "The switch port is replaced.", "status": "waiting_for_customer"}, 200)
    _post(shop, f"/v1/support/tickets/{ticket['id']}/messages", acme["headers"], {"message": "Still slow."}, 201)
    bob, (_, billing) = _bob_names_acme(shop, acme)
    invoice = _post(shop, "/v1/support/tickets", bob["headers"], {
        "service_id": billing, "subject": "VAT", "message": "Which rate?", "category": "billing"}, 201)
    _post(shop, "/v1/support/tickets", bob["headers"], {
        "service_id": billing, "subject": "Bob's secret", "message": "Password is hunter2."}, 201)
    return acme, ticket, invoice


def _export(shop, customer):
    r = shop.client.get("/v1/me/export", headers=customer["headers"])
    assert r.status_code == 200, r.text
    return r.json()


def test_the_export_holds_the_tickets_the_account_reads_without_internal_notes(shop, clock):
    acme, ticket, invoice = _history(shop, clock)
    doc = _export(shop, acme)
    assert [t["id"] for t in doc["tickets"]] == [ticket["id"], invoice["id"]]
    mine = doc["tickets"][0]
    assert [e["kind"] for e in mine["thread"]] == ["opened", "agent_reply", "status", "customer_reply", "status"]
    assert "old kernel" not in str(doc) and "hunter2" not in str(doc)
    (breach,) = mine["breaches"]
    assert breach["target"] == "first_response" and breach["credit"] == "1.50"
    assert breach["credit_note_id"] in {n["id"] for n in doc["credit_notes"]}
    assert mine["opened_by"] == acme["handle"] and doc["tickets"][1]["opened_by"] is None  # Bob opened it
    assert {"ticket.opened", "ticket.breached", "ticket.answered", "ticket.replied"} <= {
        e["action"] for e in doc["audit"] if e["entity"] == "ticket"}


def test_imported_tickets_keep_their_clocks_and_are_never_credited_twice(shop, clock, other_db):
    acme, ticket, _ = _history(shop, clock)
    first = _export(shop, acme)
    with unit_of_work(other_db) as conn:
        result = account_import.import_account(conn, other_db, first)
    assert result.counts["tickets"] == 2
    with unit_of_work(other_db) as conn:
        again = export.export_account(conn, other_db, result.account_id)
    a, b = export.canonical(first), export.canonical(again)
    assert b["tickets"] == a["tickets"]
    assert b["audit"][:-1] == a["audit"] and b["credit_notes"] == a["credit_notes"]

    tk = SupportTicket.__table__
    new_id = again["tickets"][0]["id"]
    with shop.rt.engine.connect() as conn:
        old = conn.execute(select(tk).where(tk.c.id == ticket["id"])).mappings().one()
        before = sla.hours_and_clocks(conn, shop.rt, dict(old), clock.now())[1]
    with other_db.engine.connect() as conn:
        new = conn.execute(select(tk).where(tk.c.id == new_id)).mappings().one()
        after = sla.hours_and_clocks(conn, other_db, dict(new), clock.now())[1]
    assert after == before and any(c.breached for c in after)
    clock.advance(days=3)
    sla.run_sla(other_db)  # the next response and resolution run out in database B; the first response was credited in A
    with other_db.engine.connect() as conn:
        b_ = SlaBreach.__table__
        rows = conn.execute(select(b_.c.target, b_.c.credit_note_id).where(b_.c.ticket_id == new_id)
                            .order_by(b_.c.id)).all()
    assert rows[0] == ("first_response", again["tickets"][0]["breaches"][0]["credit_note_id"])
    assert [t for t, _ in rows].count("first_response") == 1


def test_an_export_whose_tickets_would_not_load_is_refused_and_changes_nothing(shop, clock, other_db):
    acme, _, _ = _history(shop, clock)
    doc = _export(shop, acme)
    for breakage in (lambda d: d["tickets"][0].update(service_id=999_999),
                     lambda d: d["tickets"][0]["thread"].pop(0),
                     lambda d: d["tickets"][0]["breaches"][0].update(credit_note_id=999_999)):
        broken = {**doc, "tickets": [dict(t, thread=list(t["thread"]), breaches=[dict(x) for x in t["breaches"]])
                                     for t in doc["tickets"]]}
        breakage(broken)
        with pytest.raises(InvalidInput) as refused, unit_of_work(other_db) as conn:
            account_import.import_account(conn, other_db, broken)
        assert refused.value.code == "invalid_export"
    with other_db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Account.__table__)
                            .where(Account.__table__.c.is_staff.is_(False))).scalar_one() == 0
