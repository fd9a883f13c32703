"""Mails of support, through a real SMTP server, on both engines: the customer is told of an
agent's answer (never of an internal note), of a missed target with its credit, and all three
contacts of an abuse case of its opening and of the desk's decision, each in its own language; the
staff of a ticket's alerts, in business hours only, the administrators from escalation 2 on."""

from __future__ import annotations

from sqlalchemy import update

from core.customers.accounts import create_customer
from core.models import Service
from core.scheduler import run_queues
from core.support.sla import run_sla
from core.uow import unit_of_work

SERVER = "bm-ks-1-p1m"


def _mails(shop, inbox, kind):
    run_queues(shop.rt)
    return [m for m in inbox.messages if m["X-Univers-Notification"] == kind]


def _staff(shop, role, subsidiary="FR", email=None, **extra):
    with unit_of_work(shop.rt) as conn:
        _, key = create_customer(conn, shop.rt, {"subsidiary": subsidiary, "name": role,
                                                 "email": email or f"{role}@univers.example", **extra},
                                 is_staff=True, staff_role=role)
    return {"Authorization": f"Bearer {key}"}


def test_the_customer_is_told_of_an_answer_in_its_language_never_of_a_note(shop, inbox):
    hans = shop.signup("DE", "company", name="Hans GmbH", email="hans@example.de", top_up="100.00")
    server = shop.order(hans, SERVER)["services"][0]["id"]
    shop.deliver()
    ticket = shop.client.post("/v1/support/tickets", headers=hans["headers"], json={
        "service_id": server, "subject": "Kein Ping", "message": "Der Server antwortet nicht."}).json()
    agent = _staff(shop, "support_agent")
    for body in ({"message": "Old kernel, check rescue mode.", "internal": True},
                 {"message": "Wir haben den Switch-Port getauscht.\nBitte prüfen Sie es."}):
        r = shop.client.post(f"/v1/staff/support/tickets/{ticket['id']}/answers", headers=agent, json=body)
        assert r.status_code == 200, r.text
    (mail,) = _mails(shop, inbox, "ticket_answered")
    text = mail.get_content().replace("\r\n", "\n")
    assert mail["To"] == "hans@example.de" and mail["Subject"] == f"Ticket {ticket['id']}: Kein Ping"
    assert "> Wir haben den Switch-Port getauscht.\n> Bitte prüfen Sie es." in text
    assert "Old kernel" not in text
    assert text.startswith("Guten Tag Hans GmbH,")  # the German greeting


def test_a_missed_target_is_told_with_its_credit(shop, inbox, clock):
    acme = shop.signup(top_up="900.00", email="ops@acme.example")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    shop.order(acme, "support-baremetal-l2")
    shop.deliver()
    shop.client.post("/v1/support/tickets", headers=acme["headers"], json={
        "service_id": server, "subject": "Down", "message": "It is down.", "priority": "urgent"})
    clock.advance(hours=2)
    assert run_sla(shop.rt).breaches == 1
    (mail,) = _mails(shop, inbox, "ticket_breached")
    text = mail.get_content().replace("\r\n", "\n")
    assert "1,80" in text and "FRC-2026-" in text  # the credit, with VAT, in French, and its credit note
    assert run_sla(shop.rt).breaches == 0 and len(_mails(shop, inbox, "ticket_breached")) == 1  # once


def test_all_three_contacts_of_an_abuse_case_are_told_of_it_and_of_the_decision(shop, inbox):
    acme = shop.signup(top_up="100.00", email="admin@acme.example")
    tech = shop.signup(name="Tech SARL", email="tech@example.org", language="es_ES")
    billing = shop.signup(name="Compta SARL", email="compta@example.org")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    shop.deliver()
    with unit_of_work(shop.rt) as conn:
        conn.execute(update(Service.__table__).where(Service.__table__.c.id == server).values(
            tech_account_id=tech["id"], billing_account_id=billing["id"]))
    desk = _staff(shop, "abuse_desk")
    reason = "Phishing page reported by CERT-FR (ref. 2026-0142)."
    assert shop.client.post(f"/v1/services/{server}/abuse-suspension", json={"reason": reason},
                            headers=desk).status_code == 200
    opened = _mails(shop, inbox, "abuse_case_opened")
    assert sorted(m["To"] for m in opened) == ["admin@acme.example", "compta@example.org", "tech@example.org"]
    assert all(f"> {reason}" in m.get_content() for m in opened)
    (case,) = shop.client.get("/v1/support/tickets", headers=acme["headers"]).json()["items"]
    r = shop.client.post(f"/v1/staff/support/abuse-cases/{case['id']}/decision", headers=desk,
                         json={"decision": "lifted", "message": "The page is gone."})
    assert r.status_code == 200, r.text
    decided = _mails(shop, inbox, "abuse_decided")
    assert len(decided) == 3 and all("> The page is gone." in m.get_content() for m in decided)
    spanish = next(m for m in decided if m["To"] == "tech@example.org")
    assert spanish.get_content().startswith("Hola, Tech SARL:")


def test_no_escalation_mail_outside_business_hours_and_the_managers_hear_from_escalation_2(shop, inbox, clock):
    acme = shop.signup(top_up="900.00")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    shop.order(acme, "support-baremetal-l2")  # business hours: 1 hour when urgent
    shop.deliver()
    _staff(shop, "support_agent", email="agent@univers.fr")
    _staff(shop, "support_agent", "DE", email="agent@univers.de")  # another storefront's desk: not told
    _staff(shop, "administrator", email="chef@univers.fr", language="en_GB")
    _staff(shop, "abuse_desk", email="abuse@univers.fr")
    clock.set("2026-01-05T16:00:00+00:00")  # 17:00 in Paris: the target runs out at 18:00
    ticket = shop.client.post("/v1/support/tickets", headers=acme["headers"], json={
        "service_id": server, "subject": "Down", "message": "It is down.", "priority": "urgent"}).json()
    clock.set("2026-01-05T16:50:00+00:00")  # 17:50: three quarters of the hour are used
    assert run_sla(shop.rt).escalated == 1
    (warning,) = _mails(shop, inbox, "ticket_escalated")
    assert warning["To"] == "agent@univers.fr"
    assert warning["Subject"] == f"Ticket {ticket['id']} : l’objectif de première réponse expire le 05/01/2026 18:00 (Europe/Paris)"
    clock.set("2026-01-05T22:00:00+00:00")  # 23:00: the breach at 18:00 is recorded, nobody is told at night
    done = run_sla(shop.rt)
    assert (done.breaches, done.escalated, done.deferred) == (1, 0, 1)
    assert len(_mails(shop, inbox, "ticket_escalated")) == 1
    clock.set("2026-01-06T08:00:00+00:00")  # 09:00: the breach is escalation 1, to the desk only
    assert run_sla(shop.rt).escalated == 1
    (first,) = _mails(shop, inbox, "ticket_escalated")[1:]
    assert first["To"] == "agent@univers.fr" and first["Subject"] == f"Ticket {ticket['id']} : escalade 1 sur 3"
    clock.set("2026-01-06T09:00:00+00:00")  # 10:00, twice the target: escalation 3, the managers too
    assert run_sla(shop.rt).escalated == 1
    mails = _mails(shop, inbox, "ticket_escalated")[2:]
    assert sorted(m["To"] for m in mails) == ["agent@univers.fr", "chef@univers.fr"]
    chef = next(m for m in mails if m["To"] == "chef@univers.fr")
    assert chef["Subject"] == f"Ticket {ticket['id']}: escalation 3 of 3"
    assert "ran out at 05/01/2026, 18:00 (Europe/Paris)" in chef.get_content().replace("\r\n", "\n").replace("\n", " ")
    assert run_sla(shop.rt).escalated == 0 and len(_mails(shop, inbox, "ticket_escalated")) == 4  # once each
