"""Support reports, on both engines: the times are replayed from each ticket's log in its level's
hours, so an answered ticket always has its first-response time (even answered and solved in one
step, even on a level that promises no resolution); breaches and credits per level; the API and
the CLI check the staff role and refuse a bad period. The clock starts on Monday 5 January 2026
at 10:00 in Paris."""

from __future__ import annotations

import datetime as dt
import json

from core.cli import main
from core.customers.accounts import create_customer
from core.support.clocks import Event, response_times
from core.support.sla import calendars, run_sla
from core.uow import unit_of_work

SERVER = "bm-ks-1-p1m"
UTC = dt.timezone.utc
PERIOD = {"opened_from": "2026-01-01", "opened_to": "2026-01-31"}


def _staff(shop, role):
    with unit_of_work(shop.rt) as conn:
        _, key = create_customer(conn, shop.rt, {"subsidiary": "FR", "name": role, "email": f"{role}@univers.example"},
                                 is_staff=True, staff_role=role)
    return key


def _open(shop, customer, server, **body):
    r = shop.client.post("/v1/support/tickets", headers=customer["headers"], json={
        "service_id": server, "subject": "Down", "message": "It is down.", **body})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _answer(shop, key, ticket_id, **body):
    r = shop.client.post(f"/v1/staff/support/tickets/{ticket_id}/answers",
                         headers={"Authorization": f"Bearer {key}"}, json=body)
    assert r.status_code == 200, r.text


def _report(shop, key, expect=200, **params):
    r = shop.client.get("/v1/staff/support/report", headers={"Authorization": f"Bearer {key}"},
                        params={**PERIOD, **params})
    assert r.status_code == expect, r.text
    return r.json()


def test_reports_never_show_an_empty_first_response_time_for_an_answered_ticket(shop, clock):
    acme = shop.signup(top_up="900.00")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    shop.deliver()
    agent = _staff(shop, "support_agent")
    solved_at_once, waited, unanswered = (_open(shop, acme, server) for _ in range(3))
    clock.advance(minutes=30)
    _answer(shop, agent, solved_at_once, message="Rebooted; it answers again.", status="solved")  # one step
    _answer(shop, agent, unanswered, message="Looking at the switch.", internal=True)  # a note is no answer
    _answer(shop, agent, waited, message="Which IP do you ping from?", status="waiting_for_customer")
    clock.set("2026-01-05T16:30:00+00:00")  # 17:30 in Paris: 7 hours of waiting, which do not count
    r = shop.client.post(f"/v1/support/tickets/{waited}/messages", headers=acme["headers"], json={"message": "1.2.3.4"})
    assert r.status_code == 201, r.text
    clock.set("2026-01-06T08:30:00+00:00")  # 09:30 the next day: the night does not count
    _answer(shop, agent, waited, message="Fixed the route.", status="solved")

    (row,) = _report(shop, agent)
    assert (row["storefront"], row["universe"], row["level"]) == ("FR", "baremetal", "support-baremetal-l1")
    assert (row["opened"], row["answered"], row["solved"]) == (3, 2, 2)
    assert row["first_response_minutes"] == {"count": 2, "p50": 30, "p90": 30}
    # resolution: 30 minutes; and 30 + 30 (open at 17:30 until 18:00) + 30 (from 09:00) = 90: level 1 promises
    # no resolution time, the report measures it all the same
    assert row["resolution_minutes"] == {"count": 2, "p50": 30, "p90": 90}
    assert row["breaches"] == {"first_response": 0, "next_response": 0, "resolution": 0} and row["credits"] == []


def test_the_report_counts_a_paid_levels_breaches_and_credits(shop, clock):
    acme = shop.signup(top_up="900.00")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    shop.order(acme, "support-baremetal-l2")
    shop.deliver()
    _open(shop, acme, server, priority="urgent")  # 1 business hour for the first response
    clock.advance(hours=2)
    assert run_sla(shop.rt).breaches == 1
    (row,) = _report(shop, _staff(shop, "administrator"))
    assert row["level"] == "support-baremetal-l2" and row["answered"] == 0
    assert row["first_response_minutes"] == {"count": 0, "p50": None, "p90": None}
    assert row["breaches"]["first_response"] == 1
    assert [(c["amount_minor"], c["currency"]) for c in row["credits"]] == [(150, "EUR")]  # excluding VAT
    assert _report(shop, _staff(shop, "support_agent"), opened_from="2026-02-01", opened_to="2026-02-28") == []


def test_a_report_is_for_support_staff_and_refuses_a_bad_period(shop):
    assert _report(shop, _staff(shop, "billing_operator"), expect=403)["code"] == "role_forbids"
    key = _staff(shop, "abuse_desk")
    problem = _report(shop, key, expect=422, opened_from="2026-02-01", opened_to="2026-01-01")
    assert problem["code"] == "invalid_period"
    assert _report(shop, key, expect=422, opened_to="2027-06-01")["code"] == "invalid_period"  # more than 366 days
    assert _report(shop, key, expect=400, queue="sales")["status"] == 400
    assert _report(shop, key, queue="abuse") == []


def test_the_cli_prints_the_report(shop, clock, monkeypatch, capsys, database_url):
    acme = shop.signup(top_up="900.00")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    shop.deliver()
    agent = _staff(shop, "support_agent")
    _answer(shop, agent, _open(shop, acme, server), message="On it.")
    url, schema = database_url
    monkeypatch.setenv("UNIVERS_DATABASE_URL", f"{url}?options=-csearch_path%3D{schema}" if schema else url)
    monkeypatch.setenv("UNIVERS_STAFF_KEY", agent)
    args = ["support", "report", "--from", "2026-01-05", "--to", "2026-01-05"]
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["answered"] == 1 and row["first_response_minutes"]["p50"] == 0
    assert main(args) == 0 and "FR support-baremetal-l1" in capsys.readouterr().out


def test_response_times_skip_the_waits_and_keep_the_first_solving_until_a_reopening():
    hours = calendars()["FR"]
    at = lambda h, m=0: dt.datetime(2026, 1, 5, h, m, tzinfo=UTC)  # noqa: E731 - Monday, Paris is UTC+1
    log = [Event(at(9), "opened", "normal"), Event(at(10), "status", "waiting_for_customer"),
           Event(at(12), "customer_reply"), Event(at(13), "agent_reply"), Event(at(13), "status", "solved"),
           Event(at(15), "status", "closed")]
    assert response_times(log, hours) == (dt.timedelta(hours=2), dt.timedelta(hours=2))
    reopened = log[:5] + [Event(at(14), "customer_reply"), Event(at(14, 30), "status", "solved")]
    assert response_times(reopened, hours) == (dt.timedelta(hours=2), dt.timedelta(hours=2, minutes=30))
    assert response_times(log[:2], hours) == (None, None)
