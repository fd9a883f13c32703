"""Abuse cases, on both engines: a suspension for abuse opens a case the service's contacts see
with the reason; the customer answers in it; the abuse desk answers under its own SLA and closes
it with a decision the customer reads. The clock starts on Monday 5 January 2026, 10:00 in Paris."""

from __future__ import annotations

from sqlalchemy import update

from core.customers.accounts import create_customer
from core.models import Service, SlaBreach
from core.support.sla import run_sla
from core.uow import unit_of_work

SERVER = "bm-ks-1-p1m"
REASON = "A phishing page is served from this server (report #4417)."


def _staff(shop, role):
    with unit_of_work(shop.rt) as conn:
        _, key = create_customer(conn, shop.rt, {"subsidiary": "FR", "name": role, "email": f"{role}@univers.example"},
                                 is_staff=True, staff_role=role)
    return {"Authorization": f"Bearer {key}"}


def _suspended(shop):
    acme = shop.signup(top_up="100.00")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    shop.deliver()
    desk = _staff(shop, "abuse_desk")
    r = shop.client.post(f"/v1/services/{server}/abuse-suspension", json={"reason": REASON}, headers=desk)
    assert r.status_code == 200, r.text
    (case,) = shop.client.get("/v1/support/tickets", headers=acme["headers"]).json()["items"]
    return acme, server, desk, case


def _case(shop, headers, case_id):
    r = shop.client.get(f"/v1/support/tickets/{case_id}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_an_abuse_case_is_answered_by_the_customer_and_decided_by_the_desk(shop, clock):
    acme, server, desk, case = _suspended(shop)
    assert (case["queue"], case["category"], case["status"], case["subject"]) == ("abuse", "abuse", "waiting_for_customer",
                                                                                   REASON)
    thread = _case(shop, acme["headers"], case["id"])["thread"]
    assert [(e["kind"], e["message"]) for e in thread if e["kind"] != "status"] == [("opened", None), ("agent_reply", REASON)]
    clock.advance(hours=1)
    r = shop.client.post(f"/v1/support/tickets/{case['id']}/messages", headers=acme["headers"],
                         json={"message": "A customer's WordPress was compromised; the page is removed."})
    assert r.status_code == 201, r.text
    answered = r.json()
    nxt = next(c for c in answered["clocks"] if c["target"] == "next_response")
    assert (answered["status"], nxt["state"], nxt["limit_minutes"]) == ("open", "running", 240)  # the desk's own SLA

    agent = _staff(shop, "support_agent")
    r = shop.client.post(f"/v1/staff/support/tickets/{case['id']}/answers", headers=agent, json={"message": "ok"})
    assert r.status_code == 403  # the case is the abuse desk's
    r = shop.client.post(f"/v1/staff/support/tickets/{case['id']}/answers", headers=desk, json={"status": "closed"})
    assert r.status_code == 409 and r.json()["code"] == "decision_required"
    r = shop.client.post(f"/v1/staff/support/abuse-cases/{case['id']}/decision", headers=desk,
                         json={"decision": "lifted", "message": "Checked: the page is gone. Thank you."})
    assert r.status_code == 200, r.text
    decided = _case(shop, acme["headers"], case["id"])
    assert (decided["status"], decided["decision"]) == ("closed", "lifted")
    assert decided["thread"][-2]["message"] == "Checked: the page is gone. Thank you."
    service = shop.service(acme, server)
    assert service["abuse"] is None and service["state"] == "active"
    r = shop.client.post(f"/v1/staff/support/abuse-cases/{case['id']}/decision", headers=desk, json={"decision": "upheld"})
    assert r.status_code == 409 and r.json()["code"] == "ticket_closed"


def test_an_upheld_decision_keeps_the_suspension(shop):
    acme, server, desk, case = _suspended(shop)
    r = shop.client.post(f"/v1/staff/support/abuse-cases/{case['id']}/decision", headers=desk,
                         json={"decision": "upheld", "message": "The page is still online."})
    assert r.status_code == 200 and r.json()["decision"] == "upheld"
    assert shop.service(acme, server)["abuse"]["reason"] == REASON


def test_lifting_the_suspension_closes_its_case_as_lifted(shop):
    acme, server, desk, case = _suspended(shop)
    assert shop.client.delete(f"/v1/services/{server}/abuse-suspension", headers=desk).status_code == 200
    assert (_case(shop, acme["headers"], case["id"])["decision"]) == "lifted"


def test_the_billing_contact_sees_the_case_and_the_desk_queue_lists_it(shop):
    acme = shop.signup(top_up="100.00")
    billing = shop.signup(name="Compta SARL")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    shop.deliver()
    with unit_of_work(shop.rt) as conn:
        conn.execute(update(Service.__table__).where(Service.__table__.c.id == server).values(billing_account_id=billing["id"]))
    desk = _staff(shop, "abuse_desk")
    assert shop.client.post(f"/v1/services/{server}/abuse-suspension", json={"reason": REASON}, headers=desk).status_code == 200
    (case,) = shop.client.get("/v1/support/tickets", headers=billing["headers"]).json()["items"]
    assert case["queue"] == "abuse"
    waiting = shop.client.get("/v1/staff/support/tickets?queue=abuse&status=waiting_for_customer", headers=desk).json()
    assert [t["id"] for t in waiting["items"]] == [case["id"]]
    # its clocks wait for the customer: it is not among the cases whose deadline runs
    assert shop.client.get("/v1/staff/support/tickets?queue=abuse", headers=desk).json()["items"] == []
    assert shop.client.get("/v1/staff/support/tickets?queue=support&status=waiting_for_customer",
                           headers=desk).json()["items"] == []


def test_the_desk_that_does_not_answer_in_time_breaches_its_own_sla(shop, clock):
    acme, server, desk, case = _suspended(shop)
    clock.advance(hours=48)  # the customer takes two days: none of it counts against the desk
    assert run_sla(shop.rt).breaches == 0
    r = shop.client.post(f"/v1/support/tickets/{case['id']}/messages", headers=acme["headers"], json={"message": "Fixed."})
    assert r.status_code == 201
    clock.advance(hours=5)  # 15:00 in Paris: more than 4 business hours later
    assert run_sla(shop.rt).breaches == 1
    (breach,) = _case(shop, desk, case["id"])["breaches"]
    assert breach["target"] == "next_response" and breach["credit"] is None  # no level, no credit
    assert shop.count(SlaBreach) == 1
