"""The dunning ladder, its rules that never bend, the charge queue and the notifications read
from a real SMTP server. Every test runs on SQLite and on PostgreSQL, with the injected clock."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import func, select

from core import sim
from core.context import DunningPolicy
from core.i18n import translate
from core.models import Invoice, Notification, Payment, Service
from core.notify.mail import MESSAGES
from core.payments.charges import run_charges
from core.payments.settlement import GATEWAY
from core.plugins import PluginError
from core.renewal.run import run_renewal
from core.scheduler import run_queues

D = dt.date
pay = Payment.__table__
note = Notification.__table__


def _declined(shop, plan="web-hosting-pro-p1m", subsidiary="DE", name="Muster GmbH", **order):
    """A customer whose first month was paid by card and whose card then declines."""
    customer = shop.signup(subsidiary, "company", name=name)
    first = shop.order(customer, plan, payment={"method": "test", "outcome": "success"}, **order)
    shop.deliver()
    r = shop.client.put("/v1/me/payment-method", json={"method": "test", "outcome": "decline"}, headers=customer["headers"])
    assert r.status_code == 200, r.text
    return customer, first["services"][0]["id"]


def _state(shop, customer, service_id) -> str:
    return shop.service(customer, service_id)["state"]


def test_the_ladder_notifies_each_step_once_in_the_customers_language(shop, inbox, clock):
    muster, sid = _declined(shop)  # web hosting in Germany: expires Feb 5
    expiry = D(2026, 2, 5)
    seen: list[tuple[str, int]] = []
    day = clock.today()
    while day < expiry + dt.timedelta(days=52):
        day += dt.timedelta(days=1)
        before = len(inbox.messages)
        shop.days(day)
        seen += [(kind, (day - expiry).days) for kind in inbox.kinds()[before:]]
    assert seen == [
        ("payment_failed", -7),      # the renewal invoiced a week ahead, charged, declined
        ("renewal_notice", -6),      # D-7 reminder, held back while the charge was in flight
        ("renewal_notice", -1),      # D-1
        ("payment_failed", 1),       # retries at D+1, D+3, D+5, each a new attempt
        ("payment_failed", 3),
        ("payment_failed", 5),
        ("suspension_warning", 6),   # two days before suspension (held back by the D+5 charge)
        ("suspended", 7),            # expiry + 7 days
        ("terminated", 21),          # 14 days suspended
    ]
    assert _state(shop, muster, sid) == "deleted"  # 30 days after termination
    message = inbox.messages[-2]
    assert message["To"] == "ops@acme.example"
    assert message["Content-Language"] == "de-DE"
    service = shop.service(muster, sid)
    german = translate(MESSAGES["suspended"][0], "de_DE")
    assert german != MESSAGES["suspended"][0]
    assert message["Subject"] == german.format(service=f"Webhosting Pro, monatlich ({service['resource']})")
    assert message["Message-ID"].endswith("@notifications.univers>")
    body = message.get_content()
    invoice = [i for i in shop.invoices(muster) if i["kind"] == "renewal"][0]
    assert invoice["number"] in body and invoice["total"]["formatted"] in body
    with shop.rt.engine.connect() as conn:
        sent = conn.execute(select(note.c.status, func.count()).group_by(note.c.status)).all()
    assert dict(sent) == {"sent": len(seen)}


def test_a_reminder_is_sent_once_even_when_the_job_runs_twice(shop, inbox, clock, rt):
    customer = shop.signup("FR", "company", top_up="1.00")  # too little for the renewal
    order = shop.order(customer, "web-hosting-starter-p1m", payment={"method": "test", "outcome": "success"})
    shop.deliver()
    shop.days(D(2026, 1, 29))  # D-7: invoiced, the balance is short
    before = len(inbox.messages)
    for _ in range(2):
        run_renewal(rt, D(2026, 1, 29))
        run_queues(rt)
    assert inbox.kinds()[before:] == []
    shop.days(D(2026, 2, 4))  # D-1
    assert inbox.kinds().count("renewal_notice") == 2  # D-7 and D-1, once each
    clock.set(D(2026, 2, 4))
    run_renewal(rt, D(2026, 2, 4))
    run_queues(rt)
    assert inbox.kinds().count("renewal_notice") == 2
    assert order["services"][0]["id"] in {m for m, in _sent(rt, "renewal_notice")}


def _sent(rt, kind):
    with rt.engine.connect() as conn:
        return conn.execute(select(note.c.service_id).where(note.c.kind == kind, note.c.status == "sent")).all()


def test_charges_are_queued_with_a_key_per_attempt_and_a_timeout_retries_the_same_key(shop, rt):
    muster, sid = _declined(shop, "bm-ks-1-p1m", "FR", "Bob SARL")
    rt.settings = rt.settings.with_(sim_failures={"gateway": 2})
    sim.reset_failures()
    shop.days(D(2026, 1, 29))  # renewal invoiced and queued; the gateway times out twice
    with rt.engine.connect() as conn:
        first = conn.execute(select(pay).where(pay.c.purpose == "invoice", pay.c.idempotency_key.is_not(None))).mappings().one()
    assert first["status"] == "queued" and first["attempts"] == 1 and first["failure_code"] == "gateway_unavailable"
    rt.clock.advance(seconds=20)
    run_charges(rt)
    rt.clock.advance(seconds=40)
    run_charges(rt)
    shop.days(D(2026, 2, 9))  # retries at D+1 and D+3
    with rt.engine.connect() as conn:
        attempts = conn.execute(select(pay.c.idempotency_key, pay.c.status, pay.c.attempts).where(
            pay.c.idempotency_key.is_not(None)).order_by(pay.c.id)).all()
    invoice_id = first["invoice_id"]
    assert [tuple(a) for a in attempts] == [
        (f"renewal:{invoice_id}", "failed", 3), (f"retry-D+1:{invoice_id}", "failed", 1), (f"retry-D+3:{invoice_id}", "failed", 1)]
    calls = {key: n for key, _ref, _status, _amount, _cur, n in sim.charges(rt.settings)}
    assert calls[f"renewal:{invoice_id}"] == 1  # the two timeouts never reached the gateway's books
    assert all(n == 1 for n in calls.values())


def test_a_gateway_that_never_answers_keeps_the_charge_and_its_key_in_flight_until_it_answers(shop, rt):
    """No answer is not a decline: the gateway may have taken the money. The charge is never
    called failed (dunning would charge again under a new key), it holds back the suspension, and
    when the gateway answers at last the invoice is paid once, under its first key."""
    customer, sid = _declined(shop, "bm-ks-1-p1m", "FR", "Bob SARL")
    r = shop.client.put("/v1/me/payment-method", json={"method": "test", "outcome": "success"}, headers=customer["headers"])
    assert r.status_code == 200, r.text
    rt.settings = rt.settings.with_(sim_failures={"gateway": 100_000}, outbox_max_attempts=3)
    sim.reset_failures()
    shop.days(D(2026, 3, 15))  # invoiced on Jan 29, expired on Feb 5: five weeks without an answer
    with rt.engine.connect() as conn:
        charges = conn.execute(select(pay).where(pay.c.purpose == "invoice", pay.c.idempotency_key.is_not(None))).mappings().all()
        failed_mails = conn.execute(select(func.count()).select_from(note).where(note.c.kind == "payment_failed")).scalar_one()
    assert len(charges) == 1 and charges[0]["status"] == "queued" and charges[0]["attempts"] > 3
    assert charges[0]["failure_code"] == "gateway_unavailable" and failed_mails == 0
    assert _state(shop, customer, sid) == "active"  # the charge in flight holds back the suspension
    invoice_id = charges[0]["invoice_id"]
    rt.settings = rt.settings.with_(sim_failures={})
    sim.reset_failures()
    rt.clock.advance(hours=2)
    run_charges(rt)
    with rt.engine.connect() as conn:
        assert conn.execute(select(pay.c.status).where(pay.c.id == charges[0]["id"])).scalar_one() == "succeeded"
        assert conn.execute(select(Invoice.__table__.c.status).where(Invoice.__table__.c.id == invoice_id)).scalar_one() == "paid"
    calls = {key: n for key, _ref, _status, _amount, _cur, n in sim.charges(rt.settings)}
    assert calls[f"renewal:{invoice_id}"] == 1 and not any(k.startswith("retry-") for k in calls)


def test_charges_run_with_bounded_concurrency(shop, rt, monkeypatch):
    rt.settings = rt.settings.with_(gateway_concurrency=3)
    customers = [_declined(shop, "web-hosting-starter-p1m", "FR", f"Client {i}") for i in range(8)]
    in_flight, peak, lock = [0], [0], threading.Lock()
    real = GATEWAY.charge

    def slow(settings, key, amount, currency, outcome):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.05)
        with lock:
            in_flight[0] -= 1
        return real(settings, key, amount, currency, outcome)

    rt.clock.set(D(2026, 1, 29))
    run_renewal(rt, D(2026, 1, 29))
    monkeypatch.setattr(GATEWAY, "charge", slow)
    stats = run_charges(rt)
    assert stats.failed == len(customers)
    assert 2 <= peak[0] <= 3


def test_a_charge_queued_for_an_invoice_paid_meanwhile_is_cancelled_without_calling_the_gateway(shop, rt):
    muster, sid = _declined(shop, "web-hosting-starter-p1m", "FR", "Late SARL")
    rt.clock.set(D(2026, 1, 29))
    run_renewal(rt, D(2026, 1, 29))  # queued, not yet executed
    r = shop.client.post("/v1/me/balance/top-ups", json={"amount": "100.00", "outcome": "success"}, headers=muster["headers"])
    assert r.status_code == 201
    assert shop.service(muster, sid)["expires_on"] == "2026-03-05"  # paid from the balance at once
    stats = run_charges(rt)
    assert stats.cancelled == 1 and stats.failed == stats.succeeded == 0
    assert not [c for c in sim.charges(rt.settings) if c[0].startswith("renewal:")]


def test_money_arriving_for_an_invoice_already_paid_goes_to_the_balance(shop, rt):
    from core.audit import Actor
    from core.payments.settlement import mark_paid, resolve_pending
    from core.uow import unit_of_work

    customer = shop.signup("FR", "company", name="Twice SARL")
    order = shop.order(customer, "web-hosting-starter-p1m", payment={"method": "test", "outcome": "pending"})
    payment = order["invoice"]["payments"][0]
    inv = Invoice.__table__
    with unit_of_work(rt) as conn:  # the invoice gets paid some other way while the card payment hangs
        mark_paid(conn, rt, inv.c.id == order["invoice"]["id"], Actor.system("test"))
    with unit_of_work(rt) as conn:
        resolve_pending(conn, rt, payment["gateway_ref"], "succeeded", Actor.system("gateway"))
    with unit_of_work(rt) as conn:  # the same answer again changes nothing
        resolve_pending(conn, rt, payment["gateway_ref"], "succeeded", Actor.system("gateway"))
    me = shop.client.get("/v1/me", headers=customer["headers"]).json()
    assert me["balance"]["amount_minor"] == order["total"]["amount_minor"]


def test_staff_restore_a_terminated_service_until_its_data_is_deleted(shop, rt):
    bob, sid = _declined(shop, "bm-ks-1-p1m", "FR", "Bob SARL")
    staff = shop.staff()
    ladder = rt.ladder("baremetal")
    suspended_on = D(2026, 2, 5) + dt.timedelta(days=ladder.suspend_after)
    shop.days(suspended_on + dt.timedelta(days=ladder.terminate_after))
    assert _state(shop, bob, sid) == "terminated"
    r = shop.client.post(f"/v1/staff/services/{sid}/restore", headers=bob["headers"])
    assert r.status_code == 403
    r = shop.client.post(f"/v1/staff/services/{sid}/restore", headers=staff)
    assert r.status_code == 200 and r.json()["state"] == "suspended", r.text  # nothing paid: back, but suspended
    invoice = [i for i in shop.invoices(bob) if i["kind"] == "renewal"][0]
    r = shop.client.post(f"/v1/invoices/{invoice['id']}/payments", json={"method": "test", "outcome": "success"}, headers=bob["headers"])
    assert r.status_code == 201 and r.json()["status"] == "succeeded"
    service = shop.service(bob, sid)
    assert service["state"] == "active" and service["renewal_mode"] == "automatic"
    shop.deliver()
    assert [a[3] for a in sim.resources(rt.settings, sid)] == ["provision", "suspend", "terminate", "restore", "resume"]


def test_data_is_deleted_after_retention_never_while_a_payment_is_pending(shop, rt):
    bob, sid = _declined(shop, "bm-ks-1-p1m", "FR", "Bob SARL")
    staff = shop.staff()
    ladder = rt.ladder("baremetal")
    terminated_on = D(2026, 2, 5) + dt.timedelta(days=ladder.suspend_after + ladder.terminate_after)
    shop.days(terminated_on + dt.timedelta(days=ladder.delete_after - 1))
    assert _state(shop, bob, sid) == "terminated"
    invoice = [i for i in shop.invoices(bob) if i["kind"] == "renewal"][0]
    r = shop.client.post(f"/v1/invoices/{invoice['id']}/payments", json={"method": "test", "outcome": "pending"}, headers=bob["headers"])
    assert r.status_code == 201 and r.json()["status"] == "pending"
    shop.days(terminated_on + dt.timedelta(days=ladder.delete_after + 10))
    assert _state(shop, bob, sid) == "terminated"  # a payment is pending: the data stays
    r = shop.client.post(f"/v1/test-gateway/payments/{r.json()['gateway_ref']}/resolve", json={"outcome": "failed"}, headers=staff)
    assert r.status_code == 200
    shop.days(terminated_on + dt.timedelta(days=ladder.delete_after + 11))
    assert _state(shop, bob, sid) == "deleted"
    shop.deliver()
    assert sim.resources(rt.settings, sid)[-1][3] == "delete"
    r = shop.client.post(f"/v1/staff/services/{sid}/restore", headers=staff)
    assert r.status_code == 409 and r.json()["code"] == "service_not_restorable"


def test_enterprise_customers_get_a_longer_grace(shop, rt):
    acme = shop.signup("FR", "company", name="Acme SA")
    web = shop.order(acme, "web-hosting-pro-p1m", payment={"method": "test", "outcome": "success"})["services"][0]["id"]
    ent = shop.order(acme, "support-enterprise-l3", payment={"method": "test", "outcome": "success"})["services"][0]["id"]
    shop.deliver()
    shop.client.put("/v1/me/payment-method", json={"method": "test", "outcome": "decline"}, headers=acme["headers"])
    expiry = D(2026, 2, 5)
    shop.days(expiry + dt.timedelta(days=rt.ladder("web").suspend_after))
    assert (_state(shop, acme, web), _state(shop, acme, ent)) == ("suspended", "active")
    shop.days(expiry + dt.timedelta(days=rt.ladder("enterprise").suspend_after))
    assert _state(shop, acme, ent) == "suspended"
    assert rt.ladder("enterprise").suspend_after > rt.ladder("web").suspend_after


def test_paying_before_suspension_serves_the_period_without_a_gap(shop, rt):
    muster, sid = _declined(shop, "web-hosting-pro-p1m", "FR", "Prompt SARL")
    shop.days(D(2026, 2, 7))  # two days past expiry: unpaid, still running
    assert _state(shop, muster, sid) == "active"
    r = shop.client.post("/v1/me/balance/top-ups", json={"amount": "100.00", "outcome": "success"}, headers=muster["headers"])
    assert r.status_code == 201
    service = shop.service(muster, sid)
    assert service["state"] == "active" and service["expires_on"] == "2026-03-05"
    shop.days(D(2026, 2, 28))
    with rt.engine.connect() as conn:
        suspended = conn.execute(select(func.count()).select_from(Service.__table__).where(
            Service.__table__.c.suspended_on.is_not(None))).scalar_one()
    assert suspended == 0


class Lenient:
    @staticmethod
    def univers_register_dunning_policies(ctx):
        return [DunningPolicy(universe="web", suspend_after=4, retries=(1, 3))]


class Broken:
    @staticmethod
    def univers_register_dunning_policies(ctx):
        return [DunningPolicy(universe="rogue", retries=(1, 9), suspend_after=7)]


def test_a_plugin_ladder_is_checked_at_start_up_and_a_second_one_refused(tmp_path):
    from core import hookimpl
    from core.boot import build_runtime
    from core.config import Settings

    for cls in (Lenient, Broken):
        cls.univers_register_dunning_policies = staticmethod(hookimpl(cls.univers_register_dunning_policies))
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/x.db", scheduler=False)
    with pytest.raises(PluginError, match="rogue.*before the suspension"):
        build_runtime(settings, extra_plugins=[("rogue", Broken())], migrate_db=False)
    with pytest.raises(PluginError, match="'web' is already set by plugin '(lenient|web)'"):
        build_runtime(settings, extra_plugins=[("lenient", Lenient())], migrate_db=False)
