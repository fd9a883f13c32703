"""Spending alerts of pay-as-you-go projects: a threshold, one notification per month, on both engines.

FR prices: b3-8 at 0.0511 €/h (January 2026).
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core.models import Notification, SpendingAlert
from core.notify import mail as notifications
from core.uow import unit_of_work
from core.usage import alerts
from tests.test_commitments import month_records
from tests.test_rating import PROJECT, send

JANUARY, FEBRUARY = dt.date(2026, 1, 1), dt.date(2026, 2, 1)


@pytest.fixture
def acme(shop, clock):
    clock.set("2026-01-20T00:00:00+00:00")  # 456 hours of January are past
    customer = shop.signup()
    customer["project"] = shop.order(customer, PROJECT)["services"][0]["id"]
    return customer


def set_alert(client, customer, threshold, expect=200):
    r = client.put(f"/v1/services/{customer['project']}/spending-alert", json={"threshold": threshold},
                   headers=customer["headers"])
    assert r.status_code == expect, r.text
    return r.json()


def hours(customer, month, first, count, prefix="h") -> list[dict]:
    return month_records(customer["project"], month, prefix, first + count, dimension="b3-8")[first:]


def queued(rt, project) -> list[tuple[str, str]]:
    n = Notification.__table__
    with rt.engine.connect() as conn:
        return [(k, key) for k, key in conn.execute(select(n.c.kind, n.c.key).where(n.c.service_id == project).order_by(n.c.id))
                if k == "spending_alert"]


def test_crossing_the_threshold_notifies_once_a_month(client, rt, clock, acme):
    p = acme["project"]
    assert set_alert(client, acme, "5.00")["threshold"]["amount"] == "5.00"
    send(client, acme, hours(acme, JANUARY, 0, 90))  # 90 × 0.0511 = 4.599 → 4.60: under 5.00
    assert alerts.check_alerts(rt).notified == 0 and queued(rt, p) == []
    send(client, acme, hours(acme, JANUARY, 90, 8))  # 98 h: 5.0078 → 5.01, reached
    assert alerts.check_alerts(rt).notified == 1
    assert queued(rt, p) == [("spending_alert", f"spending_alert:{p}:2026-01:500")]
    send(client, acme, hours(acme, JANUARY, 98, 20))
    assert alerts.check_alerts(rt).notified == 0 and len(queued(rt, p)) == 1  # once this month
    assert client.get(f"/v1/services/{p}/spending-alert", headers=acme["headers"]).json()["notified_period"] == "2026-01-01"
    clock.set("2026-02-06T00:00:00+00:00")
    send(client, acme, hours(acme, FEBRUARY, 0, 100, prefix="feb"))
    assert alerts.check_alerts(rt).notified == 1  # a new month warns again
    assert [key for _, key in queued(rt, p)][-1] == f"spending_alert:{p}:2026-02:500"


def test_a_raised_threshold_warns_again_when_it_is_reached(client, rt, acme):
    p = acme["project"]
    set_alert(client, acme, "5.00")
    send(client, acme, hours(acme, JANUARY, 0, 100))  # 5.11
    alerts.check_alerts(rt)
    assert set_alert(client, acme, "10.00")["notified_period"] is None
    assert alerts.check_alerts(rt).notified == 0  # 5.11 < 10.00
    send(client, acme, hours(acme, JANUARY, 100, 100))  # 10.22
    assert alerts.check_alerts(rt).notified == 1
    assert [key for _, key in queued(rt, p)] == [f"spending_alert:{p}:2026-01:500", f"spending_alert:{p}:2026-01:1000"]


def test_two_checks_at_once_notify_once(client, rt, acme):
    set_alert(client, acme, "1.00")
    send(client, acme, hours(acme, JANUARY, 0, 100))
    period = dt.date(2026, 1, 1)
    with unit_of_work(rt) as conn:  # a first check that has not committed its mark yet…
        alerts.check_chunk(conn, rt, period, 0, 100)
    with unit_of_work(rt) as conn:
        alerts.check_chunk(conn, rt, period, 0, 100)  # …or has: the key and the mark keep it to one
    assert len(queued(rt, acme["project"])) == 1


def test_the_message_tells_the_amount_and_the_threshold_in_the_contacts_language(client, rt, acme):
    p = acme["project"]
    set_alert(client, acme, "5.00")
    send(client, acme, hours(acme, JANUARY, 0, 100))  # 5.11
    alerts.check_alerts(rt)
    n = Notification.__table__
    with rt.engine.connect() as conn:
        item = dict(conn.execute(select(n).where(n.c.service_id == p, n.c.kind == "spending_alert")).mappings().one())
        mail = notifications.render(conn, rt, item)
    assert mail.locale.startswith("fr")
    assert "5,11\u00a0€" in mail.body and "5,00\u00a0€" in mail.body, mail.body
    assert "alerte" in mail.subject.lower(), mail.subject


@pytest.mark.parametrize("threshold", ["0", "-1.00", "1.001", "ten", ""])
def test_bad_thresholds_are_refused_and_change_nothing(client, rt, acme, threshold):
    set_alert(client, acme, "5.00")
    answer = set_alert(client, acme, threshold, expect=422)
    assert answer["code"] == "invalid_threshold", answer
    assert client.get(f"/v1/services/{acme['project']}/spending-alert", headers=acme["headers"]).json()["threshold"]["amount"] \
        == "5.00"


def test_an_alert_can_be_removed(client, rt, acme):
    p = acme["project"]
    assert client.get(f"/v1/services/{p}/spending-alert", headers=acme["headers"]).status_code == 404
    set_alert(client, acme, "5.00")
    assert client.delete(f"/v1/services/{p}/spending-alert", headers=acme["headers"]).status_code == 204
    assert client.delete(f"/v1/services/{p}/spending-alert", headers=acme["headers"]).status_code == 404
    with rt.engine.connect() as conn:
        assert conn.execute(select(SpendingAlert.__table__)).all() == []


def test_only_projects_take_an_alert(client, shop, acme):
    server = shop.order(acme, "bm-ks-1-p1m")["services"][0]["id"]
    r = client.put(f"/v1/services/{server}/spending-alert", json={"threshold": "5.00"}, headers=acme["headers"])
    assert (r.status_code, r.json()["code"]) == (422, "not_a_project")
