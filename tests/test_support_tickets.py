"""Support tickets through the API, on both engines: the level that applies, who may open, read
and write what, the thread and its internal notes, and SLA clocks that pause while the agent waits
for the customer. The clock fixture starts on Monday 5 January 2026 at 10:00 in Paris."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update

from core.models import AuditEvent, Service, SupportTicket, TicketEvent
from core.uow import unit_of_work

SERVER = "bm-ks-1-p1m"
UTC = dt.timezone.utc


def _open(shop, customer, service_id, expect=201, **body):
    r = shop.client.post("/v1/support/tickets", headers=customer["headers"], json={
        "service_id": service_id, "subject": "Server unreachable", "message": "It stopped answering at 09:40.", **body})
    assert r.status_code == expect, r.text
    return r.json()


def _answer(shop, staff, ticket_id, expect=200, **body):
    r = shop.client.post(f"/v1/staff/support/tickets/{ticket_id}/answers", headers=staff, json=body)
    assert r.status_code == expect, r.text
    return r.json()


def _ticket(shop, who, ticket_id):
    r = shop.client.get(f"/v1/support/tickets/{ticket_id}", headers=who["headers"] if "headers" in who else who)
    assert r.status_code == 200, r.text
    return r.json()


def _clock(ticket, target, cycle=1):
    return next(c for c in ticket["clocks"] if (c["target"], c["cycle"]) == (target, cycle))


def _customer_with_server(shop, *levels):
    acme = shop.signup(top_up="900.00")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    for level in levels:
        shop.order(acme, level)
    shop.deliver()
    return acme, server


def test_level_2_clock_pauses_while_the_agent_waits_for_the_customer_and_keeps_the_time_used(shop, clock):
    acme, server = _customer_with_server(shop, "support-baremetal-l2")
    staff = shop.staff()
    ticket = _open(shop, acme, server)
    assert (ticket["level"], ticket["status"], ticket["priority"]) == ("support-baremetal-l2", "new", "normal")
    first = _clock(ticket, "first_response")
    assert (first["limit_minutes"], first["state"]) == (240, "running")
    assert first["due_at"] == "2026-01-05T13:00:00Z"  # 4 business hours from 10:00 in Paris
    assert ticket["due_at"] == first["due_at"]

    clock.advance(hours=1)
    ticket = _answer(shop, staff, ticket["id"], message="Could you send the output of the console?",
                     status="waiting_for_customer")
    assert _clock(ticket, "first_response")["state"] == "met" and ticket["first_response_at"] == "2026-01-05T10:00:00Z"
    assert _clock(ticket, "resolution")["state"] == "paused" and ticket["due_at"] is None

    clock.advance(hours=48)  # two days waiting for the customer: none of it counts
    waiting = _ticket(shop, acme, ticket["id"])
    assert _clock(waiting, "resolution")["used_minutes"] == 60 and not _clock(waiting, "resolution")["breached"]

    r = shop.client.post(f"/v1/support/tickets/{ticket['id']}/messages", headers=acme["headers"],
                         json={"message": "Here it is: kernel panic."})
    assert r.status_code == 201, r.text
    back = r.json()
    assert back["status"] == "open"
    resolution, nxt = _clock(back, "resolution"), _clock(back, "next_response")
    assert (resolution["state"], resolution["used_minutes"]) == ("running", 60)
    assert (nxt["state"], nxt["limit_minutes"], nxt["started_at"]) == ("running", 480, "2026-01-07T10:00:00Z")
    assert [e["kind"] for e in back["thread"]] == ["opened", "agent_reply", "status", "customer_reply", "status"]


def test_without_a_subscription_the_universes_included_level_applies(shop):
    acme, server = _customer_with_server(shop)
    ticket = _open(shop, acme, server)
    assert ticket["level"] == "support-baremetal-l1"
    assert _clock(ticket, "first_response")["limit_minutes"] == 1440
    assert [c["target"] for c in ticket["clocks"]] == ["first_response"]  # level 1 promises no resolution time


def test_the_best_active_level_applies_and_a_calendar_hours_level_counts_the_night(shop, clock):
    acme, server = _customer_with_server(shop, "support-baremetal-l2", "support-baremetal-l3")
    clock.set("2026-01-05T20:00:00+00:00")  # 21:00 in Paris: business hours are over
    ticket = _open(shop, acme, server, priority="urgent")
    assert ticket["level"] == "support-baremetal-l3"
    assert _clock(ticket, "first_response")["due_at"] == "2026-01-05T20:15:00Z"  # 15 minutes, round the clock


def test_the_billing_contact_opens_and_sees_only_tickets_about_invoices(shop):
    acme, server = _customer_with_server(shop)
    billing = shop.signup(name="Compta SARL")
    with unit_of_work(shop.rt) as conn:
        conn.execute(update(Service.__table__).where(Service.__table__.c.id == server).values(
            billing_account_id=billing["id"]))
    r = shop.client.post("/v1/support/tickets", headers=billing["headers"], json={
        "service_id": server, "subject": "Down", "message": "Is it down?"})
    assert r.status_code == 403 and r.json()["code"] == "billing_tickets_only"
    invoices = _open(shop, billing, server, category="billing", subject="Invoice question")
    technical = _open(shop, acme, server)
    assert shop.client.get(f"/v1/support/tickets/{technical['id']}", headers=billing["headers"]).status_code == 404
    for query in ("", f"?service_id={server}"):  # all of its tickets, and those of the one service
        listed = shop.client.get(f"/v1/support/tickets{query}", headers=billing["headers"]).json()["items"]
        assert [t["id"] for t in listed] == [invoices["id"]]
        assert {t["id"] for t in shop.client.get(f"/v1/support/tickets{query}", headers=acme["headers"]).json()["items"]} == {
            invoices["id"], technical["id"]}
    stranger = shop.signup(name="Stranger SA")
    assert shop.client.get(f"/v1/support/tickets?service_id={server}", headers=stranger["headers"]).json()["items"] == []


def test_internal_notes_meet_nothing_and_customers_never_see_them(shop):
    acme, server = _customer_with_server(shop)
    staff = shop.staff()
    ticket = _open(shop, acme, server)
    noted = _answer(shop, staff, ticket["id"], message="Customer on an old kernel; check the rescue mode.", internal=True)
    assert _clock(noted, "first_response")["state"] == "running" and noted["first_response_at"] is None
    assert [e["kind"] for e in noted["thread"]] == ["opened", "note"]
    assert [e["kind"] for e in _ticket(shop, acme, ticket["id"])["thread"]] == ["opened"]


def test_an_answered_ticket_always_has_its_first_response_time(shop, clock):
    acme, server = _customer_with_server(shop)
    staff = shop.staff()
    ticket = _open(shop, acme, server)
    clock.advance(minutes=30)
    solved = _answer(shop, staff, ticket["id"], message="Rebooted; it answers again.", status="solved")
    assert (solved["status"], solved["first_response_at"], solved["solved_at"]) == (
        "solved", "2026-01-05T09:30:00Z", "2026-01-05T09:30:00Z")
    queue = shop.client.get("/v1/staff/support/tickets?status=solved", headers=staff).json()["items"]
    assert [(t["id"], t["first_response_at"]) for t in queue] == [(ticket["id"], "2026-01-05T09:30:00Z")]


def test_who_may_see_and_write_in_a_ticket(shop):
    acme, server = _customer_with_server(shop)
    other = shop.signup(name="Other SA")
    staff = shop.staff()
    ticket = _open(shop, acme, server)
    assert shop.client.get(f"/v1/support/tickets/{ticket['id']}", headers=other["headers"]).status_code == 404
    r = shop.client.post(f"/v1/support/tickets/{ticket['id']}/messages", headers=other["headers"], json={"message": "hi"})
    assert r.status_code == 404
    r = shop.client.post(f"/v1/staff/support/tickets/{ticket['id']}/answers", headers=acme["headers"],
                         json={"message": "I answer myself"})
    assert r.status_code == 403 and r.json()["code"] == "role_forbids"
    assert shop.client.get("/v1/staff/support/tickets", headers=acme["headers"]).status_code == 403
    r = shop.client.post(f"/v1/support/tickets/{ticket['id']}/messages", headers=staff, json={"message": "as staff"})
    assert r.status_code == 403  # staff answer as agents, never as the customer
    queue = shop.client.get("/v1/staff/support/tickets", headers=staff).json()["items"]
    assert [t["id"] for t in queue] == [ticket["id"]] and queue[0]["due_at"]


def test_a_closed_ticket_takes_no_more_messages_and_every_step_is_in_the_audit_log(shop):
    acme, server = _customer_with_server(shop)
    staff = shop.staff()
    ticket = _open(shop, acme, server)
    _answer(shop, staff, ticket["id"], message="Done.", status="closed")
    r = shop.client.post(f"/v1/support/tickets/{ticket['id']}/messages", headers=acme["headers"], json={"message": "?"})
    assert r.status_code == 409 and r.json()["code"] == "ticket_closed"
    _answer(shop, staff, ticket["id"], expect=409, message="Again")
    with shop.rt.engine.connect() as conn:
        actions = conn.execute(select(AuditEvent.__table__.c.action).where(
            AuditEvent.__table__.c.entity == "ticket").order_by(AuditEvent.__table__.c.id)).scalars().all()
    assert actions == ["ticket.opened", "ticket.answered"]


def test_bad_input_gets_a_problem_and_changes_nothing(shop):
    acme, server = _customer_with_server(shop)
    staff = shop.staff()
    ticket = _open(shop, acme, server)
    before = (shop.count(SupportTicket), shop.count(TicketEvent))
    for body in ({"service_id": server, "subject": "", "message": "x"},
                 {"service_id": server, "subject": "x", "message": "x", "priority": "asap"},
                 {"service_id": server, "subject": "x", "message": "x", "category": "sales"},
                 {"service_id": server, "subject": "x" * 201, "message": "x"},
                 {"service_id": 0, "subject": "x", "message": "x"},
                 {"service_id": server, "subject": "x", "message": "x", "extra": 1}):
        r = shop.client.post("/v1/support/tickets", headers=acme["headers"], json=body)
        assert r.status_code in (400, 422) and r.headers["content-type"].startswith("application/problem+json"), r.text
    r = shop.client.post("/v1/support/tickets", headers=acme["headers"], json={
        "service_id": 10**9, "subject": "x", "message": "x"})
    assert r.status_code == 404
    r = shop.client.post("/v1/support/tickets", headers=acme["headers"], json={
        "service_id": server, "subject": "   ", "message": "x"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_text"
    _answer(shop, staff, ticket["id"], expect=422)  # says nothing
    _answer(shop, staff, ticket["id"], expect=400, status="lost")
    assert (shop.count(SupportTicket), shop.count(TicketEvent)) == before
    with shop.rt.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(AuditEvent.__table__).where(
            AuditEvent.__table__.c.entity == "ticket")).scalar_one() == 1


def test_a_refusal_is_told_in_the_callers_language(shop):
    acme, server = _customer_with_server(shop)
    billing = shop.signup(name="Compta SARL")
    with unit_of_work(shop.rt) as conn:
        conn.execute(update(Service.__table__).where(Service.__table__.c.id == server).values(
            billing_account_id=billing["id"]))
    r = shop.client.post("/v1/support/tickets", headers={**billing["headers"], "Accept-Language": "fr"}, json={
        "service_id": server, "subject": "Panne", "message": "Le serveur est-il en panne ?"})
    assert r.status_code == 403
    assert r.json()["detail"] == ("En tant que contact facturation du service, vous ne pouvez ouvrir que des tickets "
                                  "sur les factures.")


def test_fast_path_is_refused_to_a_non_partner_and_changes_nothing(shop):
    acme = shop.signup(top_up="200.00")
    before = shop.count(Service)
    r = shop.client.post("/v1/orders", headers={**acme["headers"], "Idempotency-Key": "fp-1"}, json={
        "items": [{"plan": "support-baremetal-fastpath"}], "payment": {"method": "balance"}, "accept": []})
    assert r.status_code == 422, r.text
    assert [(e["field"], e["code"]) for e in r.json()["errors"]] == [("items[0].plan", "partners_only")]
    assert shop.count(Service) == before


def test_a_partner_on_fast_path_gets_it_on_the_clients_servers_it_runs(shop):
    partner = shop.signup(name="Infogérance SAS", top_up="200.00")
    r = shop.client.post("/v1/me/partner-programmes", json={"universe": "baremetal"}, headers=partner["headers"])
    assert r.status_code == 201, r.text
    shop.order(partner, "support-baremetal-fastpath")
    client, server = _customer_with_server(shop)
    with unit_of_work(shop.rt) as conn:  # the client hands the server's technical side to its partner
        conn.execute(update(Service.__table__).where(Service.__table__.c.id == server).values(
            tech_account_id=partner["id"]))
    by_partner = _open(shop, partner, server)
    assert by_partner["level"] == "support-baremetal-fastpath"
    first = _clock(by_partner, "first_response")
    assert (first["limit_minutes"], first["due_at"]) == (30, "2026-01-05T09:30:00Z")  # round the clock
    assert _open(shop, client, server)["level"] == "support-baremetal-l1"  # the client's own level


def test_the_staff_queue_puts_the_closest_deadline_first_and_pages_by_cursor(shop, clock):
    acme, server = _customer_with_server(shop, "support-baremetal-l2")
    staff = shop.staff()
    normal = _open(shop, acme, server)  # 4 business hours
    clock.advance(minutes=10)
    urgent = _open(shop, acme, server, priority="urgent")  # 1 business hour: due first
    low = _open(shop, acme, server, priority="low")  # 8 business hours
    waiting = _open(shop, acme, server)
    _answer(shop, staff, waiting["id"], message="Which server?", status="waiting_for_customer")  # its clocks pause
    r = shop.client.get("/v1/staff/support/tickets?limit=2", headers=staff)
    first = r.json()
    assert [t["id"] for t in first["items"]] == [urgent["id"], normal["id"]] and first["next_cursor"]
    second = shop.client.get("/v1/staff/support/tickets", params={"limit": 2, "cursor": first["next_cursor"]},
                             headers=staff).json()
    assert [t["id"] for t in second["items"]] == [low["id"]] and second["next_cursor"] is None
    for bad in ("yesterday|1", "2026-01-05T10:00:00|x", "2026-01-05T10:00:00|1"):  # the last has no time zone
        r = shop.client.get("/v1/staff/support/tickets", params={"cursor": bad}, headers=staff)
        assert r.status_code == 422 and r.json()["code"] == "invalid_cursor", bad
